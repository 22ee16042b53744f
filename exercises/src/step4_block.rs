//! Step 4: a transformer block (GPT-2's).
//!
//! ```text
//! x += W_o · attention(split_heads(W_qkv · LN₁(x) + b_qkv)) + b_o
//! x += W_proj · gelu(W_fc · LN₂(x) + b_fc) + b_proj
//! ```
//!
//! `x` holds `t` rows of `n_embd` floats: one sequence at positions
//! `0..t`, no KV cache. `W_qkv · LN₁(x) + b_qkv` gives each row `3·n_embd`
//! floats, `q | k | v`; each of the three is `n_head` heads of
//! `head_dim = n_embd / n_head` floats side by side. Head `h` of the
//! attention output is causal attention of head `h` of `q` over head `h` of
//! `k` and `v` (your step 3 `crate::step3_attention::attention_head`, or
//! the engine's `engine::Tensor::causal_attention` on `[t, n_head, head_dim]`
//! tensors); the heads go back side by side into rows of `n_embd`.
//!
//! Tools from the engine (every matrix in [`Gpt2Layer`] is stored
//! `[out][in]`):
//! * `engine::nn::layernorm(x, &w, &b, eps, out)` normalises every row;
//! * `engine::nn::linear(x, t, &[&w], out)` computes `out = x · Wᵀ` for `t`
//!   rows, in whatever dtype `W` is stored;
//! * `engine::kernels::gelu_tanh_inplace`, `engine::kernels::add_inplace`;
//! * a bias is an f32 tensor: `b.as_f32_slice()`, added to every row.
//!
//! Check: `cargo test --release --test step4_block` runs the whole forward
//! pass of the two random-weight GPT-2 fixtures with your block in every
//! layer and compares every position's logits with `transformers`.

use model::gpt2::{Gpt2Layer, Gpt2Params};

/// One GPT-2 block over the `t = x.len() / n_embd` rows of `x`, in place.
pub fn gpt2_block(x: &mut [f32], layer: &Gpt2Layer, p: &Gpt2Params) {
    todo!("step 4: gpt2_block")
}
