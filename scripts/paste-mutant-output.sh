#!/usr/bin/env bash
# "Break it and watch it fail": build `decode`, `engine` or `model` with each mutant feature, run
# the property test that should catch it, and paste the failure (proptest's
# shrunk counter-example) into book/src/generated/<feature>.txt.
#
#   scripts/paste-mutant-output.sh                 # every mutant
#   scripts/paste-mutant-output.sh FEATURE ...     # just these
#
# The list must match tests/tests/mutants.rs, which checks in CI that
# every mutant is caught.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="book/src/generated"
mkdir -p "$out"
export CARGO_TARGET_DIR="$root/target/mutants"
export RUST_BACKTRACE=0
# The mutants live in the plain twins; run the properties on them.
export INFER_KERNELS=scalar

# A long run of one identical line (proptest prints a shrunk vector of zeros
# one element a line) becomes that line and a count, so a chapter can include
# the whole file (includes are by anchor or whole file, never by line range).
collapse_runs() {
    awk 'function flush() {
            if (n == 0) return
            print prev
            if (n >= 4) { printf "    ... %d more lines like the one above\n", n - 1; return }
            for (i = 1; i < n; i++) print prev
        }
        n > 0 && $0 == prev { n++; next }
        { flush(); prev = $0; n = 1 }
        END { flush() }'
}

# A long shrunk vector (a failing block far into a buffer) keeps its first
# six lines and its last three, with a count of those between.
shorten_lists() {
    awk 'function flush(   i) {
            if (n <= 12) { for (i = 1; i <= n; i++) print buf[i] }
            else {
                for (i = 1; i <= 6; i++) print buf[i]
                printf "    ... %d more lines\n", n - 9
                for (i = n - 2; i <= n; i++) print buf[i]
            }
            n = 0
        }
        inlist && /^ *\],?$/ { flush(); inlist = 0; print; next }
        inlist { buf[++n] = $0; next }
        /\[$/ { inlist = 1; n = 0 }
        { print }
        END { flush() }'
}

while read -r crate feature target test; do
    [ -z "$feature" ] && continue
    if [ "$#" -gt 0 ] && [[ " $* " != *" $feature "* ]]; then continue; fi
    echo "running $feature ($target::$test) ..." >&2
    log="$(cargo test -q -p "$crate" --features "$feature" --test "$target" -- "$test" --exact 2>&1 || true)"
    {
        echo "\$ cargo test -p $crate --features $feature --test $target -- $test"
        # Keep the panic message and proptest's minimal failing input.
        printf '%s\n' "$log" | awk '/^thread .* panicked/{on=1} /successes:|^note: run with/{on=0} on' \
            | sed 's/ ([0-9]*) panicked/ panicked/' | collapse_runs | shorten_lists
        printf '%s\n' "$log" | grep -E '^test result' | tail -1
    } > "$out/$feature.txt"
    echo "  wrote $out/$feature.txt" >&2
done <<'LIST'
decode mutant-top-p-drop-crossing processors_props nucleus_is_minimal_and_contains_argmax
decode mutant-top-k-off-by-one processors_props top_k_keeps_exactly_k
decode mutant-temperature-multiply processors_props temperature_to_zero_is_greedy
decode mutant-repetition-sign processors_props repetition_penalty_never_favours_seen_tokens
decode mutant-sample-skip-first sampling_props sampling_frequencies_match_distribution
decode mutant-stop-emit-stop-string stop_props stop_strings_never_in_output
decode mutant-beam-no-length-penalty beam_props beams_sorted_and_scores_recomputed
decode mutant-scheduler-slot-stream scheduler_props batched_requests_equal_lone_runs
decode mutant-prompt-cache-no-compare scheduler_props requests_reusing_a_cached_prefix_equal_lone_runs
engine mutant-swapped-nibbles quant_props per_block_error_is_bounded
engine mutant-scale-big-endian quant_props per_block_error_is_bounded
decode mutant-nms-discarded-suppress post_props nms_keeps_a_maximal_non_overlapping_set
model mutant-kv-reorder-unsaved kv_cache_props reorder_moves_whole_slots
model mutant-bpe-leftmost-first tokenizer_properties plain_bpe_equals_heap_bpe
engine mutant-narrow-ignores-stride tensor_views narrow_equals_copy
engine mutant-softmax-no-max ops_props softmax_of_large_logits_is_finite_and_shift_invariant
engine mutant-rope-adjacent-pairs reference_fixtures rope_matches_hf_rotate_half
LIST
