//! Step 4, the reference: `Gpt2::block` in `model/src/gpt2/forward.rs` (the
//! chapter "The forward pass" includes it). That one works on a batch of
//! sequences with the KV cache; this is the same sequence of engine calls
//! for one sequence without a cache.

use engine::{Tensor, kernels, nn};
use model::gpt2::{Gpt2Layer, Gpt2Params};

fn add_bias(rows: &mut [f32], b: &Tensor) {
    let b = b.as_f32_slice().expect("biases are f32");
    for row in rows.chunks_exact_mut(b.len()) {
        kernels::add_inplace(row, b);
    }
}

/// One GPT-2 block over the `t = x.len() / n_embd` rows of `x`, in place.
pub fn gpt2_block(x: &mut [f32], l: &Gpt2Layer, p: &Gpt2Params) {
    let (d, eps) = (p.n_embd, p.layer_norm_epsilon);
    let t = x.len() / d;
    let heads = [t, p.n_head, p.head_dim()];

    // Attention: x += W_o · attention(split(W_qkv · LN1(x) + b)) + b_o
    let mut xn = vec![0.0; t * d];
    nn::layernorm(x, &l.ln1.0, &l.ln1.1, eps, &mut xn).expect("ln1");
    let mut qkv = vec![0.0; t * 3 * d];
    nn::linear(&xn, t, &[&l.w_qkv], &mut qkv).expect("w_qkv");
    add_bias(&mut qkv, &l.b_qkv);
    let part = |k: usize| -> Tensor {
        let rows: Vec<f32> = qkv
            .chunks_exact(3 * d)
            .flat_map(|r| r[k * d..(k + 1) * d].iter().copied())
            .collect();
        Tensor::from_vec(rows, &heads).expect("q, k or v")
    };
    let attn = Tensor::causal_attention(&part(0), &part(1), &part(2))
        .and_then(|a| a.to_vec_f32())
        .expect("attention");
    let mut proj = vec![0.0; t * d];
    nn::linear(&attn, t, &[&l.w_o], &mut proj).expect("w_o");
    add_bias(&mut proj, &l.b_o);
    kernels::add_inplace(x, &proj);

    // MLP: x += W_proj · gelu(W_fc · LN2(x) + b_fc) + b_proj
    nn::layernorm(x, &l.ln2.0, &l.ln2.1, eps, &mut xn).expect("ln2");
    let mut h = vec![0.0; t * 4 * d];
    nn::linear(&xn, t, &[&l.w_fc], &mut h).expect("w_fc");
    add_bias(&mut h, &l.b_fc);
    kernels::gelu_tanh_inplace(&mut h);
    nn::linear(&h, t, &[&l.w_proj], &mut proj).expect("w_proj");
    add_bias(&mut proj, &l.b_proj);
    kernels::add_inplace(x, &proj);
}
