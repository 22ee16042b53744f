#!/usr/bin/env bash
# Check that the book's pasted outputs are what the chapter programs print
# today: re-run each program whose output depends neither on timing nor on the
# machine, and fail, with a diff, when book/src/generated/<name>.txt (or an SVG
# the program writes there) differs. CI runs it after the tests.
#
#   scripts/check-chapter-outputs.sh            # the default programs below
#   scripts/check-chapter-outputs.sh NAME ...   # just these (any in the table)
#
# When it fails because a program or the code it calls changed on purpose,
# paste the new output with scripts/paste-chapter-output.sh NAME and commit it.
#
# Which programs: each was run twice, with INFER_KERNELS=scalar and with
# INFER_THREADS=1, and only what came out the same every time is compared.
# Left out:
#   ch02_kernels, ch08b_batching  timings throughout
#   ch03_forward                  float differences whose digits depend on the
#                                 kernels (the plain loops and AVX2 differ)
#   ch05_kv_cache                 timings (speed, oneshot), and float digits
#                                 that depend on the kernels (frozen, beam)
# Compared in part, by default (the table's second column names the sections):
#   ch06_real_model               all but `timing` (wall times)
# Compared only when named, because the program runs long for what is compared
# (its other sections are timed, or print float digits that depend on the
# kernels):
#   ch10_quantization             everything but `quality` and `gpt2` (kernel-dependent
#                                 digits; about three minutes)
# The programs that read SmolLM2 need it in the cache (scripts/fetch-model.sh).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
gen="book/src/generated"

# name, sections to compare ("all": the whole output), run by default (yes/no)
table() {
    cat <<'TABLE'
ch01_tensors       all                         yes
ch03_attention     all                         yes
ch04_tokenizer     all                         yes
ch05_kv_memory     all                         yes
ch05_kv_trace      all                         yes
ch06_beam          all                         yes
ch06_real_model    widths,verdict,length       yes
ch07_sampling      all                         yes
ch07_real_model    all                         yes
ch08_penalties     all                         yes
ch08_real_model    all                         yes
ch09_post          all                         yes
ch09_llm_calibration all                       yes
ch10_quantization  formats,dot,scales,kquants,memory no
ch11_gpu           all                         yes
TABLE
}

# The lines of one anchored section, as mdBook's {{#include FILE:NAME}} shows
# them (other anchors' lines inside it left out).
section() {
    awk -v name="$2" '
        on && $0 ~ ("ANCHOR_END: *" name "$") { exit }
        on && !/ANCHOR(_END)?:/ { print }
        $0 ~ ("ANCHOR: *" name "$") { on = 1 }' "$1"
}

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/svg"
cp "$gen"/*.svg "$tmp/svg/" 2>/dev/null || true

selected=()
if [ "$#" -eq 0 ]; then
    while read -r name _ default; do
        [ "$default" = yes ] && selected+=("$name")
    done < <(table)
else
    for name in "$@"; do
        table | awk -v n="$name" '$1 == n { found = 1 } END { exit !found }' \
            || { echo "unknown or unchecked program: $name (see the table in $0)" >&2; exit 2; }
        selected+=("$name")
    done
fi

# Build every example at once with the workspace's features, so that after the
# tests (`cargo test --workspace --release`) this reuses their build.
cargo build --quiet --release --workspace --examples
bin="${CARGO_TARGET_DIR:-target}/release/examples"

failed=()
for name in "${selected[@]}"; do
    sections="$(table | awk -v n="$name" '$1 == n { print $2 }')"
    echo "checking $name ($sections) ..." >&2
    "$bin/$name" > "$tmp/$name.txt"
    ok=yes
    if [ "$sections" = all ]; then
        diff -u "$gen/$name.txt" "$tmp/$name.txt" --label "$gen/$name.txt (in the book)" \
            --label "$name (printed now)" || ok=no
    else
        for s in ${sections//,/ }; do
            section "$gen/$name.txt" "$s" > "$tmp/book.$s"
            section "$tmp/$name.txt" "$s" > "$tmp/now.$s"
            if [ ! -s "$tmp/book.$s" ]; then
                echo "$gen/$name.txt has no section '$s'" >&2
                ok=no
            fi
            diff -u "$tmp/book.$s" "$tmp/now.$s" --label "$gen/$name.txt:$s (in the book)" \
                --label "$name:$s (printed now)" || ok=no
        done
    fi
    # SVGs the program (re)wrote: compare with the book's, then put the book's back.
    for f in "$gen"/*.svg; do
        [ -e "$f" ] || continue
        base="$(basename "$f")"
        if [ ! -e "$tmp/svg/$base" ]; then
            echo "$name wrote $f, which the book does not have" >&2
            rm -f "$f"
            ok=no
        elif ! cmp -s "$f" "$tmp/svg/$base"; then
            diff -u "$tmp/svg/$base" "$f" --label "$f (in the book)" --label "$base (written now)" | head -40 || true
            cp "$tmp/svg/$base" "$f"
            ok=no
        fi
    done
    [ "$ok" = yes ] || failed+=("$name")
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "chapter outputs differ from the book: ${failed[*]}" >&2
    echo "(if the change is intended: scripts/paste-chapter-output.sh ${failed[*]})" >&2
    exit 1
fi
echo "chapter outputs match the book: ${selected[*]}"
