//! Precision-recall curves and threshold selection.

use crate::error::DecodeError;

/// Points of a precision-recall curve, as scikit-learn's
/// `precision_recall_curve`: `thresholds` increasing (the distinct scores),
/// `precision[i]` / `recall[i]` for "predict positive when score >=
/// `thresholds[i]`", plus a last point (precision 1, recall 0) with no threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct PrCurve {
    /// Precision per threshold, then a final 1.
    pub precision: Vec<f64>,
    /// Recall per threshold, then a final 0 (non-increasing).
    pub recall: Vec<f64>,
    /// Distinct scores, increasing.
    pub thresholds: Vec<f64>,
}

/// `(true positives, false positives, thresholds)`, one entry per distinct score.
pub(crate) type ClfCurve = (Vec<f64>, Vec<f64>, Vec<f64>);

/// Cumulative true / false positives at each distinct score, highest score
/// first (scikit-learn's `_binary_clf_curve` / `confusion_matrix_at_thresholds`).
pub(crate) fn clf_curve(
    op: &'static str,
    y_true: &[bool],
    scores: &[f64],
) -> Result<ClfCurve, DecodeError> {
    if y_true.len() != scores.len() {
        return Err(DecodeError::LengthMismatch {
            op,
            got: scores.len(),
            expected: y_true.len(),
        });
    }
    if scores.is_empty() {
        return Err(DecodeError::param(
            "scores",
            "[]",
            "needs at least one example",
        ));
    }
    if let Some(s) = scores.iter().find(|s| s.is_nan()) {
        return Err(DecodeError::param("scores", s, "must not be NaN"));
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    // Stable sort, highest first (scikit-learn uses a stable mergesort).
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tps, mut fps, mut thr) = (Vec::new(), Vec::new(), Vec::new());
    let mut tp = 0.0;
    for (k, &i) in order.iter().enumerate() {
        if y_true[i] {
            tp += 1.0;
        }
        let last_of_value = k + 1 == order.len() || scores[order[k + 1]] != scores[i];
        if last_of_value {
            tps.push(tp);
            fps.push((k + 1) as f64 - tp);
            thr.push(scores[i]);
        }
    }
    Ok((tps, fps, thr))
}

/// The precision-recall curve of binary labels against scores.
/// With no positive example, recall is 1 everywhere (as scikit-learn).
pub fn precision_recall_curve(y_true: &[bool], scores: &[f64]) -> Result<PrCurve, DecodeError> {
    let (tps, fps, thr) = clf_curve("precision_recall_curve", y_true, scores)?;
    let total_pos = *tps.last().unwrap_or(&0.0);
    let mut precision: Vec<f64> = tps
        .iter()
        .zip(&fps)
        .map(|(&t, &f)| if t + f > 0.0 { t / (t + f) } else { 0.0 })
        .collect();
    let mut recall: Vec<f64> = tps
        .iter()
        .map(|&t| if total_pos > 0.0 { t / total_pos } else { 1.0 })
        .collect();
    let mut thresholds = thr;
    precision.reverse();
    recall.reverse();
    thresholds.reverse();
    precision.push(1.0);
    recall.push(0.0);
    Ok(PrCurve {
        precision,
        recall,
        thresholds,
    })
}

impl PrCurve {
    /// F1 at each threshold (`2PR / (P + R)`, 0 when both are 0).
    pub fn f1(&self) -> Vec<f64> {
        self.thresholds
            .iter()
            .enumerate()
            .map(|(i, _)| {
                let (p, r) = (self.precision[i], self.recall[i]);
                if p + r > 0.0 {
                    2.0 * p * r / (p + r)
                } else {
                    0.0
                }
            })
            .collect()
    }

    /// The threshold with the highest F1 (the lowest such threshold on ties)
    /// and that F1.
    pub fn best_f1(&self) -> Option<(f64, f64)> {
        let f1 = self.f1();
        let mut best: Option<usize> = None;
        for (i, &f) in f1.iter().enumerate() {
            if best.is_none_or(|b| f > f1[b]) {
                best = Some(i);
            }
        }
        best.map(|i| (self.thresholds[i], f1[i]))
    }

    /// The highest threshold whose recall is at least `r`.
    pub fn highest_threshold_with_recall(&self, r: f64) -> Option<f64> {
        (0..self.thresholds.len())
            .rev()
            .find(|&i| self.recall[i] >= r)
            .map(|i| self.thresholds[i])
    }

    /// The lowest threshold whose precision is at least `p`.
    pub fn lowest_threshold_with_precision(&self, p: f64) -> Option<f64> {
        (0..self.thresholds.len())
            .find(|&i| self.precision[i] >= p)
            .map(|i| self.thresholds[i])
    }
}
