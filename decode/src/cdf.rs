//! Where the cumulative weights pass a value, found quickly but with the
//! inverse-CDF walk's own answer.
//!
//! The walk ([`crate::sample::walk`]) adds one weight at a time in `f64`
//! until the running sum passes `u`. Each addition waits for the one
//! before it, so on a 49,152-token row the walk to a random point took
//! about 21 µs, nearly as long as the exponentials that made the weights.
//! [`locate`] sums blocks of [`BLOCK`] weights in vector lanes instead,
//! finds the block whose end passes `u`, and walks only inside it.
//!
//! Its sums round differently from the walk's, but by little. Every
//! partial sum, the walk's or this search's, is within
//! `δ = (terms − 1)·2⁻⁵³·S` of the exact sum it stands for (`S` the exact
//! total: the weights are never negative, so no partial sum exceeds it),
//! so the two differ by at most `2δ`. A token whose running sum before it
//! is below `u − 2δ` and after it above `u + 2δ` is therefore where the
//! walk stops too. Where the search cannot show that, because `u` lies
//! within the margin of a boundary (about one draw in a few billion), it
//! says so and the caller walks. The margin here is at least twice `2δ`.

use crate::widest::widest;

/// Weights per block summed in lanes before the walk inside one block.
pub(crate) const BLOCK: usize = 256;

/// Lanes of the block sums: two 512-bit vectors of `f64`.
const LANES: usize = 16;

widest! {
    /// The token [`crate::sample::walk`] returns for `u` over `weights`
    /// (never negative, summing to about `total`), or `None` where `u` is
    /// too close to a boundary between two tokens to be sure, or the row
    /// is not one the walk would pass `u` on (a total that is not finite
    /// and positive, `u` outside `0..total`).
    pub(crate) fn locate(weights: &[f32], total: f64, u: f64) -> Option<u32> = locate_body
}

#[inline(always)]
fn locate_body(weights: &[f32], total: f64, u: f64) -> Option<u32> {
    if !(total.is_finite() && total > 0.0 && (0.0..total).contains(&u)) {
        return None;
    }
    // At least twice 2δ: the terms are at most the row's length plus its
    // blocks, and the exact total at most `total` and a rounding more.
    let margin = 8.0 * weights.len() as f64 * f64::EPSILON * total;
    let mut start = 0.0f64;
    for (b, block) in weights.chunks(BLOCK).enumerate() {
        let mut lanes = [0f64; LANES];
        let whole = block.chunks_exact(LANES);
        let rest: f64 = whole.remainder().iter().map(|&x| f64::from(x)).sum();
        for c in whole {
            for (s, &x) in lanes.iter_mut().zip(c) {
                *s += f64::from(x);
            }
        }
        let end = start + (lanes.iter().sum::<f64>() + rest);
        if end <= u {
            start = end;
            continue;
        }
        // The walk, from this block's start.
        let mut cum = start;
        for (j, &x) in block.iter().enumerate() {
            if x == 0.0 {
                continue;
            }
            let next = cum + f64::from(x);
            if next > u {
                let sure = cum < u - margin && next > u + margin;
                return sure.then_some((b * BLOCK + j) as u32);
            }
            cum = next;
        }
        return None;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Weights over many orders of magnitude, some zero, as a softmax of
    /// spread logits gives them. (That the search's answers are the walk's
    /// is checked through `token_at` in `tests/sampling_props.rs`.)
    fn row(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|i| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                let x = (s >> 40) as f32 / (1u64 << 24) as f32;
                if i % 37 == 5 { 0.0 } else { (-30.0 * x).exp() }
            })
            .collect()
    }

    fn total(w: &[f32]) -> f64 {
        w.iter().map(|&x| f64::from(x)).sum()
    }

    #[test]
    fn answers_nearly_every_draw_and_defers_at_a_boundary() {
        let w = row(49_152, 9);
        let t = total(&w);
        let answered = (0..1000)
            .filter(|k| locate(&w, t, t * (*k as f64 + 0.25) / 1000.0).is_some())
            .count();
        assert_eq!(answered, 1000);
        // u exactly at a running sum: the token after it could go either
        // way by a rounding, so the search defers to the walk.
        let at: f64 = w[..1000].iter().map(|&x| f64::from(x)).sum();
        assert_eq!(locate(&w, t, at), None);
    }

    #[test]
    fn leaves_rows_the_walk_must_decide_to_it() {
        let w = [0.5f32, 0.0, 0.25];
        assert_eq!(locate(&w, 0.75, 0.6), Some(2));
        assert_eq!(locate(&w, 0.0, 0.0), None);
        assert_eq!(locate(&w, f64::INFINITY, 1.0), None);
        assert_eq!(locate(&w, f64::NAN, 0.1), None);
        assert_eq!(locate(&w, 0.75, 0.75), None);
        assert_eq!(locate(&[f32::NAN, 1.0], 1.0, 0.5), None);
        assert_eq!(locate(&[], 1.0, 0.5), None);
    }
}
