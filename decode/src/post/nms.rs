//! Greedy non-maximum suppression, plain and class-aware.

use super::boxes::{BBox, by_score_desc, check_boxes, iou};
use crate::error::DecodeError;

/// Greedy NMS (torchvision `ops.nms`): repeatedly keep the highest-scoring
/// remaining box and discard every box whose IoU with it is **greater
/// than** `iou_threshold`. Returns kept indices by decreasing score.
/// Errors on NaN/infinite values or inverted boxes; zero-area boxes have
/// IoU 0 with everything (see [`iou`]).
pub fn nms(boxes: &[BBox], scores: &[f32], iou_threshold: f32) -> Result<Vec<usize>, DecodeError> {
    check_boxes("nms", boxes, scores)?;
    if iou_threshold.is_nan() {
        return Err(DecodeError::param(
            "iou_threshold",
            iou_threshold,
            "must not be NaN",
        ));
    }
    Ok(nms_unchecked(boxes, scores, iou_threshold))
}

#[cfg(not(feature = "mutant-nms-discarded-suppress"))]
fn nms_unchecked(boxes: &[BBox], scores: &[f32], iou_threshold: f32) -> Vec<usize> {
    // ANCHOR: nms
    let order = by_score_desc(scores);
    let mut suppressed = vec![false; boxes.len()];
    let mut keep = Vec::new();
    for (rank, &i) in order.iter().enumerate() {
        if suppressed[i] {
            continue;
        }
        keep.push(i);
        for &j in &order[rank + 1..] {
            if !suppressed[j] && iou(&boxes[i], &boxes[j]) > iou_threshold {
                suppressed[j] = true;
            }
        }
    }
    // ANCHOR_END: nms
    keep
}

/// Mutant twin: a box that was already discarded still suppresses the boxes
/// below it, so a box can be dropped for overlapping only a dropped box.
#[cfg(feature = "mutant-nms-discarded-suppress")]
fn nms_unchecked(boxes: &[BBox], scores: &[f32], iou_threshold: f32) -> Vec<usize> {
    let order = by_score_desc(scores);
    let mut suppressed = vec![false; boxes.len()];
    let mut keep = Vec::new();
    for (rank, &i) in order.iter().enumerate() {
        if !suppressed[i] {
            keep.push(i);
        }
        for &j in &order[rank + 1..] {
            if !suppressed[j] && iou(&boxes[i], &boxes[j]) > iou_threshold {
                suppressed[j] = true;
            }
        }
    }
    keep
}

/// Class-aware NMS (torchvision `ops.batched_nms`): NMS within each class
/// separately, never across classes; kept indices by decreasing score.
pub fn batched_nms(
    boxes: &[BBox],
    scores: &[f32],
    classes: &[usize],
    iou_threshold: f32,
) -> Result<Vec<usize>, DecodeError> {
    check_boxes("batched_nms", boxes, scores)?;
    if classes.len() != boxes.len() {
        return Err(DecodeError::LengthMismatch {
            op: "batched_nms classes",
            got: classes.len(),
            expected: boxes.len(),
        });
    }
    if iou_threshold.is_nan() {
        return Err(DecodeError::param(
            "iou_threshold",
            iou_threshold,
            "must not be NaN",
        ));
    }
    let mut classes_seen: Vec<usize> = classes.to_vec();
    classes_seen.sort_unstable();
    classes_seen.dedup();
    let mut keep = Vec::new();
    for c in classes_seen {
        let idx: Vec<usize> = (0..boxes.len()).filter(|&i| classes[i] == c).collect();
        let b: Vec<BBox> = idx.iter().map(|&i| boxes[i]).collect();
        let s: Vec<f32> = idx.iter().map(|&i| scores[i]).collect();
        keep.extend(
            nms_unchecked(&b, &s, iou_threshold)
                .into_iter()
                .map(|k| idx[k]),
        );
    }
    keep.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    Ok(keep)
}
