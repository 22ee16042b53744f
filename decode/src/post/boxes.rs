//! Axis-aligned boxes `(x1, y1, x2, y2)` and their intersection over union.

use crate::error::DecodeError;

/// A box as `[x1, y1, x2, y2]` with `x1 <= x2`, `y1 <= y2` (torchvision's layout).
pub type BBox = [f32; 4];

/// Area of a box (0 for a degenerate, zero-width or zero-height box).
pub fn area(b: &BBox) -> f32 {
    (b[2] - b[0]) * (b[3] - b[1])
}

/// Intersection over union, computed in `f32` as torchvision does.
/// **Degenerate pairs are explicit:** when the union is 0 (two zero-area
/// boxes) the IoU is defined as 0, so zero-area boxes never suppress or
/// get suppressed.
pub fn iou(a: &BBox, b: &BBox) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let union = area(a) + area(b) - inter;
    if union <= 0.0 { 0.0 } else { inter / union }
}

/// Check boxes and scores: same length, no NaN or infinite value, and
/// `x1 <= x2`, `y1 <= y2` (zero area is allowed).
pub fn check_boxes(op: &'static str, boxes: &[BBox], scores: &[f32]) -> Result<(), DecodeError> {
    if boxes.len() != scores.len() {
        return Err(DecodeError::LengthMismatch {
            op,
            got: scores.len(),
            expected: boxes.len(),
        });
    }
    for (i, (b, s)) in boxes.iter().zip(scores).enumerate() {
        if !s.is_finite() || b.iter().any(|v| !v.is_finite()) {
            return Err(DecodeError::param(
                "boxes",
                format!("box {i} {b:?} score {s}"),
                "coordinates and scores must be finite (NaN/inf boxes are refused)",
            ));
        }
        if b[2] < b[0] || b[3] < b[1] {
            return Err(DecodeError::param(
                "boxes",
                format!("box {i} {b:?}"),
                "needs x1 <= x2 and y1 <= y2",
            ));
        }
    }
    Ok(())
}

/// Indices sorted by score, highest first; ties keep the lower index first.
pub(crate) fn by_score_desc(scores: &[f32]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    idx
}
