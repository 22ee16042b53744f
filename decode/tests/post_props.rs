//! Properties of the post-processing functions.

use decode::post::{BBox, iou, nms, precision_recall_curve, roc_auc};
use proptest::prelude::*;

fn boxes() -> impl Strategy<Value = Vec<(BBox, f32)>> {
    prop::collection::vec(
        (
            0.0f32..50.0,
            0.0f32..50.0,
            0.0f32..20.0,
            0.0f32..20.0,
            0.0f32..1.0,
        )
            .prop_map(|(x, y, w, h, s)| ([x, y, x + w, y + h], s)),
        0..40,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    // ANCHOR: prop_nms
    /// Kept boxes overlap each other by at most the threshold, and every
    /// dropped box overlaps a kept box with a score at least as high by more.
    #[test]
    fn nms_keeps_a_maximal_non_overlapping_set(bs in boxes(), thr in 0.0f32..1.0) {
        let (b, s): (Vec<BBox>, Vec<f32>) = bs.into_iter().unzip();
        let keep = nms(&b, &s, thr).unwrap();
        for (x, &i) in keep.iter().enumerate() {
            for &j in &keep[x + 1..] {
                prop_assert!(iou(&b[i], &b[j]) <= thr);
                prop_assert!(s[i] >= s[j], "kept indices sorted by score");
            }
        }
        for d in (0..b.len()).filter(|d| !keep.contains(d)) {
            prop_assert!(keep.iter().any(|&k| s[k] >= s[d] && iou(&b[k], &b[d]) > thr), "box {} dropped for nothing", d);
        }
    }
    // ANCHOR_END: prop_nms

    /// Recall never increases along the PR curve, and AUC is in [0, 1].
    #[test]
    fn pr_recall_monotone_and_auc_bounded(pts in prop::collection::vec((any::<bool>(), 0.0f64..1.0), 2..60)) {
        let (y, s): (Vec<bool>, Vec<f64>) = pts.into_iter().unzip();
        let pr = precision_recall_curve(&y, &s).unwrap();
        prop_assert!(pr.recall.windows(2).all(|w| w[0] >= w[1]));
        prop_assert!(pr.thresholds.windows(2).all(|w| w[0] < w[1]));
        if y.iter().any(|&v| v) && y.iter().any(|&v| !v) {
            let auc = roc_auc(&y, &s).unwrap();
            prop_assert!((0.0..=1.0).contains(&auc));
        }
    }
}
