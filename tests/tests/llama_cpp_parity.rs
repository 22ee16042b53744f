//! The quantized path (Q4_1 weights, Q8_0 head, 8-bit activations) against
//! llama.cpp 0c1e570 on the same SmolLM2 file, both with plain attention
//! over an f32 KV cache: logits of the last prompt position and greedy
//! continuations of 8 prompts. Fixture: `tests/fixtures/llama-cpp/`,
//! made by `scripts/make_llama_cpp_fixtures.sh`. The same checks run on
//! the file requantized to Q4_K (Q5_0 where rows are not whole
//! super-blocks), which `llama-quantize --pure Q4_K_S` and
//! [`model::llama::LlamaWeights::to_dtype`] write byte for byte alike; there
//! both engines multiply the Q4_K matrices in decode steps by activations in
//! blocks of 256 (ggml's Q8_K), but this engine's prompts multiply them by
//! f32 activations (widened weight tiles) where llama.cpp's round them to
//! 8 bits, so their roundings differ a little more.
//!
//! Tolerance. Both engines multiply the same 4-bit weights by activations
//! rounded to 8-bit blocks with the same rule, and both keep K and V in
//! f32; the 4-bit matrices follow ggml's own order per row (the
//! regrouped kernel, `engine::quant::x8`), but the Q8_0 head, attention
//! and norms sum in other orders, and prompts take another kernel (the
//! many-token integer one, `engine::quant::x8_prompt`, which adds each
//! block's products before scaling them). Rounding activations to 8 bits
//! is noisy, and
//! 30 layers amplify any difference in where a rounding falls: measured on
//! these prompts, llama.cpp's logits sit 0.08–0.11 (mean) and up to 0.52
//! (max) from the f32 product of the same dequantized weights, after
//! removing a constant offset that softmax ignores, and ours sit 0.06–0.10
//! (mean), up to 0.46 (max) from llama.cpp's. So the test removes the
//! offset and asks for a mean difference ≤ 0.15 and a max ≤ 0.8 over the
//! sampled logits (|logit| ≈ 10–20), while a real bug (a swapped nibble, a
//! wrong scale) moves logits by whole units.

use integration_tests::{fixture_dir, heavy_lock, ids, smollm2_weights, smollm2_weights_f32};
use model::batch::LogitsFor;
use model::kv_cache::CacheType;
use model::llama::Llama;

/// The quantized model with an f32 KV cache, as the fixture ran llama.cpp.
fn quantized(ctx: usize) -> Llama {
    with_f32_cache(smollm2_weights().clone(), ctx)
}

fn with_f32_cache(w: model::llama::LlamaWeights, ctx: usize) -> Llama {
    Llama::new(w, ctx, 1)
        .unwrap()
        .with_cache_type(CacheType::F32)
        .unwrap()
}

/// SmolLM2 requantized to Q4_K, as the `smollm2_q4_k` fixture ran it.
fn requantized_q4_k(ctx: usize) -> Llama {
    with_f32_cache(
        smollm2_weights().to_dtype(engine::DType::Q4_K).unwrap(),
        ctx,
    )
}

const MEAN_TOL: f32 = 0.15;
const MAX_TOL: f32 = 0.8;
/// Prompts of the Q4_K fixture whose greedy continuations must agree with
/// llama.cpp's for 24 tokens. Where two top logits nearly tie, a
/// continuation parts either way, so which prompts agree moves with any
/// change of arithmetic. Measured: 3 of 8 while the file's Q4_K and Q6_K
/// rows met 8-bit activation blocks of 32 and its Q5_0 rows kept the
/// file's layout, 1 of 8 once the Q5_0 rows followed llama.cpp's order,
/// and 4 of 8 (three for all 32 tokens, one for 26) since the K-quant rows
/// meet blocks of 256 as in llama.cpp (`block_q8_K`): the same integers
/// inside each super-block. The logit tests above bound the differences;
/// this one guards against a continuation that parts at once everywhere.
const Q4_K_GREEDY_AGREE: usize = 4;

fn cases() -> Vec<serde_json::Value> {
    cases_of("smollm2_q4_1.jsonl")
}

fn cases_of(file: &str) -> Vec<serde_json::Value> {
    let path = fixture_dir("llama-cpp").join(file);
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
    check_logits(&mut quantized(128), &cases(), (MEAN_TOL, MAX_TOL));
}

#[test]
fn q4_k_logits_match_llama_cpp() {
    let _g = heavy_lock();
    // Measured: mean 0.12–0.22, max up to 1.13 (see the next test for why
    // the Q4_K gap is wider than Q4_1's).
    let cases = cases_of("smollm2_q4_k.jsonl");
    check_logits(&mut requantized_q4_k(128), &cases, (0.3, 1.3));
}

fn check_logits(m: &mut Llama, cases: &[serde_json::Value], (mean_tol, max_tol): (f32, f32)) {
    for (n, case) in cases.iter().enumerate() {
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
            mean <= mean_tol,
            "prompt {n}: mean logit difference {mean} (tolerance {mean_tol})"
        );
        assert!(
            worst.0 <= max_tol,
            "prompt {n}: logit of id {} differs by {} (tolerance {max_tol})",
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
    let cases = cases();
    let agree = greedy_agreement(&mut quantized(128), &cases);
    // Where two continuations part, the two top logits were within the
    // rounding noise above (a near tie). Measured: 4 of the 8 prompts agree
    // for 24 tokens or more (three for all 32); the test asks for those 4.
    assert!(
        agree >= 4,
        "only {agree} of {} prompts agree for 24 tokens",
        cases.len()
    );
}

#[test]
fn q4_k_greedy_ids_match_llama_cpp() {
    let _g = heavy_lock();
    let cases = cases_of("smollm2_q4_k.jsonl");
    let agree = greedy_agreement(&mut requantized_q4_k(128), &cases);
    assert!(
        agree >= Q4_K_GREEDY_AGREE,
        "only {agree} of {} prompts agree for 24 tokens",
        cases.len()
    );
}

/// How many prompts' greedy continuations equal llama.cpp's for 24 tokens
/// or more.
fn greedy_agreement(m: &mut Llama, cases: &[serde_json::Value]) -> usize {
    let mut agree = 0;
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
    agree
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

/// On the Q4_K file both engines quantize the K-quant rows' activations in
/// blocks of 256 (one scale per 256 values, coarser than Q4_1's 32) and
/// compute the same integers; only the order of float additions differs.
/// So ours stay as near the f32 product of the same dequantized weights as
/// llama.cpp's: no prompt more than 0.05 further, and the mean |difference|
/// summed over the eight prompts within 10 % of llama.cpp's (measured 1.30
/// against 1.28, the prompts from 0.04 further to 0.02 nearer).
#[test]
fn q4_k_logits_are_as_near_f32_as_llama_cpp() {
    let _g = heavy_lock();
    let q = smollm2_weights().to_dtype(engine::DType::Q4_K).unwrap();
    let f = q.to_dtype(engine::DType::F32).unwrap();
    let (mut mq, mut mf) = (with_f32_cache(q, 128), with_f32_cache(f, 128));
    let (mut sum_ours, mut sum_llama) = (0f32, 0f32);
    for (n, case) in cases_of("smollm2_q4_k.jsonl").iter().enumerate() {
        let prompt = ids(&case["ids"]);
        mq.cache_mut().clear(0);
        mf.cache_mut().clear(0);
        let ours = mq
            .forward(&[(0, &prompt)], LogitsFor::Last)
            .unwrap()
            .remove(0);
        let exact = mf
            .forward(&[(0, &prompt)], LogitsFor::Last)
            .unwrap()
            .remove(0);
        let all: Vec<(usize, f32)> = pairs(&case["sampled"])
            .into_iter()
            .chain(pairs(&case["top"]))
            .collect();
        // Mean |a − b| over the sampled ids, after removing the mean offset.
        let gap = |a: &dyn Fn(usize, f32) -> f32| {
            let d: Vec<f32> = all.iter().map(|&(i, w)| a(i, w) - exact[i]).collect();
            let off = d.iter().sum::<f32>() / d.len() as f32;
            d.iter().map(|x| (x - off).abs()).sum::<f32>() / d.len() as f32
        };
        let (g_ours, g_llama) = (gap(&|i, _| ours[i]), gap(&|_, w| w));
        eprintln!("prompt {n}: mean gap to f32, ours {g_ours:.3}, llama.cpp {g_llama:.3}");
        assert!(
            g_ours <= g_llama + 0.05,
            "prompt {n}: ours {g_ours} vs llama.cpp {g_llama}"
        );
        sum_ours += g_ours;
        sum_llama += g_llama;
    }
    eprintln!("over all prompts: ours {sum_ours:.3}, llama.cpp {sum_llama:.3}");
    assert!(
        sum_ours <= 1.1 * sum_llama,
        "ours {sum_ours} vs llama.cpp {sum_llama}"
    );
}
