//! The quantized path (Q4_1 weights, Q8_0 head, 8-bit activations) against
//! llama.cpp 0c1e570 on the same SmolLM2 file, both with plain attention
//! over an f32 KV cache: logits of the last prompt position and greedy
//! continuations of 8 prompts. Fixture: `tests/fixtures/llama-cpp/`,
//! made by `scripts/make_llama_cpp_fixtures.sh`.
//!
//! Tolerance. Both engines multiply the same 4-bit weights by activations
//! rounded to 8-bit blocks with the same rule, and both keep K and V in
//! f32, but they differ in summation order and, for prompts of 8
//! tokens or more, in the prefill kernel (ours multiplies f32 activations
//! by widened weight tiles). Rounding activations to 8 bits is noisy, and
//! 30 layers amplify any difference in where a rounding falls: measured on
//! these prompts, llama.cpp's logits sit 0.08–0.11 (mean) and up to 0.52
//! (max) from the f32 product of the same dequantized weights, after
//! removing a constant offset that softmax ignores, and ours sit 0.06–0.10
//! (mean), up to 0.42 (max) from llama.cpp's. So the test removes the
//! offset and asks for a mean difference ≤ 0.15 and a max ≤ 0.8 over the
//! sampled logits (|logit| ≈ 10–20), while a real bug (a swapped nibble, a
//! wrong scale) moves logits by whole units.

use integration_tests::{fixture_dir, heavy_lock, ids, smollm2_weights, smollm2_weights_f32};
use model::batch::LogitsFor;
use model::kv_cache::CacheType;
use model::llama::Llama;

/// The quantized model with an f32 KV cache, as the fixture ran llama.cpp.
fn quantized(ctx: usize) -> Llama {
    Llama::new(smollm2_weights().clone(), ctx, 1)
        .unwrap()
        .with_cache_type(CacheType::F32)
        .unwrap()
}

const MEAN_TOL: f32 = 0.15;
const MAX_TOL: f32 = 0.8;

fn cases() -> Vec<serde_json::Value> {
    let path = fixture_dir("llama-cpp").join("smollm2_q4_1.jsonl");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).expect("fixture line"))
        .collect()
}

fn pairs(v: &serde_json::Value) -> Vec<(usize, f32)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p[0].as_u64().unwrap() as usize,
                p[1].as_f64().unwrap() as f32,
            )
        })
        .collect()
}

#[test]
fn logits_match_llama_cpp() {
    let _g = heavy_lock();
    let mut m = quantized(128);
    for (n, case) in cases().iter().enumerate() {
        let prompt = ids(&case["ids"]);
        m.cache_mut().clear(0);
        let logits = m
            .forward(&[(0, &prompt)], LogitsFor::Last)
            .unwrap()
            .remove(0);
        let all: Vec<(usize, f32)> = pairs(&case["sampled"])
            .into_iter()
            .chain(pairs(&case["top"]))
            .collect();
        let offset =
            all.iter().map(|&(id, want)| logits[id] - want).sum::<f32>() / all.len() as f32;
        let mut worst = (0.0f32, 0usize);
        let mut mean = 0.0f32;
        for &(id, want) in &all {
            let d = (logits[id] - want - offset).abs();
            mean += d / all.len() as f32;
            if d > worst.0 {
                worst = (d, id);
            }
        }
        eprintln!(
            "prompt {n} ({} tokens): offset {offset:+.3}; |ours - llama.cpp - offset| mean {mean:.3}, max {:.3} at id {}",
            prompt.len(),
            worst.0,
            worst.1
        );
        assert!(
            mean <= MEAN_TOL,
            "prompt {n}: mean logit difference {mean} (tolerance {MEAN_TOL})"
        );
        assert!(
            worst.0 <= MAX_TOL,
            "prompt {n}: logit of id {} differs by {} (tolerance {MAX_TOL})",
            worst.1,
            worst.0
        );
        let top = pairs(&case["top"])[0].0;
        assert_eq!(
            engine::kernels::argmax(&logits),
            top,
            "prompt {n}: top token"
        );
    }
}

#[test]
fn greedy_ids_match_llama_cpp() {
    let _g = heavy_lock();
    let mut m = quantized(128);
    let mut agree = 0;
    let cases = cases();
    for (n, case) in cases.iter().enumerate() {
        let prompt = ids(&case["ids"]);
        let want = ids(&case["greedy"]);
        m.cache_mut().clear(0);
        let mut logits = m
            .forward(&[(0, &prompt)], LogitsFor::Last)
            .unwrap()
            .remove(0);
        let mut got = Vec::new();
        for _ in 0..want.len() {
            let t = engine::kernels::argmax(&logits) as u32;
            got.push(t);
            logits = m.forward(&[(0, &[t])], LogitsFor::Last).unwrap().remove(0);
        }
        let same = got.iter().zip(&want).take_while(|(a, b)| a == b).count();
        eprintln!(
            "prompt {n}: {same}/{} greedy tokens equal llama.cpp's",
            want.len()
        );
        if same >= 24 {
            agree += 1;
        } else {
            eprintln!(" ours      {got:?}\n llama.cpp {want:?}");
        }
    }
    // Where two continuations part, the two top logits were within the
    // rounding noise above (a near tie). Measured: 4 of the 8 prompts agree
    // for 24 tokens or more (two for all 32); the test asks for those 4.
    assert!(
        agree >= 4,
        "only {agree} of {} prompts agree for 24 tokens",
        cases.len()
    );
}

/// The quantized model stays near the f32 one it approximates (same
/// prompts): a sanity bound on the whole quantized path.
#[test]
fn quantized_logits_stay_near_f32() {
    let _g = heavy_lock();
    let mut q = quantized(64);
    let mut f = Llama::new(smollm2_weights_f32().clone(), 64, 1).unwrap();
    for case in cases() {
        let prompt = ids(&case["ids"]);
        let a = q
            .forward(&[(0, &prompt)], LogitsFor::Last)
            .unwrap()
            .remove(0);
        let b = f
            .forward(&[(0, &prompt)], LogitsFor::Last)
            .unwrap()
            .remove(0);
        q.cache_mut().clear(0);
        f.cache_mut().clear(0);
        let rms =
            (a.iter().zip(&b).map(|(x, y)| (x - y).powi(2)).sum::<f32>() / a.len() as f32).sqrt();
        eprintln!("rms |Q4_1 - f32| over the logits: {rms:.4}");
        assert!(rms < 1.0, "rms logit difference {rms}");
    }
}
