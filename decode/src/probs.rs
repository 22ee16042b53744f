//! Small numeric helpers on a logits row: checks, softmax, log-softmax, arg-max.
//!
//! Masked tokens carry `-inf` (as in Hugging Face's `filter_value`), so every
//! helper here treats `-inf` as "probability zero".

use crate::error::DecodeError;
use crate::widest::widest;

/// Check that a logits row is non-empty and holds no NaN or `+inf`.
/// `-inf` is allowed: it marks a token that was removed.
pub fn check_logits(op: &'static str, logits: &[f32]) -> Result<(), DecodeError> {
    if logits.is_empty() {
        return Err(DecodeError::EmptyVocab { op });
    }
    // A branch-free pass first (it vectorises; a search that stops at the
    // first bad value does not, and this runs after every processor), then
    // the search only when something is wrong.
    if any_bad(logits)
        && let Some((index, &value)) = logits
            .iter()
            .enumerate()
            .find(|(_, v)| v.is_nan() || **v == f32::INFINITY)
    {
        return Err(DecodeError::InvalidLogit { op, index, value });
    }
    if logits.iter().all(|v| *v == f32::NEG_INFINITY) {
        return Err(DecodeError::NothingLeft {
            op,
            vocab: logits.len(),
        });
    }
    Ok(())
}

widest! {
    /// True if some logit is NaN or `+inf` (one branch-free pass).
    fn any_bad(logits: &[f32]) -> bool = any_bad_body
}

#[inline(always)]
fn any_bad_body(logits: &[f32]) -> bool {
    logits
        .iter()
        .fold(false, |bad, v| bad | (v.is_nan() | (*v == f32::INFINITY)))
}

/// Lanes the vocabulary-long loops below keep apart: 32 running maxima or
/// sums instead of one, which the compiler keeps in SIMD registers. A
/// maximum does not depend on the order. A sum does: one running f32 sum
/// of 49,152 exponentials drops the smallest terms once the total has
/// grown (below half its last place they round away), which biased
/// `log_sum_exp` low by about 3·10⁻⁴ on 49,152 normal logits (σ 2.5, one
/// 6 above the rest); each of 32 lanes holds a smaller total and keeps
/// them (about 10⁻⁵).
const LANES: usize = 32;

/// Values per block of [`weights`]' two inner loops (16 KiB of f32).
const BLOCK: usize = 128 * LANES;

widest! {
    /// Largest finite-or-not logit (the row must be non-empty).
    pub fn max_logit(logits: &[f32]) -> f32 = max_logit_body
}

#[inline(always)]
fn max_logit_body(logits: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let chunks = logits.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for (m, &x) in lanes.iter_mut().zip(c) {
            *m = m.max(x);
        }
    }
    lanes
        .into_iter()
        .chain(tail.iter().copied())
        .fold(f32::NEG_INFINITY, f32::max)
}

/// Index of the largest logit; the lowest index wins a tie (as `torch.argmax`).
/// NaN never wins, unless it comes first (then index 0, as a running
/// `v > best` comparison from the first entry gives).
pub fn argmax(logits: &[f32]) -> usize {
    if logits.first().is_none_or(|x| x.is_nan()) {
        return 0;
    }
    // The maximum in vector lanes, then the first entry equal to it.
    let m = max_logit(logits);
    logits.iter().position(|&v| v == m).unwrap_or(0)
}

/// Softmax in `f32`, computed as `exp(x - max) / sum`. Masked (`-inf`)
/// entries get probability exactly 0.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let m = max_logit(logits);
    let mut out: Vec<f32> = logits.iter().map(|&x| (x - m).exp()).collect();
    let sum: f32 = out.iter().sum();
    for p in &mut out {
        *p /= sum;
    }
    out
}

widest! {
    /// `ln Σ exp(x)` in `f32`, as `max + ln(sum(exp(x - max)))`: what
    /// [`log_softmax`] subtracts, so one token's log-probability is
    /// `logits[id] - log_sum_exp(logits)` without a vector of them all.
    ///
    /// A decode step calls this once per token over the whole vocabulary
    /// (49,152 logits for SmolLM2), so the exponentials are `exp_nonpos`'s
    /// (about ten times faster than one library call each), summed in
    /// `LANES` lanes.
    pub fn log_sum_exp(logits: &[f32]) -> f32 = log_sum_exp_body
}

#[inline(always)]
fn log_sum_exp_body(logits: &[f32]) -> f32 {
    let m = max_logit_body(logits);
    let mut lanes = [0f32; LANES];
    let chunks = logits.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for (s, &x) in lanes.iter_mut().zip(c) {
            *s += exp_nonpos(x - m);
        }
    }
    let sum = lanes.iter().sum::<f32>() + tail.iter().map(|&x| exp_nonpos(x - m)).sum::<f32>();
    m + sum.ln()
}

/// A row's unnormalised probabilities and both of their normalisers, from
/// one pass of exponentials: what sampling draws from, and the
/// log-probability of what it drew.
#[derive(Debug, Clone)]
pub struct Weights {
    /// `e^(x - max)` per token (masked `-inf` logits weigh 0).
    pub w: Vec<f32>,
    /// Their total, summed in f64 lanes (the draw scales its uniform by it).
    pub total: f64,
    /// `ln Σ e^x`, bit for bit what [`log_sum_exp`] returns for the row.
    pub log_sum_exp: f32,
}

widest! {
    /// The row's [`Weights`]: the maximum, then, block by block, the
    /// exponentials (`exp_nonpos`, vectorised) with their f32 lane sums
    /// for the log-sum, and the block's f64 lane sums for the draw, each
    /// added in the order [`log_sum_exp`] and the draw's total always used
    /// (so their bits). A sampled step used to run the exponentials twice,
    /// once for each.
    pub fn weights(logits: &[f32]) -> Weights = weights_body
}

#[inline(always)]
fn weights_body(logits: &[f32]) -> Weights {
    let m = max_logit_body(logits);
    let mut w = vec![0f32; logits.len()];
    let (mut wide, mut narrow) = ([0f64; LANES], [0f32; LANES]);
    // Blocks of whole lanes: the exponentials of a block, then its f64
    // sums while it is still in L1 (one loop doing both ran out of
    // registers and was slower than two passes over the whole row).
    let start = logits.len() - logits.len() % LANES;
    for (xb, wb) in logits[..start]
        .chunks(BLOCK)
        .zip(w[..start].chunks_mut(BLOCK))
    {
        for (c, out) in xb.chunks_exact(LANES).zip(wb.chunks_exact_mut(LANES)) {
            for j in 0..LANES {
                let e = exp_nonpos(c[j] - m);
                out[j] = e;
                narrow[j] += e;
            }
        }
        for c in wb.chunks_exact(LANES) {
            for (s, &e) in wide.iter_mut().zip(c) {
                *s += f64::from(e);
            }
        }
    }
    let tail = &logits[start..];
    for (o, &x) in w[start..].iter_mut().zip(tail) {
        *o = exp_nonpos(x - m);
    }
    let tail_w = &w[start..];
    let total = wide.iter().sum::<f64>() + tail_w.iter().map(|&x| f64::from(x)).sum::<f64>();
    let sum = narrow.iter().sum::<f32>() + tail_w.iter().sum::<f32>();
    Weights {
        w,
        total,
        log_sum_exp: m + sum.ln(),
    }
}

/// The unnormalised probabilities `e^(x - max)` of a row (masked `-inf`
/// logits weigh 0) and their total, summed in f64 lanes: what sampling
/// draws from (the first two fields of [`weights`]).
pub fn exp_weights(logits: &[f32]) -> (Vec<f32>, f64) {
    let Weights { w, total, .. } = weights(logits);
    (w, total)
}

/// `e^x` for `x <= 0` (`-inf` included, giving 0), within 2 units in the
/// last place where the result is a normal float; below `-87.3`, where it
/// would not be, 0. Only arithmetic, so a loop of them vectorises:
/// `x = n·ln 2 + r` with `n` the nearest integer to `x / ln 2` (rounded by
/// adding `1.5·2²³`, which leaves `n` in the low mantissa bits) and
/// `|r| <= ln 2 / 2`; `e^r` by its Taylor polynomial to `r⁷` (the
/// remainder is below `10⁻⁸` there); `2^n` built in the exponent bits.
#[inline(always)]
fn exp_nonpos(x: f32) -> f32 {
    const SHIFT: f32 = 12_582_912.0; // 1.5 · 2^23
    const LN2_HI: f32 = 0.693_145_75; // ln 2, high bits (exact times n)
    const LN2_LO: f32 = 1.428_606_8e-6; // ln 2 - LN2_HI
    const LOW: f32 = -87.3; // e^LOW is still a normal float
    // Branch-free, so the lanes of a loop vectorise: clamp, compute, mask.
    let below = x < LOW;
    let x = if below { LOW } else { x };
    let t = x * std::f32::consts::LOG2_E + SHIFT;
    let n = t - SHIFT;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let mut p = 1.0 / 5040.0;
    for c in [
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = p * r + c;
    }
    // n in the low bits of t, as an integer offset from SHIFT's bits.
    let k = t.to_bits().wrapping_sub(SHIFT.to_bits()) as i32;
    let scale = f32::from_bits(((k + 127) << 23) as u32);
    let keep = u32::from(!below).wrapping_neg();
    f32::from_bits((p * scale).to_bits() & keep)
}

/// Log-softmax in `f32`: `x - max - ln(sum(exp(x - max)))`.
pub fn log_softmax(logits: &[f32]) -> Vec<f32> {
    let lse = log_sum_exp(logits);
    logits.iter().map(|&x| x - lse).collect()
}

/// Indices sorted by logit, largest first; ties keep the lower index first.
pub fn sorted_desc(values: &[f32]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
    idx
}

/// The `n` indices with the largest values, largest first (ties keep the
/// lower index first, as [`sorted_desc`]). Selects before it sorts, so a
/// few alternatives out of a large vocabulary cost one pass, not a sort.
pub fn top_n(values: &[f32], n: usize) -> Vec<usize> {
    let order = |&a: &usize, &b: &usize| values[b].total_cmp(&values[a]).then(a.cmp(&b));
    if n == 0 {
        return Vec::new();
    }
    let mut idx: Vec<usize> = (0..values.len()).collect();
    if n < idx.len() {
        idx.select_nth_unstable_by(n - 1, order);
        idx.truncate(n);
    }
    idx.sort_by(order);
    idx
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Relative distance in units of `f32::EPSILON`.
    fn ulps(got: f32, want: f64) -> f64 {
        (f64::from(got) - want).abs() / (want.abs() * f64::from(f32::EPSILON))
    }

    #[test]
    fn exp_nonpos_is_exact_at_zero_and_zero_below_the_normal_range() {
        assert_eq!(exp_nonpos(0.0), 1.0);
        assert_eq!(exp_nonpos(-0.0), 1.0);
        assert_eq!(exp_nonpos(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_nonpos(-87.4), 0.0);
        assert_eq!(exp_nonpos(-1000.0), 0.0);
        assert!(exp_nonpos(f32::NAN).is_nan());
    }

    #[test]
    fn exp_nonpos_is_within_two_ulps_over_its_range() {
        // Every 1/4096 from 0 down to -87.3, and the points between.
        let mut worst = 0f64;
        for i in 0..=(87.3 * 4096.0) as i32 {
            for x in [-(i as f32) / 4096.0, -(i as f32 + 0.37) / 4096.0] {
                if x >= -87.3 {
                    worst = worst.max(ulps(exp_nonpos(x), f64::from(x).exp()));
                }
            }
        }
        assert!(worst <= 2.0, "worst error {worst} ulps");
    }

    #[test]
    fn a_vocabulary_long_sum_keeps_its_small_terms() {
        // 49,152 logits, normal with sigma 2.5 (Box-Muller on a seeded
        // stream), one of them 6 above the rest: most exponentials are far
        // below the last place of the total.
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut v: Vec<f32> = (0..49_152)
            .map(|_| {
                let (u1, u2): (f64, f64) = (rng.gen_range(1e-12..1.0), rng.gen_range(0.0..1.0));
                (2.5 * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
            })
            .collect();
        let top = max_logit(&v) + 6.0;
        v[123] = top;
        let m = f64::from(top);
        let want = m + v
            .iter()
            .map(|&x| (f64::from(x) - m).exp())
            .sum::<f64>()
            .ln();
        let err = (f64::from(log_sum_exp(&v)) - want).abs();
        // One running f32 sum is off by about 3e-4 here.
        assert!(err < 5e-5, "log_sum_exp off by {err}");
    }

    #[test]
    fn exp_weights_are_the_shifted_exponentials_and_their_total() {
        let v = [
            2.0f32,
            f32::NEG_INFINITY,
            -1.5,
            2.0,
            0.25,
            -30.0,
            1.0,
            0.0,
            -0.5,
            3.5,
        ];
        let (w, total) = exp_weights(&v);
        let m = 3.5f64;
        let mut want_total = 0f64;
        for (&x, &got) in v.iter().zip(&w) {
            let want = (f64::from(x) - m).exp();
            want_total += want;
            assert!(
                (f64::from(got) - want).abs() <= 2.5e-7 * want,
                "{got} vs {want}"
            );
        }
        assert_eq!(w[1], 0.0, "a masked logit weighs nothing");
        assert_eq!(w[9], 1.0, "the largest logit weighs exactly 1");
        assert!((total - want_total).abs() <= 1e-6 * want_total);
    }

    proptest! {
        /// The lane-wise maximum and log-sum-exp agree with plain f64
        /// arithmetic: the maximum exactly, log-sum-exp within a few units
        /// in the last place of its size (masked `-inf` entries included).
        #[test]
        fn log_sum_exp_matches_f64(
            v in proptest::collection::vec(prop_oneof![9 => -30f32..30.0, 1 => Just(f32::NEG_INFINITY)], 1..300),
            shift in -1000f32..1000.0,
        ) {
            let v: Vec<f32> = v.iter().map(|x| x + shift).collect();
            prop_assume!(v.iter().any(|x| x.is_finite()));
            let m = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            prop_assert_eq!(max_logit(&v), m);
            let m64 = f64::from(m);
            let want = m64 + v.iter().map(|&x| (f64::from(x) - m64).exp()).sum::<f64>().ln();
            let got = f64::from(log_sum_exp(&v));
            let tol = 8.0 * f64::from(f32::EPSILON) * want.abs().max(1.0);
            prop_assert!((got - want).abs() <= tol, "{got} vs {want}");
        }

        /// The vectorised arg-max picks what a running `v > best`
        /// comparison from the first entry picks: the lowest index of the
        /// maximum, whatever the ties, infinities and NaNs, and the vector
        /// bodies give the same bits as the plain ones.
        #[test]
        fn argmax_is_the_running_comparison(
            v in proptest::collection::vec(prop_oneof![
                6 => -3i8..3i8,
                1 => Just(i8::MIN),
                1 => Just(i8::MAX),
                1 => Just(0i8),
            ], 0..200),
        ) {
            // A few values, so ties are common; MIN/MAX/0 stand for
            // -inf, NaN and -0.0.
            let v: Vec<f32> = v.iter().map(|&c| match c {
                i8::MIN => f32::NEG_INFINITY,
                i8::MAX => f32::NAN,
                0 => -0.0,
                c => f32::from(c),
            }).collect();
            let mut best = 0;
            for (i, &x) in v.iter().enumerate() {
                if x > v[best] {
                    best = i;
                }
            }
            prop_assert_eq!(argmax(&v), best);
            if !v.is_empty() {
                prop_assert_eq!(max_logit(&v).to_bits(), max_logit_body(&v).to_bits());
            }
            if v.iter().all(|x| !x.is_nan()) && v.iter().any(|x| x.is_finite()) {
                prop_assert_eq!(log_sum_exp(&v).to_bits(), log_sum_exp_body(&v).to_bits());
                let (fast, plain) = (weights(&v), weights_body(&v));
                prop_assert_eq!(&fast.w, &plain.w);
                prop_assert_eq!(fast.total.to_bits(), plain.total.to_bits());
                prop_assert_eq!(fast.log_sum_exp.to_bits(), plain.log_sum_exp.to_bits());
                prop_assert_eq!(fast.log_sum_exp.to_bits(), log_sum_exp(&v).to_bits());
            }
        }
    }
}
