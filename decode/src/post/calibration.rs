//! Probability calibration: temperature scaling, expected calibration
//! error, and reliability-diagram bins.

use crate::error::DecodeError;

fn check_rows(op: &'static str, logits: &[Vec<f32>], labels: &[usize]) -> Result<(), DecodeError> {
    if logits.len() != labels.len() {
        return Err(DecodeError::LengthMismatch {
            op,
            got: labels.len(),
            expected: logits.len(),
        });
    }
    if logits.is_empty() {
        return Err(DecodeError::param(
            "logits",
            "[]",
            "needs at least one example",
        ));
    }
    for (i, (row, &y)) in logits.iter().zip(labels).enumerate() {
        crate::probs::check_logits(op, row)?;
        if y >= row.len() {
            return Err(DecodeError::param(
                "labels",
                format!("example {i} label {y}"),
                "label must be < number of classes",
            ));
        }
        if row.iter().any(|v| !v.is_finite()) {
            return Err(DecodeError::param(
                "logits",
                format!("example {i}"),
                "must be finite",
            ));
        }
    }
    Ok(())
}

/// Mean negative log-likelihood of `labels` under `softmax(logits / t)`, in f64.
pub fn nll(logits: &[Vec<f32>], labels: &[usize], t: f64) -> f64 {
    let beta = 1.0 / t;
    let total: f64 = logits
        .iter()
        .zip(labels)
        .map(|(row, &y)| {
            let m = row
                .iter()
                .map(|&v| v as f64 * beta)
                .fold(f64::NEG_INFINITY, f64::max);
            let lse = m + row
                .iter()
                .map(|&v| (v as f64 * beta - m).exp())
                .sum::<f64>()
                .ln();
            lse - row[y] as f64 * beta
        })
        .sum();
    total / logits.len() as f64
}

/// Fit the temperature `T` that minimises the NLL of `softmax(logits / T)`
/// on validation data (Guo et al., 2017).
///
/// As a function of `β = 1/T` the NLL is convex (a log-sum-exp of linear
/// functions minus a linear one), so a golden-section search on β cannot
/// get stuck in a local minimum; it runs until the bracket is below 1e-12.
/// T is searched in [0.01, 100]; a result at either end means the data
/// wants a more extreme temperature than that.
pub fn fit_temperature(logits: &[Vec<f32>], labels: &[usize]) -> Result<f64, DecodeError> {
    check_rows("fit_temperature", logits, labels)?;
    // ANCHOR: golden_section
    let f = |beta: f64| nll(logits, labels, 1.0 / beta);
    let (mut a, mut b) = (0.01f64, 100.0f64);
    let g = (5f64.sqrt() - 1.0) / 2.0;
    let mut c = b - g * (b - a);
    let mut d = a + g * (b - a);
    let (mut fc, mut fd) = (f(c), f(d));
    while b - a > 1e-12 * (1.0 + a.abs()) {
        if fc < fd {
            b = d;
            d = c;
            fd = fc;
            c = b - g * (b - a);
            fc = f(c);
        } else {
            a = c;
            c = d;
            fc = fd;
            d = a + g * (b - a);
            fd = f(d);
        }
    }
    // ANCHOR_END: golden_section
    Ok(2.0 / (a + b))
}

/// Expected calibration error with `n_bins` equal-width bins over (0, 1]:
/// `Σ_bins |mean confidence − accuracy| × (fraction of examples in the bin)`,
/// bins `(lower, upper]` as in Guo et al.'s reference code.
pub fn expected_calibration_error(
    confidences: &[f64],
    correct: &[bool],
    n_bins: usize,
) -> Result<f64, DecodeError> {
    if confidences.len() != correct.len() {
        return Err(DecodeError::LengthMismatch {
            op: "expected_calibration_error",
            got: correct.len(),
            expected: confidences.len(),
        });
    }
    if n_bins == 0 || confidences.is_empty() {
        return Err(DecodeError::param(
            "n_bins",
            n_bins,
            "needs >= 1 bin and >= 1 example",
        ));
    }
    if let Some(c) = confidences.iter().find(|c| !(0.0..=1.0).contains(*c)) {
        return Err(DecodeError::param("confidences", c, "must be in [0, 1]"));
    }
    let n = confidences.len() as f64;
    let mut ece = 0.0;
    for k in 0..n_bins {
        let lo = k as f64 / n_bins as f64;
        let hi = (k + 1) as f64 / n_bins as f64;
        let idx: Vec<usize> = (0..confidences.len())
            .filter(|&i| confidences[i] > lo && confidences[i] <= hi)
            .collect();
        if idx.is_empty() {
            continue;
        }
        let m = idx.len() as f64;
        let conf = idx.iter().map(|&i| confidences[i]).sum::<f64>() / m;
        let acc = idx.iter().filter(|&&i| correct[i]).count() as f64 / m;
        ece += (conf - acc).abs() * (m / n);
    }
    Ok(ece)
}

/// One non-empty bin of a reliability diagram.
#[derive(Debug, Clone, PartialEq)]
pub struct ReliabilityBin {
    /// Fraction of positives in the bin (scikit-learn's `prob_true`).
    pub prob_true: f64,
    /// Mean predicted probability in the bin (`prob_pred`).
    pub prob_pred: f64,
    /// Number of examples in the bin.
    pub count: usize,
}

/// Reliability-diagram bins like scikit-learn's `calibration_curve(y_true,
/// y_prob, n_bins, strategy="uniform")`: equal-width bins over [0, 1], a
/// probability on an inner edge goes to the lower bin, empty bins are left out.
pub fn reliability_curve(
    y_true: &[bool],
    y_prob: &[f64],
    n_bins: usize,
) -> Result<Vec<ReliabilityBin>, DecodeError> {
    if y_true.len() != y_prob.len() {
        return Err(DecodeError::LengthMismatch {
            op: "reliability_curve",
            got: y_prob.len(),
            expected: y_true.len(),
        });
    }
    if n_bins == 0 {
        return Err(DecodeError::param("n_bins", n_bins, "must be >= 1"));
    }
    if let Some(p) = y_prob.iter().find(|p| !(0.0..=1.0).contains(*p)) {
        return Err(DecodeError::param("y_prob", p, "must be in [0, 1]"));
    }
    let step = 1.0 / n_bins as f64;
    let inner: Vec<f64> = (1..n_bins).map(|i| i as f64 * step).collect();
    let mut sum = vec![0.0; n_bins];
    let mut pos = vec![0.0; n_bins];
    let mut count = vec![0usize; n_bins];
    for (&y, &p) in y_true.iter().zip(y_prob) {
        let bin = inner.iter().filter(|&&e| e < p).count();
        sum[bin] += p;
        pos[bin] += if y { 1.0 } else { 0.0 };
        count[bin] += 1;
    }
    Ok((0..n_bins)
        .filter(|&k| count[k] > 0)
        .map(|k| ReliabilityBin {
            prob_true: pos[k] / count[k] as f64,
            prob_pred: sum[k] / count[k] as f64,
            count: count[k],
        })
        .collect())
}
