//! The post-processing chapter: NMS and Soft-NMS on synthetic detections,
//! the IoU threshold's trade-off, temperature scaling with a reliability
//! diagram, and a precision-recall curve with threshold selection, by F1,
//! by a target recall or precision, and by a quota. SVGs go to
//! `book/src/generated/`. (SmolLM2's calibration is `ch09_llm_calibration`.)
//!
//! `cargo run --release --example ch09_post`
//! The output carries `ANCHOR:` lines so the chapter can include sections.

use decode::post::{
    BBox, SoftNmsDecay, expected_calibration_error, fit_temperature, iou, nms,
    precision_recall_curve, reliability_curve, roc_auc, soft_nms,
};
use decode::probs::{argmax, softmax};
use decode::seeded_rng;
use rand::Rng;
use std::fmt::Write as _;

fn normal(rng: &mut impl Rng) -> f64 {
    // Box–Muller: two uniforms to one standard normal.
    let u: f64 = rng.r#gen::<f64>().max(1e-12);
    let v: f64 = rng.r#gen();
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

fn save(name: &str, svg: &str) -> std::io::Result<()> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/generated");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(name), svg)
}

fn boxes_svg(
    title: &str,
    x0: f32,
    boxes: &[BBox],
    scores: &[f32],
    which: &[usize],
    svg: &mut String,
) {
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="16" font-size="13" font-family="sans-serif">{title}</text>"#,
        x0
    );
    let _ = writeln!(
        svg,
        r##"<rect x="{x0}" y="24" width="220" height="220" fill="none" stroke="#999"/>"##
    );
    for &i in which {
        let b = boxes[i];
        let alpha = 0.25 + 0.75 * scores[i];
        let _ = writeln!(
            svg,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="none" stroke="#c0392b" stroke-opacity="{alpha:.2}" stroke-width="1.5"/>"##,
            x0 + b[0] * 2.0,
            24.0 + b[1] * 2.0,
            (b[2] - b[0]) * 2.0,
            (b[3] - b[1]) * 2.0
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" font-size="8" font-family="sans-serif">{:.2}</text>"#,
            x0 + b[0] * 2.0 + 2.0,
            24.0 + b[1] * 2.0 + 9.0,
            scores[i]
        );
    }
}

/// A labelled, coloured polyline: (label, colour, points).
type Series<'a> = (&'a str, &'a str, Vec<(f64, f64)>);

/// A line chart in the unit square: each series is (label, colour, points).
fn unit_chart(
    title: &str,
    xlabel: &str,
    ylabel: &str,
    series: &[Series<'_>],
    marks: &[(f64, f64, &str)],
) -> String {
    let (ox, oy, s) = (50.0, 20.0, 240.0);
    let px = |x: f64| ox + x * s;
    let py = |y: f64| oy + (1.0 - y) * s;
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="420" height="300" viewBox="0 0 420 300">
<text x="{ox}" y="14" font-size="13" font-family="sans-serif">{title}</text>
<rect x="{ox}" y="{oy}" width="{s}" height="{s}" fill="none" stroke="#999"/>
<text x="{}" y="{}" font-size="11" font-family="sans-serif" text-anchor="middle">{xlabel}</text>
<text x="14" y="{}" font-size="11" font-family="sans-serif" transform="rotate(-90 14 {})" text-anchor="middle">{ylabel}</text>
"##,
        ox + s / 2.0,
        oy + s + 28.0,
        oy + s / 2.0,
        oy + s / 2.0
    );
    for t in [0.0, 0.5, 1.0] {
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" font-size="9" font-family="sans-serif" text-anchor="middle">{t}</text>"#,
            px(t),
            oy + s + 12.0
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" font-size="9" font-family="sans-serif" text-anchor="end">{t}</text>"#,
            ox - 4.0,
            py(t) + 3.0
        );
    }
    for (k, (label, colour, pts)) in series.iter().enumerate() {
        let path: Vec<String> = pts
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
            .collect();
        let _ = writeln!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="1.8"/>"#,
            path.join(" ")
        );
        if pts.len() <= 20 {
            for (x, y) in pts {
                let _ = writeln!(
                    svg,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{colour}"/>"#,
                    px(*x),
                    py(*y)
                );
            }
        }
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" font-size="11" font-family="sans-serif" fill="{colour}">{label}</text>"#,
            ox + s + 8.0,
            oy + 14.0 + 16.0 * k as f64
        );
    }
    for (x, y, label) in marks {
        let _ = writeln!(
            svg,
            r#"<circle cx="{:.1}" cy="{:.1}" r="4" fill="black"/>"#,
            px(*x),
            py(*y)
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" font-size="10" font-family="sans-serif">{label}</text>"#,
            px(*x) + 6.0,
            py(*y) - 6.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}

// ANCHOR: quota_threshold
/// The threshold that flags a share `rate` of the examples: the
/// `ceil(rate · n)`-th highest score, so "positive when score >= t" flags
/// that many (more if several examples tie at t).
fn quota_threshold(scores: &[f64], rate: f64) -> Option<f64> {
    let mut sorted = scores.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let k = ((rate * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted.get(k - 1).copied()
}
// ANCHOR_END: quota_threshold

/// Bins of the toy classifier's ECE and reliability diagram (one number for
/// both, so the label cannot drift from the table).
const TOY_BINS: usize = 10;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = seeded_rng(2024, 0);

    println!("ANCHOR: nms");
    // Three objects; the detector fires several jittered boxes on each.
    let objects: [BBox; 3] = [
        [15.0, 20.0, 45.0, 60.0],
        [40.0, 30.0, 75.0, 70.0],
        [70.0, 75.0, 100.0, 100.0],
    ];
    let mut boxes = Vec::new();
    let mut scores = Vec::new();
    for o in &objects {
        for k in 0..5 {
            let mut j = || (normal(&mut rng) * 2.5) as f32;
            let b = [o[0] + j(), o[1] + j(), o[2] + j(), o[3] + j()];
            boxes.push(b);
            scores.push((0.9 - 0.15 * k as f32 + 0.05 * normal(&mut rng) as f32).clamp(0.05, 0.99));
        }
    }
    let all: Vec<usize> = (0..boxes.len()).collect();
    let keep = nms(&boxes, &scores, 0.5)?;
    println!(
        "{} detections; NMS at IoU 0.5 keeps {:?}",
        boxes.len(),
        keep
    );
    for (decay, name) in [
        (
            SoftNmsDecay::Linear { iou_threshold: 0.3 },
            "linear (Nt 0.3)",
        ),
        (SoftNmsDecay::Gaussian { sigma: 0.5 }, "gaussian (σ 0.5)"),
    ] {
        let soft = soft_nms(&boxes, &scores, decay, 0.3)?;
        let list: Vec<String> = soft.iter().map(|(i, s)| format!("{i}:{s:.2}")).collect();
        println!("Soft-NMS {name}, score >= 0.3: {}", list.join(" "));
    }
    let mut svg = String::from(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="480" height="260" viewBox="0 0 480 260">"#,
    );
    svg.push('\n');
    boxes_svg("before NMS", 10.0, &boxes, &scores, &all, &mut svg);
    boxes_svg(
        "after NMS (IoU 0.5)",
        250.0,
        &boxes,
        &scores,
        &keep,
        &mut svg,
    );
    svg.push_str("</svg>\n");
    save("ch09_nms.svg", &svg)?;
    println!("ANCHOR_END: nms");

    println!("ANCHOR: iou_tradeoff");
    // Two objects that overlap each other (A and B) and one alone (C); the
    // detector fires a few boxes on each. Placed by hand so that the three
    // thresholds show the three outcomes.
    let truth: [(&str, BBox); 3] = [
        ("A", [10.0, 10.0, 50.0, 60.0]),
        ("B", [25.0, 12.0, 65.0, 62.0]),
        ("C", [60.0, 70.0, 95.0, 100.0]),
    ];
    let dets: Vec<(BBox, f32)> = vec![
        ([10.0, 10.0, 50.0, 60.0], 0.95),
        ([25.0, 12.0, 65.0, 62.0], 0.90),
        ([60.0, 70.0, 95.0, 100.0], 0.85),
        ([13.0, 12.0, 53.0, 62.0], 0.80),
        ([21.0, 19.0, 61.0, 69.0], 0.70),
        ([4.0, 16.0, 44.0, 66.0], 0.60),
        ([62.0, 72.0, 97.0, 102.0], 0.50),
    ];
    let (tboxes, tscores): (Vec<BBox>, Vec<f32>) = dets.iter().copied().unzip();
    println!(
        "{} detections of 3 objects; IoU(A, B) = {:.2}",
        tboxes.len(),
        iou(&truth[0].1, &truth[1].1)
    );
    println!(
        "{:>9} {:>6} {:<18} {:>7} {:>10}",
        "threshold", "kept", "boxes", "objects", "duplicates"
    );
    let mut svg = String::from(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="720" height="260" viewBox="0 0 720 260">"#,
    );
    svg.push('\n');
    for (k, thr) in [0.3f32, 0.5, 0.7].into_iter().enumerate() {
        let keep = nms(&tboxes, &tscores, thr)?;
        // A kept box finds the object it overlaps most, if by IoU >= 0.5;
        // a second box on an object already found is a duplicate.
        let mut found = [false; 3];
        let mut dups = 0;
        for &i in &keep {
            let (best, o) = truth
                .iter()
                .enumerate()
                .map(|(j, (_, t))| (iou(&tboxes[i], t), j))
                .fold((0.0, 0), |a, b| if b.0 > a.0 { b } else { a });
            if best >= 0.5 {
                if found[o] {
                    dups += 1;
                }
                found[o] = true;
            }
        }
        let names: String = truth
            .iter()
            .zip(found)
            .map(|((n, _), f)| if f { *n } else { "-" })
            .collect();
        println!(
            "{thr:>9} {:>6} {:<18} {:>7} {dups:>10}",
            keep.len(),
            format!("{keep:?}"),
            names
        );
        boxes_svg(
            &format!("NMS at IoU {thr}: {} kept", keep.len()),
            10.0 + 240.0 * k as f32,
            &tboxes,
            &tscores,
            &keep,
            &mut svg,
        );
    }
    svg.push_str("</svg>\n");
    save("ch09_iou_tradeoff.svg", &svg)?;
    println!("ANCHOR_END: iou_tradeoff");

    println!("ANCHOR: calibration");
    // An over-confident 4-class classifier: logits scaled up 3x.
    let (n, c) = (3000, 4);
    let mut logits = Vec::with_capacity(n);
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let y = rng.gen_range(0..c);
        let row: Vec<f32> = (0..c)
            .map(|k| (3.0 * (normal(&mut rng) + if k == y { 1.0 } else { 0.0 })) as f32)
            .collect();
        logits.push(row);
        labels.push(y);
    }
    let t = fit_temperature(&logits, &labels)?;
    let mut curves = Vec::new();
    for (name, temp, colour) in [("T = 1", 1.0, "#c0392b"), ("fitted T", t, "#3b6ea8")] {
        let mut conf = Vec::new();
        let mut correct = Vec::new();
        for (row, &y) in logits.iter().zip(&labels) {
            let scaled: Vec<f32> = row.iter().map(|&v| (v as f64 / temp) as f32).collect();
            let p = softmax(&scaled);
            let k = argmax(&p);
            conf.push(p[k] as f64);
            correct.push(k == y);
        }
        let ece = expected_calibration_error(&conf, &correct, TOY_BINS)?;
        let nll = decode::post::calibration::nll(&logits, &labels, temp);
        println!("{name:<9} T = {temp:.4}  NLL {nll:.4}  ECE ({TOY_BINS} bins) {ece:.4}");
        let bins = reliability_curve(&correct, &conf, TOY_BINS)?;
        for b in &bins {
            println!(
                "    confidence {:.3}  accuracy {:.3}  ({} examples)",
                b.prob_pred, b.prob_true, b.count
            );
        }
        curves.push((
            name,
            colour,
            bins.iter()
                .map(|b| (b.prob_pred, b.prob_true))
                .collect::<Vec<_>>(),
        ));
    }
    curves.push(("perfect", "#999999", vec![(0.0, 0.0), (1.0, 1.0)]));
    save(
        "ch09_reliability.svg",
        &unit_chart(
            &format!("Reliability diagram ({TOY_BINS} bins)"),
            "confidence",
            "accuracy",
            &curves,
            &[],
        ),
    )?;
    println!("ANCHOR_END: calibration");

    println!("ANCHOR: thresholds");
    let mut y = Vec::new();
    let mut s = Vec::new();
    for _ in 0..500 {
        let pos = rng.r#gen::<f64>() < 0.3;
        let z = normal(&mut rng) + if pos { 1.6 } else { 0.0 };
        y.push(pos);
        s.push(((1.0 / (1.0 + (-z).exp())) * 1000.0).round() / 1000.0);
    }
    let pr = precision_recall_curve(&y, &s)?;
    let (t_f1, f1) = pr.best_f1().ok_or("empty curve")?;
    let i_f1 = pr
        .thresholds
        .iter()
        .position(|&t| t == t_f1)
        .ok_or("threshold")?;
    println!(
        "{} thresholds; ROC AUC {:.4}",
        pr.thresholds.len(),
        roc_auc(&y, &s)?
    );
    println!(
        "best F1 {f1:.4} at threshold {t_f1} (precision {:.3}, recall {:.3})",
        pr.precision[i_f1], pr.recall[i_f1]
    );
    if let Some(t) = pr.highest_threshold_with_recall(0.9) {
        println!("highest threshold with recall >= 0.9: {t}");
    }
    if let Some(t) = pr.lowest_threshold_with_precision(0.8) {
        println!("lowest threshold with precision >= 0.8: {t}");
    }
    let pts: Vec<(f64, f64)> = pr
        .recall
        .iter()
        .zip(&pr.precision)
        .map(|(r, p)| (*r, *p))
        .collect();
    save(
        "ch09_pr_curve.svg",
        &unit_chart(
            "Precision-recall curve",
            "recall",
            "precision",
            &[("PR", "#3b6ea8", pts)],
            &[(pr.recall[i_f1], pr.precision[i_f1], "best F1")],
        ),
    )?;
    println!("ANCHOR_END: thresholds");

    println!("ANCHOR: quota");
    let base = y.iter().filter(|&&p| p).count() as f64 / y.len() as f64;
    println!(
        "{} examples, {:.1}% positive; flag a fixed share, whatever the scores:",
        y.len(),
        100.0 * base
    );
    println!(
        "{:>6} {:>10} {:>8} {:>10} {:>7}",
        "quota", "threshold", "flagged", "precision", "recall"
    );
    for rate in [0.1, 0.2, base, 0.5] {
        let t = quota_threshold(&s, rate).ok_or("empty scores")?;
        let flagged: Vec<bool> = s.iter().map(|&v| v >= t).collect();
        let n_flag = flagged.iter().filter(|&&f| f).count();
        let tp = flagged.iter().zip(&y).filter(|&(&f, &p)| f && p).count();
        let pos = y.iter().filter(|&&p| p).count();
        println!(
            "{:>5.1}% {t:>10} {:>7.1}% {:>10.3} {:>7.3}",
            100.0 * rate,
            100.0 * n_flag as f64 / s.len() as f64,
            tp as f64 / n_flag.max(1) as f64,
            tp as f64 / pos.max(1) as f64
        );
    }
    println!("ANCHOR_END: quota");
    Ok(())
}
