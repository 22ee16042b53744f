//! Unit tests of the GPT-2 weights and forward pass on a tiny random model
//! built from tensors in the Hugging Face layout (Conv1D `[in][out]`).

use std::collections::HashMap;

use engine::{DType, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{Gpt2, Gpt2Params, Gpt2Weights};
use crate::arch_error::ArchError;
use crate::batch::LogitsFor;

fn params() -> Gpt2Params {
    Gpt2Params {
        n_layer: 2,
        n_embd: 32,
        n_head: 4,
        vocab_size: 50,
        n_positions: 64,
        layer_norm_epsilon: 1e-5,
    }
}

/// The tensors of a random tiny GPT-2, by their file names.
fn hf_tensors() -> HashMap<String, Tensor> {
    let p = params();
    let d = p.n_embd;
    let mut rng = StdRng::seed_from_u64(11);
    let mut t = HashMap::new();
    let mut put = |name: String, shape: &[usize], centre: f32, scale: f32| {
        let n = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|_| centre + rng.gen_range(-scale..scale))
            .collect();
        t.insert(name, Tensor::from_vec(v, shape).unwrap());
    };
    put(
        "transformer.wte.weight".into(),
        &[p.vocab_size, d],
        0.0,
        1.0,
    );
    put(
        "transformer.wpe.weight".into(),
        &[p.n_positions, d],
        0.0,
        0.3,
    );
    for i in 0..p.n_layer {
        let n = |s: &str| format!("transformer.h.{i}.{s}");
        for ln in ["ln_1", "ln_2"] {
            put(n(&format!("{ln}.weight")), &[d], 1.0, 0.2);
            put(n(&format!("{ln}.bias")), &[d], 0.0, 0.1);
        }
        for (name, inp, out) in [
            ("attn.c_attn", d, 3 * d),
            ("attn.c_proj", d, d),
            ("mlp.c_fc", d, 4 * d),
            ("mlp.c_proj", 4 * d, d),
        ] {
            put(n(&format!("{name}.weight")), &[inp, out], 0.0, 0.3);
            put(n(&format!("{name}.bias")), &[out], 0.0, 0.1);
        }
    }
    put("transformer.ln_f.weight".into(), &[d], 1.0, 0.2);
    put("transformer.ln_f.bias".into(), &[d], 0.0, 0.1);
    t
}

fn tiny() -> Gpt2Weights {
    let t = hf_tensors();
    Gpt2Weights::from_tensors(params(), |name| t.get(name).cloned()).unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn logits(w: Gpt2Weights, toks: &[u32]) -> Vec<f32> {
    let mut m = Gpt2::new(w, 32, 1).unwrap();
    m.forward(&[(0, toks)], LogitsFor::All).unwrap().remove(0)
}

const TOKS: [u32; 9] = [3, 17, 42, 8, 8, 1, 49, 20, 5];

#[test]
fn conv1d_weights_are_transposed_and_vectors_are_f32() {
    let t = hf_tensors();
    let w = tiny();
    let file = &t["transformer.h.1.mlp.c_fc.weight"];
    let l = &w.layers[1];
    assert_eq!(l.w_fc.shape(), &[128, 32]);
    for (r, c) in [(0, 0), (5, 17), (127, 31)] {
        assert_eq!(l.w_fc.get(&[r, c]).unwrap(), file.get(&[c, r]).unwrap());
    }
    for (_, v) in l.vectors() {
        assert_eq!(v.dtype(), DType::F32);
    }
    let d = 32;
    let per_layer = 2 * 2 * d + 3 * d * d + 3 * d + d * d + d + 8 * d * d + 4 * d + d;
    assert_eq!(w.n_params(), 50 * d + 64 * d + 2 * per_layer + 2 * d);
    assert_eq!(w.n_bytes(), 4 * w.n_params());
    assert_eq!(w.bytes_per_token(), w.n_bytes() - 4 * 64 * d);
}

#[test]
fn one_call_prefill_equals_token_by_token() {
    let all = logits(tiny(), &TOKS);
    let mut m = Gpt2::new(tiny(), 32, 1).unwrap();
    for (i, t) in TOKS.iter().enumerate() {
        let got = m.forward(&[(0, &[*t])], LogitsFor::Last).unwrap().remove(0);
        let want = &all[i * 50..(i + 1) * 50];
        assert!(max_diff(&got, want) < 1e-4, "position {i}");
    }
}

/// Logits of `TOKS` fed one token per call (the matrix-vector path; one
/// call with all of them takes the matrix-product path).
fn logits_step_by_step(w: Gpt2Weights) -> Vec<f32> {
    let mut m = Gpt2::new(w, 32, 1).unwrap();
    TOKS.iter()
        .flat_map(|t| m.forward(&[(0, &[*t])], LogitsFor::Last).unwrap().remove(0))
        .collect()
}

#[test]
fn converted_matrices_run_close_to_f32() {
    let want = logits(tiny(), &TOKS);
    let scale = want.iter().fold(0f32, |a, x| a.max(x.abs()));
    // Relative to the largest logit (about 8.5 here).
    for (dtype, tol) in [(DType::F16, 2e-3), (DType::BF16, 2e-2), (DType::Q8_0, 4e-2)] {
        let w = tiny().to_dtype(dtype).unwrap();
        assert_eq!(w.wte.dtype(), dtype);
        for l in &w.layers {
            for (name, m) in l.matrices() {
                assert_eq!(m.dtype(), dtype, "{name}");
            }
            for (name, v) in l.vectors() {
                assert_eq!(v.dtype(), DType::F32, "{name}");
            }
        }
        assert_eq!(w.wpe.dtype(), DType::F32);
        assert_eq!(w.ln_f.0.dtype(), DType::F32);
        assert_eq!(w.n_params(), tiny().n_params());
        assert!(w.n_bytes() < tiny().n_bytes(), "{dtype}");
        for (path, got) in [
            ("prefill", logits(w.clone(), &TOKS)),
            ("step by step", logits_step_by_step(w)),
        ] {
            let diff = max_diff(&got, &want) / scale;
            assert!(
                diff < tol,
                "{dtype} {path}: max diff {diff} of the largest logit"
            );
        }
    }
}

#[test]
fn block_sums_reach_every_regrouped_matrix_and_stay_close() {
    // Q4_0 matrices (rows in eights, as GPT-2's are) are regrouped; the
    // block order changes the bits of a block's products, not their
    // meaning. (Compared on a block's output: the 8-bit activations of the
    // tiny head round such differences away.)
    let w = tiny().to_dtype(DType::Q4_0).unwrap();
    let run = |order| {
        let mut m = Gpt2::new(w.clone(), 32, 1).unwrap().with_sum_order(order);
        let mut x: Vec<f32> = (0..9 * 32)
            .map(|i| (i * 37 % 101) as f32 / 50.0 - 1.0)
            .collect();
        m.run_block(1, &mut x).unwrap();
        x
    };
    let (ggml, block) = (
        run(engine::quant::SumOrder::Ggml),
        run(engine::quant::SumOrder::Block),
    );
    let scale = ggml.iter().fold(0f32, |a, x| a.max(x.abs()));
    assert_ne!(ggml, block, "the order reaches the layers");
    assert!(max_diff(&ggml, &block) / scale < 1e-4);
}

#[test]
fn inconsistent_weights_are_rejected() {
    let mut w = tiny();
    w.layers[1].w_o = w.layers[1]
        .w_o
        .narrow(0, 0, 31)
        .unwrap()
        .contiguous()
        .unwrap();
    let err = Gpt2::new(w, 8, 1).unwrap_err();
    assert!(err.to_string().contains("layer 1 w_o"), "{err}");

    let mut w = tiny();
    w.layers[0].b_fc = w.layers[0].b_fc.to_dtype(DType::F16).unwrap();
    let err = Gpt2::new(w, 8, 1).unwrap_err();
    assert!(matches!(err, ArchError::Config(_)), "{err}");
    assert!(err.to_string().contains("layer 0 b_fc"), "{err}");

    let mut w = tiny();
    w.wpe = w.wpe.narrow(0, 0, 10).unwrap().contiguous().unwrap();
    let err = Gpt2::new(w, 8, 1).unwrap_err();
    assert!(err.to_string().contains("wpe"), "{err}");

    let mut t = hf_tensors();
    t.remove("transformer.h.1.attn.c_proj.bias");
    let err = Gpt2Weights::from_tensors(params(), |name| t.get(name).cloned()).unwrap_err();
    assert!(err.to_string().contains("h.1.attn.c_proj.bias"), "{err}");
}

#[test]
fn widths_that_are_not_whole_blocks_cannot_be_quantized() {
    let mut p = params();
    p.n_embd = 24;
    p.n_head = 3;
    let d = 24;
    let mut t = HashMap::new();
    let mut put = |name: String, shape: &[usize]| {
        t.insert(name, Tensor::full(shape, 0.01).unwrap());
    };
    put("wte.weight".into(), &[p.vocab_size, d]);
    put("wpe.weight".into(), &[p.n_positions, d]);
    put("ln_f.weight".into(), &[d]);
    put("ln_f.bias".into(), &[d]);
    for i in 0..p.n_layer {
        for (name, shape) in [
            ("ln_1.weight", vec![d]),
            ("ln_1.bias", vec![d]),
            ("ln_2.weight", vec![d]),
            ("ln_2.bias", vec![d]),
            ("attn.c_attn.weight", vec![d, 3 * d]),
            ("attn.c_attn.bias", vec![3 * d]),
            ("attn.c_proj.weight", vec![d, d]),
            ("attn.c_proj.bias", vec![d]),
            ("mlp.c_fc.weight", vec![d, 4 * d]),
            ("mlp.c_fc.bias", vec![4 * d]),
            ("mlp.c_proj.weight", vec![4 * d, d]),
            ("mlp.c_proj.bias", vec![d]),
        ] {
            put(format!("h.{i}.{name}"), &shape);
        }
    }
    let w = Gpt2Weights::from_tensors(p, |name| t.get(name).cloned()).unwrap();
    let err = w.to_dtype(DType::Q8_0).unwrap_err();
    assert!(err.to_string().contains("wte"), "{err}");
    assert!(w.to_dtype(DType::F16).is_ok());
}
