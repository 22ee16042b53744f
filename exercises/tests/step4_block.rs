//! Step 4: the whole GPT-2 forward pass with your block in every layer,
//! against `transformers` on the two random-weight fixtures
//! (`tests/fixtures/gpt2-tiny-{a,b}/reference.json`, made by
//! `scripts/make_model_fixtures.py`).

use exercises::step4_block::gpt2_block;
use exercises::support::{
    assert_close, f32s, fixtures_dir, gpt2_logits, gpt2_weights, ids, read_json,
};

/// Logits tolerance: both sides compute in f32 on the same weights, so the
/// differences are summation order only (the project's own check uses the
/// same bound).
const TOL: f32 = 1e-4;

fn check(name: &str) {
    let w = gpt2_weights(name);
    let r = read_json(&fixtures_dir().join(name).join("reference.json"));
    let all = &r["all_positions"];
    let got = gpt2_logits(&w, &ids(&all["ids"]), gpt2_block);
    for (pos, (g, want)) in got
        .iter()
        .zip(all["logits"].as_array().unwrap())
        .enumerate()
    {
        assert_close(&format!("{name} position {pos}"), g, &f32s(want), TOL, 0.0);
    }
    for (i, p) in r["prompts"].as_array().unwrap().iter().enumerate() {
        let got = gpt2_logits(&w, &ids(&p["ids"]), gpt2_block);
        let last = got.last().unwrap();
        assert_close(
            &format!("{name} prompt {i} last position"),
            last,
            &f32s(&p["last_logits"]),
            TOL,
            0.0,
        );
    }
}

#[test]
fn gpt2_tiny_a_logits_match_transformers() {
    // f32 weights.
    check("gpt2-tiny-a");
}

#[test]
fn gpt2_tiny_b_logits_match_transformers() {
    // f16 weights (the engine widens them in its matrix kernels).
    check("gpt2-tiny-b");
}
