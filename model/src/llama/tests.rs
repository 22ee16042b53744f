//! Unit tests of the Llama forward pass on a tiny random model (GQA 4/2).

use engine::Tensor;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{Llama, LlamaConfig, LlamaLayer, LlamaWeights};
use crate::arch_error::ArchError;
use crate::batch::LogitsFor;
use crate::kv_cache::KvCacheError;

fn tiny() -> LlamaWeights {
    let c = LlamaConfig {
        n_layers: 2,
        d_model: 32,
        n_heads: 4,
        n_kv_heads: 2,
        head_dim: 8,
        ffn_dim: 48,
        vocab_size: 50,
        rope_theta: 10_000.0,
        rms_eps: 1e-5,
        max_positions: 64,
    };
    let mut rng = StdRng::seed_from_u64(7);
    let mut r = |n: usize, scale: f32| -> Vec<f32> {
        (0..n).map(|_| rng.gen_range(-scale..scale)).collect()
    };
    let d = c.d_model;
    let mut m =
        |rows: usize, cols: usize| Tensor::from_vec(r(rows * cols, 0.3), &[rows, cols]).unwrap();
    let (q, kv) = (c.n_heads * c.head_dim, c.n_kv_heads * c.head_dim);
    let mut layers = Vec::new();
    for _ in 0..c.n_layers {
        layers.push(LlamaLayer {
            attn_norm: Tensor::zeros(&[d]).unwrap(),
            wq: m(q, d),
            wk: m(kv, d),
            wv: m(kv, d),
            wo: m(d, q),
            ffn_norm: Tensor::zeros(&[d]).unwrap(),
            w_gate: m(c.ffn_dim, d),
            w_up: m(c.ffn_dim, d),
            w_down: m(d, c.ffn_dim),
        });
    }
    let mut norm = || {
        let v: Vec<f32> = r(d, 1.0).iter().map(|x| 1.0 + 0.2 * x).collect();
        Tensor::from_vec(v, &[d]).unwrap()
    };
    for l in &mut layers {
        l.attn_norm = norm();
        l.ffn_norm = norm();
    }
    LlamaWeights {
        out_norm: norm(),
        tok_embd: Tensor::from_vec(r(c.vocab_size * d, 1.0), &[c.vocab_size, d]).unwrap(),
        lm_head: None,
        layers,
        config: c,
    }
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn one_call_prefill_equals_token_by_token() {
    let toks = [3u32, 17, 42, 8, 8, 1, 49, 20, 5];
    let mut whole = Llama::new(tiny(), 32, 1).unwrap();
    let all = whole
        .forward(&[(0, &toks)], LogitsFor::All)
        .unwrap()
        .remove(0);
    let mut step = Llama::new(tiny(), 32, 1).unwrap();
    for (i, t) in toks.iter().enumerate() {
        let l = step
            .forward(&[(0, &[*t])], LogitsFor::Last)
            .unwrap()
            .remove(0);
        let row = &all[i * 50..(i + 1) * 50];
        assert!(
            max_diff(&l, row) < 1e-5,
            "position {i}: {}",
            max_diff(&l, row)
        );
    }
    assert_eq!(step.cache().len(0), toks.len());
}

#[test]
fn batched_slots_equal_separate_runs() {
    let (a, b) = ([1u32, 2, 3, 4, 5], [9u32, 8]);
    let mut batched = Llama::new(tiny(), 16, 2).unwrap();
    let out = batched
        .forward(&[(1, &b), (0, &a)], LogitsFor::Last)
        .unwrap();
    let mut single = Llama::new(tiny(), 16, 1).unwrap();
    let la = single
        .forward(&[(0, &a)], LogitsFor::Last)
        .unwrap()
        .remove(0);
    single.cache_mut().clear(0);
    let lb = single
        .forward(&[(0, &b)], LogitsFor::Last)
        .unwrap()
        .remove(0);
    assert!(max_diff(&out[0], &lb) < 1e-5 && max_diff(&out[1], &la) < 1e-5);
}

/// The stacked logits are `forward`'s rows, bit for bit, one after the
/// other, whatever `out` held before; handing the vector back each call
/// reuses the allocations (the model and the caller trade two).
#[test]
fn stacked_logits_are_the_rows_of_forward() {
    let (a, b) = ([1u32, 2, 3, 4, 5], [9u32, 8]);
    let mut rows = Llama::new(tiny(), 16, 2).unwrap();
    let mut stacked = rows.clone();
    let mut out = vec![7.0; 3];
    let mut seen = Vec::new();
    for step in [[(1, &b[..]), (0, &a[..])], [(0, &a[..1]), (1, &b[..1])]] {
        let want: Vec<f32> = rows.forward(&step, LogitsFor::Last).unwrap().concat();
        stacked.forward_stacked(&step, &mut out).unwrap();
        assert_eq!(out.len(), want.len());
        assert!(
            out.iter()
                .zip(&want)
                .all(|(x, y)| x.to_bits() == y.to_bits())
        );
        seen.push(out.as_ptr());
    }
    stacked.forward_stacked(&[(0, &a[..1])], &mut out).unwrap();
    // The third call got back the vector the first call handed over.
    assert_eq!(out.as_ptr(), seen[0]);
    assert_eq!(stacked.cache().len(0), rows.cache().len(0) + 1);
}

#[test]
fn bad_batches_are_errors_and_leave_the_cache_alone() {
    let mut m = Llama::new(tiny(), 8, 2).unwrap();
    let before = m
        .forward(&[(0, &[1, 2, 3])], LogitsFor::Last)
        .unwrap()
        .remove(0);
    assert!(matches!(
        m.forward(&[(0, &[50])], LogitsFor::Last),
        Err(ArchError::BadToken {
            token: 50,
            vocab: 50
        })
    ));
    assert!(matches!(
        m.forward(&[(1, &[1]), (1, &[2])], LogitsFor::Last),
        Err(ArchError::DuplicateSlot { slot: 1 })
    ));
    assert!(matches!(
        m.forward(&[(0, &[])], LogitsFor::Last),
        Err(ArchError::EmptyInput { slot: 0 })
    ));
    assert!(matches!(
        m.forward(&[(2, &[1])], LogitsFor::Last),
        Err(ArchError::Kv(KvCacheError::BadSlot {
            slot: 2,
            n_slots: 2
        }))
    ));
    let err = m
        .forward(&[(0, &[1, 2, 3, 4, 5, 6])], LogitsFor::Last)
        .unwrap_err();
    assert!(
        err.to_string().contains("context overflow in slot 0"),
        "{err}"
    );
    assert_eq!(m.cache().len(0), 3);
    // The slot still continues exactly as if nothing had happened.
    let mut fresh = Llama::new(tiny(), 8, 1).unwrap();
    fresh.forward(&[(0, &[1, 2, 3])], LogitsFor::Last).unwrap();
    let a = m.forward(&[(0, &[4])], LogitsFor::Last).unwrap().remove(0);
    let b = fresh
        .forward(&[(0, &[4])], LogitsFor::Last)
        .unwrap()
        .remove(0);
    assert_eq!(a, b);
    assert_eq!(before.len(), 50);
}

#[test]
fn inconsistent_weights_are_rejected() {
    let mut w = tiny();
    w.layers[1].wo = w.layers[1]
        .wo
        .narrow(0, 0, 31)
        .unwrap()
        .contiguous()
        .unwrap();
    let err = Llama::new(w, 8, 1).unwrap_err();
    assert!(err.to_string().contains("layer 1 wo"), "{err}");
    let mut w = tiny();
    w.config.n_kv_heads = 3;
    assert!(matches!(Llama::new(w, 8, 1), Err(ArchError::Config(_))));
}

#[test]
fn block_sums_regroup_a_tied_q8_0_head_and_stay_close() {
    // A tied Q8_0 table of whole groups of eight rows: in the block order it
    // is regrouped (the head takes the block-sum kernel, the embedding
    // looks its rows up in the regrouped bytes) and the logits move by
    // float rounding only.
    let mut w = tiny();
    w.config.vocab_size = 56;
    let d = w.config.d_model;
    let table: Vec<f32> = (0..56 * d)
        .map(|i| (i * 37 % 101) as f32 / 50.0 - 1.0)
        .collect();
    w.tok_embd = Tensor::from_vec(table, &[56, d])
        .unwrap()
        .to_dtype(engine::DType::Q8_0)
        .unwrap();
    let toks = [3u32, 17, 42, 8, 55];
    let run = |order| {
        let mut m = Llama::new(w.clone(), 16, 1).unwrap().with_sum_order(order);
        let regrouped = matches!(
            m.weights().tok_embd.storage(),
            engine::tensor::Storage::Regrouped { .. }
        );
        let logits = m.forward(&[(0, &toks)], LogitsFor::All).unwrap().remove(0);
        (regrouped, logits)
    };
    let (ggml, block) = (
        run(engine::quant::SumOrder::Ggml),
        run(engine::quant::SumOrder::Block),
    );
    assert!(
        !ggml.0 && block.0,
        "only the block order regroups the table"
    );
    let scale = ggml.1.iter().fold(0f32, |a, x| a.max(x.abs()));
    assert_ne!(ggml.1, block.1, "the order reaches the head");
    assert!(max_diff(&ggml.1, &block.1) / scale < 1e-4);
}
