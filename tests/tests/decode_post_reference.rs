//! `decode::post` against torchvision / scikit-learn / PyTorch references
//! (`tests/fixtures/decode/{nms,calibration,thresholds}.json`, made by
//! `scripts/make_decode_fixtures.py`).

use decode::post::calibration::nll;
use decode::post::{
    BBox, SoftNmsDecay, batched_nms, expected_calibration_error, fit_temperature, nms,
    precision_recall_curve, reliability_curve, roc_auc, roc_curve, soft_nms,
};
use integration_tests::{fixture_dir, read_json};
use serde_json::Value;

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| match x {
            Value::String(s) if s == "inf" => f64::INFINITY,
            _ => x.as_f64().unwrap(),
        })
        .collect()
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

fn bools(v: &Value) -> Vec<bool> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() == 1)
        .collect()
}

/// Compare two float lists; `tol` is absolute.
fn close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(
        got.len(),
        want.len(),
        "{what}: length {} vs reference {}",
        got.len(),
        want.len()
    );
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let ok = (g == w) || (g - w).abs() <= tol;
        assert!(
            ok,
            "{what}[{i}]: got {g}, reference {w} (diff {})",
            (g - w).abs()
        );
    }
}

#[test]
fn nms_matches_torchvision() {
    let fx = read_json(&fixture_dir("decode").join("nms.json"));
    let boxes: Vec<BBox> = fx["boxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let v = f64s(b);
            [v[0] as f32, v[1] as f32, v[2] as f32, v[3] as f32]
        })
        .collect();
    let scores: Vec<f32> = f64s(&fx["scores"]).into_iter().map(|s| s as f32).collect();
    let classes = usizes(&fx["classes"]);
    assert!(boxes.len() >= 1000);
    for c in fx["nms"].as_array().unwrap() {
        let thr = c["iou_threshold"].as_f64().unwrap() as f32;
        assert_eq!(
            nms(&boxes, &scores, thr).unwrap(),
            usizes(&c["keep"]),
            "nms at IoU {thr}"
        );
    }
    for c in fx["batched_nms"].as_array().unwrap() {
        let thr = c["iou_threshold"].as_f64().unwrap() as f32;
        assert_eq!(
            batched_nms(&boxes, &scores, &classes, thr).unwrap(),
            usizes(&c["keep"]),
            "batched_nms at IoU {thr}"
        );
    }
    for c in fx["soft_nms"].as_array().unwrap() {
        let n = c["n"].as_u64().unwrap() as usize;
        let param = c["param"].as_f64().unwrap() as f32;
        let decay = match c["method"].as_str().unwrap() {
            "linear" => SoftNmsDecay::Linear {
                iou_threshold: param,
            },
            _ => SoftNmsDecay::Gaussian { sigma: param },
        };
        let thr = c["score_threshold"].as_f64().unwrap() as f32;
        let got = soft_nms(&boxes[..n], &scores[..n], decay, thr).unwrap();
        let want = c["keep"].as_array().unwrap();
        assert_eq!(got.len(), want.len(), "soft-NMS {decay:?}: number kept");
        for (k, ((gi, gs), w)) in got.iter().zip(want).enumerate() {
            assert_eq!(
                *gi,
                w[0].as_u64().unwrap() as usize,
                "soft-NMS {decay:?}: selection {k}"
            );
            // Both sides multiply f32 decays in the same order: 1e-6 absolute.
            let ws = w[1].as_f64().unwrap() as f32;
            assert!(
                (gs - ws).abs() <= 1e-6,
                "soft-NMS {decay:?}: score {k}: {gs} vs {ws}"
            );
        }
    }
}

#[test]
fn degenerate_boxes_are_explicit() {
    let nan: BBox = [0.0, 0.0, f32::NAN, 1.0];
    assert!(nms(&[nan], &[0.5], 0.5).is_err());
    assert!(nms(&[[0.0, 0.0, 1.0, 1.0]], &[f32::NAN], 0.5).is_err());
    assert!(
        nms(&[[2.0, 0.0, 1.0, 1.0]], &[0.5], 0.5).is_err(),
        "inverted box"
    );
    // Two identical zero-area boxes do not suppress each other (IoU defined as 0).
    let z: BBox = [1.0, 1.0, 1.0, 5.0];
    assert_eq!(nms(&[z, z], &[0.9, 0.8], 0.5).unwrap(), vec![0, 1]);
}

#[test]
fn calibration_matches_reference() {
    let fx = read_json(&fixture_dir("decode").join("calibration.json"));
    let logits: Vec<Vec<f32>> = fx["logits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| f64s(r).into_iter().map(|v| v as f32).collect())
        .collect();
    let labels = usizes(&fx["labels"]);
    let t = fit_temperature(&logits, &labels).unwrap();
    let t_ref = fx["temperature"].as_f64().unwrap();
    // scipy's bounded Brent stops at xatol 1e-10 on T; the NLL is flat at the
    // minimum, so compare T to 1e-6 relative and the NLL to 1e-9.
    assert!(
        (t - t_ref).abs() <= 1e-6 * t_ref,
        "temperature {t} vs scipy {t_ref}"
    );
    let nll_ref = fx["nll_at_t"].as_f64().unwrap();
    assert!(
        (nll(&logits, &labels, t) - nll_ref).abs() <= 1e-9,
        "NLL at T"
    );
    assert!((nll(&logits, &labels, 1.0) - fx["nll_at_1"].as_f64().unwrap()).abs() <= 1e-9);
    for (temp, key) in [(1.0, "ece15_at_1"), (t_ref, "ece15_at_t")] {
        let mut conf = Vec::new();
        let mut correct = Vec::new();
        for (row, &y) in logits.iter().zip(&labels) {
            let scaled: Vec<f32> = row.iter().map(|&v| (v as f64 / temp) as f32).collect();
            let p = decode::probs::softmax(&scaled);
            let best = decode::probs::argmax(&p);
            conf.push(p[best] as f64);
            correct.push(best == y);
        }
        let ece = expected_calibration_error(&conf, &correct, 15).unwrap();
        let want = fx[key].as_f64().unwrap();
        // Our softmax is f32; the reference's is f64: 1e-5 absolute on ECE.
        assert!((ece - want).abs() <= 1e-5, "{key}: {ece} vs {want}");
    }
    let y = bools(&fx["binary_y"]);
    let p = f64s(&fx["binary_p"]);
    let bins = reliability_curve(&y, &p, fx["curve_n_bins"].as_u64().unwrap() as usize).unwrap();
    let tol = 1e-12;
    close(
        "prob_true",
        &bins.iter().map(|b| b.prob_true).collect::<Vec<_>>(),
        &f64s(&fx["prob_true"]),
        tol,
    );
    close(
        "prob_pred",
        &bins.iter().map(|b| b.prob_pred).collect::<Vec<_>>(),
        &f64s(&fx["prob_pred"]),
        tol,
    );
}

#[test]
fn thresholds_match_sklearn() {
    let fx = read_json(&fixture_dir("decode").join("thresholds.json"));
    for (c, case) in fx["cases"].as_array().unwrap().iter().enumerate() {
        let y = bools(&case["y"]);
        let s = f64s(&case["scores"]);
        let pr = precision_recall_curve(&y, &s).unwrap();
        // Ratios of small integers: 1e-12 absolute.
        close(
            &format!("case {c} precision"),
            &pr.precision,
            &f64s(&case["precision"]),
            1e-12,
        );
        close(
            &format!("case {c} recall"),
            &pr.recall,
            &f64s(&case["recall"]),
            1e-12,
        );
        close(
            &format!("case {c} thresholds"),
            &pr.thresholds,
            &f64s(&case["thresholds"]),
            0.0,
        );
        let roc = roc_curve(&y, &s).unwrap();
        close(
            &format!("case {c} fpr"),
            &roc.fpr,
            &f64s(&case["fpr"]),
            1e-12,
        );
        close(
            &format!("case {c} tpr"),
            &roc.tpr,
            &f64s(&case["tpr"]),
            1e-12,
        );
        close(
            &format!("case {c} roc thresholds"),
            &roc.thresholds,
            &f64s(&case["roc_thresholds"]),
            0.0,
        );
        let auc = roc_auc(&y, &s).unwrap();
        assert!(
            (auc - case["auc"].as_f64().unwrap()).abs() <= 1e-12,
            "case {c} AUC {auc}"
        );
        let (t, f1) = pr.best_f1().unwrap();
        assert_eq!(
            t,
            case["best_f1_threshold"].as_f64().unwrap(),
            "case {c} best-F1 threshold"
        );
        assert!((f1 - case["best_f1"].as_f64().unwrap()).abs() <= 1e-12);
        assert_eq!(
            pr.highest_threshold_with_recall(0.8),
            case["recall_0_8_threshold"].as_f64()
        );
        assert_eq!(
            pr.lowest_threshold_with_precision(0.7),
            case["precision_0_7_threshold"].as_f64()
        );
    }
}
