//! Step 3: one attention head.
//!
//! Each query scores every key it may see, `q·k / √head_dim`, turns the
//! scores into weights with a softmax, and returns the weighted sum of the
//! values. Causal: the `t` queries are the *last* `t` of `s` positions, so
//! query `i` (position `s − t + i`) sees keys `0..=s − t + i` and nothing
//! after it. No mask needs to be built; stop the loop at the last visible
//! key.
//!
//! You may call your step 2 softmax (`crate::step2_softmax::softmax`) or
//! the engine's (`engine::kernels::softmax_inplace`).
//!
//! Check: `cargo test --release --test step3_attention` (every head of
//! PyTorch's `scaled_dot_product_attention` on a prefill, a prefill after
//! cached positions, and a single decode step, with grouped-query heads).

/// Causal attention for one head. `q`: `t × head_dim`; `k`, `v`:
/// `s × head_dim` with `s ≥ t`, all row-major. Writes `t × head_dim` into
/// `out`.
pub fn attention_head(q: &[f32], k: &[f32], v: &[f32], head_dim: usize, out: &mut [f32]) {
    todo!("step 3: attention_head")
}
