//! ROC curve and the area under it.

use super::thresholds::clf_curve;
use crate::error::DecodeError;

/// Points of a ROC curve, as scikit-learn's `roc_curve` with
/// `drop_intermediate=True`: thresholds decreasing, the first `+inf`.
#[derive(Debug, Clone, PartialEq)]
pub struct RocCurve {
    /// False-positive rate per threshold (non-decreasing, from 0).
    pub fpr: Vec<f64>,
    /// True-positive rate per threshold (non-decreasing, from 0).
    pub tpr: Vec<f64>,
    /// Thresholds, decreasing, the first `+inf`.
    pub thresholds: Vec<f64>,
}

/// The ROC curve; collinear intermediate points are dropped as scikit-learn
/// does. Errors if either class is absent (the rates are undefined).
pub fn roc_curve(y_true: &[bool], scores: &[f64]) -> Result<RocCurve, DecodeError> {
    let (mut tps, mut fps, mut thr) = clf_curve("roc_curve", y_true, scores)?;
    if tps.len() > 2 {
        let n = tps.len();
        let keep: Vec<usize> = (0..n)
            .filter(|&i| {
                i == 0
                    || i == n - 1
                    || fps[i + 1] - 2.0 * fps[i] + fps[i - 1] != 0.0
                    || tps[i + 1] - 2.0 * tps[i] + tps[i - 1] != 0.0
            })
            .collect();
        tps = keep.iter().map(|&i| tps[i]).collect();
        fps = keep.iter().map(|&i| fps[i]).collect();
        thr = keep.iter().map(|&i| thr[i]).collect();
    }
    let (p, n) = (*tps.last().unwrap_or(&0.0), *fps.last().unwrap_or(&0.0));
    if p == 0.0 || n == 0.0 {
        return Err(DecodeError::param(
            "y_true",
            format!("{p} positives, {n} negatives"),
            "ROC needs both classes",
        ));
    }
    let mut thresholds = vec![f64::INFINITY];
    thresholds.extend(thr);
    Ok(RocCurve {
        fpr: std::iter::once(0.0)
            .chain(fps.iter().map(|f| f / n))
            .collect(),
        tpr: std::iter::once(0.0)
            .chain(tps.iter().map(|t| t / p))
            .collect(),
        thresholds,
    })
}

/// Trapezoidal area under a curve given by points `(x, y)` with `x` monotone.
pub fn auc(x: &[f64], y: &[f64]) -> f64 {
    x.windows(2)
        .zip(y.windows(2))
        .map(|(xw, yw)| (xw[1] - xw[0]) * (yw[0] + yw[1]) / 2.0)
        .sum()
}

/// Area under the ROC curve (scikit-learn's `roc_auc_score` for binary labels).
pub fn roc_auc(y_true: &[bool], scores: &[f64]) -> Result<f64, DecodeError> {
    let c = roc_curve(y_true, scores)?;
    Ok(auc(&c.fpr, &c.tpr))
}
