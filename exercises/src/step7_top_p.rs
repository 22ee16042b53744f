//! Step 7: top-p (nucleus) sampling.
//!
//! Top-p keeps the most probable tokens whose probabilities add up to `p`
//! and removes the rest (sets their logits to `-inf`). Hugging Face's rule,
//! which the check follows exactly: sort the tokens from the *least*
//! probable up, add up their softmax probabilities as you go, and remove a
//! token while the running sum (its own probability included) is still
//! `<= 1 − p`; the most probable token always stays. `p = 1` keeps all.
//!
//! Then draw: take one uniform number `u = rng.gen::<f64>()` in `[0, 1)`
//! (one call, so that the draws line up with the project's), walk the
//! tokens in id order adding up their weights `exp(logit − max)` (as f64),
//! and return the first token at which the running sum exceeds
//! `u · Σ weights`. A removed token has weight 0 and can never be drawn.
//!
//! Check: `cargo test --release --test step7_top_p` compares your filter
//! with Hugging Face's `TopPLogitsWarper` on 24 fixture rows, then samples
//! 24 tokens from the GPT-2 fixture with your filter and draw and compares
//! with the project's own sampling run from the same seed.

use rand::Rng;

/// Remove (set to `-inf`) every token outside the nucleus of mass `p`
/// (`0 < p <= 1`).
pub fn top_p(logits: &mut [f32], p: f32) {
    todo!("step 7: top_p")
}

/// Draw a token from `softmax(logits)` by inverse CDF, with one
/// `rng.gen::<f64>()`.
pub fn sample(logits: &[f32], rng: &mut impl Rng) -> u32 {
    todo!("step 7: sample")
}
