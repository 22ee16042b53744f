//! Soft-NMS (Bodla et al., 2017): decay overlapping scores instead of
//! discarding the boxes.

use super::boxes::{BBox, check_boxes, iou};
use crate::error::DecodeError;

/// How Soft-NMS lowers the score of a box overlapping the selected one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SoftNmsDecay {
    /// `s ← s · (1 − IoU)` when `IoU > threshold`, unchanged otherwise.
    Linear {
        /// IoU above which the score decays.
        iou_threshold: f32,
    },
    /// `s ← s · exp(−IoU² / σ)` for every box.
    Gaussian {
        /// Width σ (> 0); small σ approaches hard NMS.
        sigma: f32,
    },
}

/// Soft-NMS: repeatedly select the remaining box with the highest (decayed)
/// score, then decay every remaining box by its IoU with it; boxes whose
/// score falls below `score_threshold` are dropped. Returns `(index, final
/// score)` in selection order (non-increasing score).
pub fn soft_nms(
    boxes: &[BBox],
    scores: &[f32],
    decay: SoftNmsDecay,
    score_threshold: f32,
) -> Result<Vec<(usize, f32)>, DecodeError> {
    check_boxes("soft_nms", boxes, scores)?;
    match decay {
        SoftNmsDecay::Gaussian { sigma } if !(sigma.is_finite() && sigma > 0.0) => {
            return Err(DecodeError::param(
                "sigma",
                sigma,
                "must be a finite number > 0",
            ));
        }
        SoftNmsDecay::Linear { iou_threshold } if iou_threshold.is_nan() => {
            return Err(DecodeError::param(
                "iou_threshold",
                iou_threshold,
                "must not be NaN",
            ));
        }
        _ => {}
    }
    // ANCHOR: soft_nms
    let mut s: Vec<f32> = scores.to_vec();
    let mut alive: Vec<usize> = (0..boxes.len())
        .filter(|&i| s[i] >= score_threshold)
        .collect();
    let mut out = Vec::new();
    while !alive.is_empty() {
        // Highest current score; the lower index wins a tie.
        let Some((pos, &m)) = alive
            .iter()
            .enumerate()
            .max_by(|(_, a), (_, b)| s[**a].total_cmp(&s[**b]).then(b.cmp(a)))
        else {
            break;
        };
        alive.swap_remove(pos);
        out.push((m, s[m]));
        for &j in &alive {
            let o = iou(&boxes[m], &boxes[j]);
            s[j] *= match decay {
                SoftNmsDecay::Linear { iou_threshold } if o > iou_threshold => 1.0 - o,
                SoftNmsDecay::Linear { .. } => 1.0,
                SoftNmsDecay::Gaussian { sigma } => (-(o * o) / sigma).exp(),
            };
        }
        alive.retain(|&j| s[j] >= score_threshold);
    }
    // ANCHOR_END: soft_nms
    Ok(out)
}
