//! "Break it and watch it fail": every mutant feature of the `decode`,
//! `engine` and `model` crates switches on a one-line bug; this test builds the crate
//! with each one and checks that the named property test fails (a test
//! failure, not a build error). It uses its own target directory (`target/mutants`) so it never
//! waits on the outer `cargo test`'s lock, and runs only the test target and
//! test name that should catch the mutant, to stay fast.

use std::path::PathBuf;
use std::process::Command;

/// (crate, feature, test target in `<crate>/tests/`, test that must fail)
const MUTANTS: &[(&str, &str, &str, &str)] = &[
    (
        "engine",
        "mutant-swapped-nibbles",
        "quant_props",
        "per_block_error_is_bounded",
    ),
    (
        "engine",
        "mutant-scale-big-endian",
        "quant_props",
        "per_block_error_is_bounded",
    ),
    (
        "decode",
        "mutant-top-p-drop-crossing",
        "processors_props",
        "nucleus_is_minimal_and_contains_argmax",
    ),
    (
        "decode",
        "mutant-top-k-off-by-one",
        "processors_props",
        "top_k_keeps_exactly_k",
    ),
    (
        "decode",
        "mutant-temperature-multiply",
        "processors_props",
        "temperature_to_zero_is_greedy",
    ),
    (
        "decode",
        "mutant-repetition-sign",
        "processors_props",
        "repetition_penalty_never_favours_seen_tokens",
    ),
    (
        "decode",
        "mutant-sample-skip-first",
        "sampling_props",
        "sampling_frequencies_match_distribution",
    ),
    (
        "decode",
        "mutant-stop-emit-stop-string",
        "stop_props",
        "stop_strings_never_in_output",
    ),
    (
        "decode",
        "mutant-beam-no-length-penalty",
        "beam_props",
        "beams_sorted_and_scores_recomputed",
    ),
    (
        "decode",
        "mutant-scheduler-slot-stream",
        "scheduler_props",
        "batched_requests_equal_lone_runs",
    ),
    (
        "decode",
        "mutant-prompt-cache-no-compare",
        "scheduler_props",
        "requests_reusing_a_cached_prefix_equal_lone_runs",
    ),
    (
        "decode",
        "mutant-nms-discarded-suppress",
        "post_props",
        "nms_keeps_a_maximal_non_overlapping_set",
    ),
    (
        "model",
        "mutant-kv-reorder-unsaved",
        "kv_cache_props",
        "reorder_moves_whole_slots",
    ),
    (
        "model",
        "mutant-bpe-leftmost-first",
        "tokenizer_properties",
        "plain_bpe_equals_heap_bpe",
    ),
    (
        "engine",
        "mutant-narrow-ignores-stride",
        "tensor_views",
        "narrow_equals_copy",
    ),
    (
        "engine",
        "mutant-softmax-no-max",
        "ops_props",
        "softmax_of_large_logits_is_finite_and_shift_invariant",
    ),
    (
        "engine",
        "mutant-rope-adjacent-pairs",
        "reference_fixtures",
        "rope_matches_hf_rotate_half",
    ),
];

#[test]
fn every_listed_mutant_is_caught() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // Every feature named in a crate's Cargo.toml must be in the list above.
    for krate in ["decode", "engine", "model"] {
        let manifest = std::fs::read_to_string(root.join(krate).join("Cargo.toml")).unwrap();
        for line in manifest.lines().filter(|l| l.starts_with("mutant-")) {
            let name = line.split('=').next().unwrap().trim();
            assert!(
                MUTANTS.iter().any(|(k, f, _, _)| *k == krate && *f == name),
                "mutant feature {name} in {krate}/Cargo.toml is not checked here"
            );
        }
    }
    let mut survivors = Vec::new();
    for &(krate, feature, target, test) in MUTANTS {
        let out = Command::new(&cargo)
            .current_dir(&root)
            .env("CARGO_TARGET_DIR", root.join("target/mutants"))
            // The mutants live in the plain twins, which the book shows;
            // the property must catch them there (SIMD bodies are held to
            // the twins by their own tests).
            .env("INFER_KERNELS", "scalar")
            .args([
                "test",
                "-q",
                "-p",
                krate,
                "--features",
                feature,
                "--test",
                target,
                "--",
                test,
                "--exact",
            ])
            .output()
            .expect("running cargo");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let caught = !out.status.success() && stdout.contains(&format!("{test} --- FAILED"));
        if !caught {
            survivors.push(format!(
                "{feature}: `{test}` did not fail as expected\nstdout:\n{stdout}\nstderr:\n{stderr}"
            ));
        }
    }
    assert!(
        survivors.is_empty(),
        "mutants not caught:\n{}",
        survivors.join("\n")
    );
}
