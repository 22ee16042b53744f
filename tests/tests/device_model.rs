//! The whole model on a GPU: the same forward pass as on the CPU (engine
//! device ops), checked against `transformers` for GPT-2 and SmolLM2, and
//! against the CPU for a random Llama. Each test needs a GPU (a build with
//! `--features cuda` and the NVIDIA driver); without one it prints why and
//! passes, so these run in CI as a check that they compile and skip
//! cleanly. Last run on an NVIDIA H200 (scripts/gpu-kit.sh, gpu-run.sh):
//! all pass, SmolLM2's logits within 4.1e-5 of `transformers`.

use integration_tests::{
    assert_close, assert_smollm2_reference, f32s, fixture_dir, gpu, ids, random_llama, read_json,
    smollm2_path, smollm2_weights,
};
use model::batch::LogitsFor;
use model::gguf::GgufFile;
use model::gpt2::{Gpt2, Gpt2Weights};
use model::kv_cache::CacheType;
use model::llama::Llama;
use model::tokenizer::Tokenizer;

/// GPT-2 tiny (f32 GGUF) on the GPU gives `transformers`' logits for every
/// position of every prompt: both sides compute in f32 from the same
/// weights, in different summation orders, so the CPU's tolerance against
/// the same reference (tests/gpt2_gguf.rs) applies.
#[test]
fn gpt2_on_the_gpu_gives_the_transformers_logits() {
    let Some(dev) = gpu() else { return };
    let dir = fixture_dir("gpt2-tiny-a");
    let r = read_json(&dir.join("reference.json"));
    let g = GgufFile::open(dir.join("model.gguf")).unwrap();
    let mut m = Gpt2::new(Gpt2Weights::from_gguf(&g).unwrap(), 128, 1)
        .unwrap()
        .with_cache_type(CacheType::F32)
        .unwrap()
        .to_device(&dev)
        .unwrap();
    for (i, p) in r["prompts"].as_array().unwrap().iter().enumerate() {
        m.cache_mut().clear(0);
        let got = m.forward(&[(0, &ids(&p["ids"]))], LogitsFor::Last).unwrap();
        assert_close(
            &format!("prompt {i} on {}", dev.name()),
            &got[0],
            &f32s(&p["last_logits"]),
            1e-4,
        );
    }
}

/// Greedy continuation of `prompt` for `n` tokens, one decode step at a time.
fn greedy(m: &mut Llama, prompt: &[u32], n: usize) -> (Vec<f32>, Vec<u32>) {
    m.cache_mut().clear(0);
    let mut logits = m
        .forward(&[(0, prompt)], LogitsFor::Last)
        .unwrap()
        .remove(0);
    let first = logits.clone();
    let mut out = Vec::new();
    for _ in 0..n {
        let next = engine::kernels::argmax(&logits) as u32;
        out.push(next);
        logits = m
            .forward(&[(0, &[next])], LogitsFor::Last)
            .unwrap()
            .remove(0);
    }
    (first, out)
}

/// As [`greedy`], each token chosen on the model's device
/// ([`Llama::forward_greedy`]: an id and its log-probability come back,
/// not the logits).
fn greedy_on_device(m: &mut Llama, prompt: &[u32], n: usize) -> Vec<(u32, f32)> {
    m.cache_mut().clear(0);
    let mut next = m.forward_greedy(&[(0, prompt)]).unwrap()[0];
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(next);
        next = m.forward_greedy(&[(0, &[next.0])]).unwrap()[0];
    }
    out
}

/// The host's greedy log-probability of `id` under `logits`, in f64.
fn host_logprob(logits: &[f32], id: u32) -> f32 {
    let m = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let lse = m + logits
        .iter()
        .map(|&v| (v as f64 - m).exp())
        .sum::<f64>()
        .ln();
    (logits[id as usize] as f64 - lse) as f32
}

/// Logits tolerance of SmolLM2 on the GPU against `transformers`. Both
/// compute in f32 from the same values: the GPU dequantizes the file's Q4_1
/// and Q8_0 blocks in registers, `transformers` dequantized them to f32 at
/// load. Only the order of the sums differs (one warp's 32 lanes, then a
/// shuffle tree, against PyTorch's kernels), through 30 layers whose
/// residual stream reaches a few hundred; the CPU on the widened weights
/// stays within 4.1e-5 of the same fixture (tests/smollm2_reference.rs).
const SMOLLM2_TOL: f32 = 2e-3;

/// SmolLM2 on the GPU, with the file's own blocks, against `transformers`
/// on the same GGUF (tests/fixtures/smollm2, made by
/// scripts/make_model_fixtures.py): the last position's argmax, top-20 and
/// 256 sampled logits of six prompts; 40 greedy tokens of five prompts
/// (identical for at least three, the CPU's rule: near-ties may flip a
/// rare prompt). Then batched decode on the GPU against one sequence at a
/// time on the GPU, within 1e-3.
#[test]
fn smollm2_on_the_gpu_gives_the_transformers_logits() {
    let Some(dev) = gpu() else { return };
    if let Err(e) = model::model_path::find_default_model() {
        eprintln!("skipped: SmolLM2 is not on this machine ({e})");
        return;
    }
    let r = read_json(&fixture_dir("smollm2").join("reference.json"));
    let sample_idx = ids(&r["sample_indices"]);
    let mut gpu = Llama::new(smollm2_weights().clone(), 512, 2)
        .unwrap()
        .with_cache_type(CacheType::F32)
        .unwrap()
        .to_device(&dev)
        .unwrap();
    for (i, p) in r["logits"].as_array().unwrap().iter().enumerate() {
        gpu.cache_mut().clear(0);
        let logits = gpu
            .forward(&[(0, &ids(&p["ids"]))], LogitsFor::Last)
            .unwrap()
            .remove(0);
        assert_smollm2_reference(
            &format!("prompt {i}"),
            Some(&dev.name()),
            &logits,
            p,
            &sample_idx,
            SMOLLM2_TOL,
        );
    }
    let mut identical = 0;
    for (i, g) in r["greedy"].as_array().unwrap().iter().enumerate() {
        let want = ids(&g["tokens"]);
        let got = greedy(&mut gpu, &ids(&g["ids"]), want.len()).1;
        match got.iter().zip(&want).position(|(a, b)| a != b) {
            None => identical += 1,
            Some(s) => eprintln!(
                "prompt {i}: diverges at step {s} (reference margin there {})",
                f32s(&g["margins"])[s]
            ),
        }
    }
    // The same continuation chosen on the GPU (ids, not logits, come back).
    let g0 = &r["greedy"][0];
    let by_logits = greedy(&mut gpu, &ids(&g0["ids"]), 40).1;
    let on_device: Vec<u32> = greedy_on_device(&mut gpu, &ids(&g0["ids"]), 40)
        .iter()
        .map(|c| c.0)
        .collect();
    assert_eq!(
        on_device, by_logits,
        "greedy on the GPU against the logits' argmax"
    );
    eprintln!("greedy: {identical} of 5 continuations identical to transformers' 40 tokens");
    assert!(
        identical >= 3,
        "only {identical} of 5 greedy continuations identical"
    );
    // Two sequences in one batched step give what each gives alone.
    let tok = Tokenizer::from_gguf(&GgufFile::open(smollm2_path()).unwrap()).unwrap();
    let (a, b) = (
        tok.encode("The capital of France is"),
        tok.encode("Once upon a time"),
    );
    gpu.cache_mut().clear_all();
    let both = gpu.forward(&[(0, &a), (1, &b)], LogitsFor::Last).unwrap();
    let alone_a = greedy(&mut gpu, &a, 0).0;
    gpu.cache_mut().clear(1);
    let alone_b = gpu.forward(&[(1, &b)], LogitsFor::Last).unwrap().remove(0);
    assert_close("batched entry 0", &both[0], &alone_a, 1e-3);
    assert_close("batched entry 1", &both[1], &alone_b, 1e-3);
}

/// The Llama forward pass on a GPU against the CPU's, on random weights,
/// f32 and Q8_0. The GPU multiplies the Q8_0 blocks, dequantized in
/// registers, by f32 activations; the CPU's own Q8_0 path rounds the
/// activations to 8 bits (as llama.cpp does), so the CPU side runs the
/// same weights widened to f32, and both compare as f32 against f32: only
/// the order of the sums differs (logits within 1e-3, the same greedy
/// tokens). Prefill (79 tokens: cuBLAS on a GPU, the Q8_0 weights widened
/// to f32 first), decode steps and a batch of two sequences.
#[test]
fn random_llama_on_the_gpu_matches_the_cpu() {
    let Some(dev) = gpu() else { return };
    for dtype in [engine::DType::F32, engine::DType::Q8_0] {
        let tol = 1e-3;
        let w = random_llama(dtype);
        let mut cpu = Llama::new(w.to_dtype(engine::DType::F32).unwrap(), 128, 2)
            .unwrap()
            .with_cache_type(CacheType::F32)
            .unwrap();
        let mut gpu = Llama::new(w, 128, 2)
            .unwrap()
            .with_cache_type(CacheType::F32)
            .unwrap()
            .to_device(&dev)
            .unwrap();
        let (a, b): (Vec<u32>, Vec<u32>) = ((1..80).collect(), vec![7, 300, 5, 9]);
        let want = cpu.forward(&[(0, &a), (1, &b)], LogitsFor::All).unwrap();
        let got = gpu.forward(&[(0, &a), (1, &b)], LogitsFor::All).unwrap();
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_close(&format!("{dtype} prefill entry {i}"), g, w, tol);
        }
        for step in 0..8u32 {
            let next = [(0, &[step * 3][..]), (1, &[step + 11][..])];
            let want = cpu.forward(&next, LogitsFor::Last).unwrap();
            let got = gpu.forward(&next, LogitsFor::Last).unwrap();
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert_close(&format!("{dtype} step {step} entry {i}"), g, w, tol);
            }
        }
        let (lc, gc) = (greedy(&mut cpu, &a, 12), greedy(&mut gpu, &a, 12));
        assert_eq!(lc.1, gc.1, "{dtype} greedy continuation");
        // Chosen on the GPU: the same ids, and the host's log-probabilities.
        let chosen = greedy_on_device(&mut gpu, &a, 12);
        let ids_on_device: Vec<u32> = chosen.iter().map(|c| c.0).collect();
        assert_eq!(ids_on_device, lc.1, "{dtype} greedy on the GPU");
        let (lc0, _) = greedy(&mut cpu, &a, 0);
        let want = host_logprob(&lc0, chosen[0].0);
        assert!(
            (chosen[0].1 - want).abs() <= 1e-4 * want.abs().max(1.0),
            "{dtype} greedy log-probability on the GPU: {} against {want}",
            chosen[0].1
        );
    }
}
