//! Step 4, the reference: `Gpt2::block` in `model/src/gpt2/forward.rs` (the
//! chapter "The forward pass" includes it), run on one sequence through
//! `Gpt2::run_block`: a one-block model is built around the given layer
//! (its embeddings and head are never used) and the block runs in place.

use engine::Tensor;
use model::gpt2::{Gpt2, Gpt2Layer, Gpt2Params, Gpt2Weights};
use model::kv_cache::CacheType;

/// One GPT-2 block over the `t = x.len() / n_embd` rows of `x`, in place.
pub fn gpt2_block(x: &mut [f32], l: &Gpt2Layer, p: &Gpt2Params) {
    let d = p.n_embd;
    let t = x.len() / d;
    let weights = Gpt2Weights {
        params: Gpt2Params {
            n_layer: 1,
            ..p.clone()
        },
        wte: Tensor::zeros(&[p.vocab_size, d]).expect("wte"),
        wpe: Tensor::zeros(&[p.n_positions, d]).expect("wpe"),
        layers: vec![l.clone()],
        ln_f: (
            Tensor::full(&[d], 1.0).expect("ln_f"),
            Tensor::zeros(&[d]).expect("ln_f"),
        ),
    };
    // An f32 cache: the keys and values exactly as the block computes them.
    let mut model = Gpt2::new(weights, t, 1)
        .and_then(|m| m.with_cache_type(CacheType::F32))
        .expect("a one-block GPT-2");
    model.run_block(0, x).expect("the block");
}
