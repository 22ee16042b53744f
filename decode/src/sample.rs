//! Sampling from a processed logits row with a seeded ChaCha generator.

use rand::{Rng, SeedableRng};

use crate::probs::{exp_weights, weights};
use rand_chacha::ChaCha20Rng;

/// The random generator every sampling path uses: ChaCha20, seeded from a
/// `u64`. ChaCha's output is specified bit for bit, so the same seed gives
/// the same draws on every platform. Sequence `i` of a batch uses stream
/// `i` of the same seed, so batched and single runs agree.
pub fn seeded_rng(seed: u64, stream: u64) -> ChaCha20Rng {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// Draw one token from `softmax(logits)` by inverse CDF: one uniform
/// `u ∈ [0, 1)`, then walk the unnormalised cumulative weights (summed in
/// f64) until they exceed `u · total`. Masked (`-inf`) tokens have weight
/// 0 and are never drawn. The row must hold at least one finite logit.
// ANCHOR: sample
pub fn sample_from_logits(logits: &[f32], rng: &mut impl Rng) -> u32 {
    let (weights, total) = exp_weights(logits);
    draw(&weights, total, rng)
}
// ANCHOR_END: sample

#[cfg(not(feature = "mutant-sample-skip-first"))]
/// One uniform draw, scaled to the weights' `total`, and the token where
/// their cumulative sum passes it ([`token_at`]).
fn draw(weights: &[f32], total: f64, rng: &mut impl Rng) -> u32 {
    let u: f64 = rng.r#gen::<f64>() * total;
    token_at(weights, total, u)
}

/// [`walk`]'s token for `u` over `weights` (never negative, as
/// exponentials are, and summing to `total`), found by
/// summing blocks of weights in vector lanes and walking only the block
/// where the sum passes `u`: on a 49,152-token row about a tenth of the
/// walk's time. Where that search cannot prove the walk's answer (`u`
/// within a few roundings of a boundary between tokens, about one draw in
/// a few billion), the walk itself answers.
pub fn token_at(weights: &[f32], total: f64, u: f64) -> u32 {
    crate::cdf::locate(weights, total, u).unwrap_or_else(|| walk(weights, u))
}

// ANCHOR: draw
/// The inverse-CDF walk over unnormalised weights: the first token whose
/// cumulative weight, added in order in f64, exceeds `u`.
pub fn walk(weights: &[f32], u: f64) -> u32 {
    let mut cum = 0.0;
    let mut last_nonzero = 0;
    for (i, &w) in weights.iter().enumerate() {
        if w == 0.0 {
            continue;
        }
        last_nonzero = i;
        cum += f64::from(w);
        if cum > u {
            return i as u32;
        }
    }
    // Rounding left u at the very top: the last token with weight wins.
    last_nonzero as u32
}
// ANCHOR_END: draw

/// The mutant walk: never returns token 0.
#[cfg(feature = "mutant-sample-skip-first")]
fn draw(weights: &[f32], total: f64, rng: &mut impl Rng) -> u32 {
    let u: f64 = rng.r#gen::<f64>() * total;
    let mut cum = 0.0;
    let mut last_nonzero = 0;
    for (i, &w) in weights.iter().enumerate() {
        if w == 0.0 {
            continue;
        }
        last_nonzero = i;
        cum += f64::from(w);
        if cum > u && i > 0 {
            return i as u32;
        }
    }
    last_nonzero as u32
}

/// [`sample_from_logits`], and the drawn token's log-probability
/// (`logits[id] − ln Σ e^x`, the bits of
/// [`log_sum_exp`](crate::probs::log_sum_exp)): both from one pass of
/// exponentials ([`weights`]), where drawing and then scoring would run
/// them twice. The same generator state draws the same token as
/// [`sample_from_logits`].
pub fn sample_with_logprob(logits: &[f32], rng: &mut impl Rng) -> (u32, f32) {
    let wt = weights(logits);
    let id = draw(&wt.w, wt.total, rng);
    (id, logits[id as usize] - wt.log_sum_exp)
}
