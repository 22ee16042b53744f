//! SmolLM2-135M-Instruct against `transformers` loading the same GGUF
//! (dequantized to f32); fixtures from `scripts/make_model_fixtures.py`.
//! Needs the model: `scripts/fetch-model.sh` (CI runs it first).

use integration_tests::{
    assert_smollm2_reference, f32s, fixture_dir, heavy_lock, ids, read_json, smollm2_weights_f32,
};
use model::batch::LogitsFor;
use model::llama::Llama;

/// Logits tolerance. Both sides run f32 on the same dequantized weights;
/// only the order of the sums differs (SIMD dot products and a blocked
/// matmul here, PyTorch's kernels there), through 30 layers whose residual
/// stream reaches magnitudes of a few hundred. Measured: at most 4.1e-5 on
/// logits of size 10–30 (relative ~2e-6, a few f32 ulps). 5e-4 leaves a
/// factor of ten for other CPUs' kernel choices and is still far below the
/// gaps that decide a ranking (the greedy test checks those directly).
const TOL: f32 = 5e-4;

fn model() -> Llama {
    Llama::new(smollm2_weights_f32().clone(), 512, 1).unwrap()
}

#[test]
fn smollm2_logits_match_transformers() {
    let _g = heavy_lock();
    let r = read_json(&fixture_dir("smollm2").join("reference.json"));
    let sample_idx = ids(&r["sample_indices"]);
    let mut m = model();
    for (i, p) in r["logits"].as_array().unwrap().iter().enumerate() {
        m.cache_mut().clear(0);
        let logits = m
            .forward(&[(0, &ids(&p["ids"]))], LogitsFor::Last)
            .unwrap()
            .remove(0);
        assert_smollm2_reference(&format!("prompt {i}"), None, &logits, p, &sample_idx, TOL);
    }
}

#[test]
fn smollm2_greedy_matches_transformers_for_most_prompts() {
    let _g = heavy_lock();
    let r = read_json(&fixture_dir("smollm2").join("reference.json"));
    let mut m = model();
    let mut identical = 0;
    for (i, g) in r["greedy"].as_array().unwrap().iter().enumerate() {
        m.cache_mut().clear(0);
        let want = ids(&g["tokens"]);
        let margins = f32s(&g["margins"]);
        let mut logits = m
            .forward(&[(0, &ids(&g["ids"]))], LogitsFor::Last)
            .unwrap()
            .remove(0);
        let mut got = Vec::new();
        for _ in 0..want.len() {
            let tok = engine::kernels::argmax(&logits) as u32;
            got.push(tok);
            logits = m
                .forward(&[(0, &[tok])], LogitsFor::Last)
                .unwrap()
                .remove(0);
        }
        match got.iter().zip(&want).position(|(a, b)| a != b) {
            None => {
                identical += 1;
                eprintln!(
                    "prompt {i} {:?}: {} tokens identical",
                    g["text"],
                    want.len()
                );
            }
            Some(s) => eprintln!(
                "prompt {i} {:?}: diverges at step {s} (reference margin there {})",
                g["text"], margins[s]
            ),
        }
    }
    assert!(
        identical >= 3,
        "only {identical} of 5 greedy continuations identical"
    );
}
