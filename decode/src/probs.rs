//! Small numeric helpers on a logits row: checks, softmax, log-softmax, arg-max.
//!
//! Masked tokens carry `-inf` (as in Hugging Face's `filter_value`), so every
//! helper here treats `-inf` as "probability zero".

use crate::error::DecodeError;

/// Check that a logits row is non-empty and holds no NaN or `+inf`.
/// `-inf` is allowed: it marks a token that was removed.
pub fn check_logits(op: &'static str, logits: &[f32]) -> Result<(), DecodeError> {
    if logits.is_empty() {
        return Err(DecodeError::EmptyVocab { op });
    }
    if let Some((index, &value)) = logits
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

/// Largest finite-or-not logit (the row must be non-empty).
pub fn max_logit(logits: &[f32]) -> f32 {
    logits.iter().copied().fold(f32::NEG_INFINITY, f32::max)
}

/// Index of the largest logit; the lowest index wins a tie (as `torch.argmax`).
pub fn argmax(logits: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    best
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

/// `ln Σ exp(x)` in `f32`, as `max + ln(sum(exp(x - max)))`: what
/// [`log_softmax`] subtracts, so one token's log-probability is
/// `logits[id] - log_sum_exp(logits)` without a vector of them all.
pub fn log_sum_exp(logits: &[f32]) -> f32 {
    let m = max_logit(logits);
    let sum: f32 = logits.iter().map(|&x| (x - m).exp()).sum();
    m + sum.ln()
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
