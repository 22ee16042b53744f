//! The post-processing chapter on a language model: SmolLM2 answers the
//! multiple-choice questions of `book/data/mc_questions.tsv`, scored two
//! ways (the logits of the four option letters; the log-probability of each
//! option's text); temperature scaling is fitted on one half of the
//! questions and evaluated on the other, and reliability diagrams before and
//! after go to `book/src/generated/ch09_llm_reliability.svg`.
//!
//! `cargo run --release --example ch09_llm_calibration`
//! (needs the model: `scripts/fetch-model.sh`). The output carries
//! `ANCHOR:` lines so the chapter can include sections.

use anyhow::{Context, Result, bail};
use book::smollm2::SmolLm2;
use book::svg::Svg;
use decode::post::{
    ReliabilityBin, expected_calibration_error, fit_temperature, reliability_curve,
};
use decode::probs::{argmax, softmax};
use model::batch::LogitsFor;

/// Bins of the ECE and of the reliability diagram: few, because each half
/// of the set has only 40 questions.
const BINS: usize = 5;
const LETTERS: [&str; 4] = ["A", "B", "C", "D"];

/// One question: text, four options, index of the right one.
struct Question {
    text: String,
    options: [String; 4],
    answer: usize,
}

fn read_questions() -> Result<Vec<Question>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mc_questions.tsv");
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')).skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != 6 {
            bail!("{}: expected 6 columns in {line:?}", path.display());
        }
        let answer = LETTERS
            .iter()
            .position(|l| *l == f[5])
            .with_context(|| format!("answer {:?}", f[5]))?;
        out.push(Question {
            text: f[0].to_string(),
            options: [f[1], f[2], f[3], f[4]].map(String::from),
            answer,
        });
    }
    Ok(out)
}

// ANCHOR: mc_prompt
/// The prompt: the question and its options, ending where the answer letter
/// comes; the model's answer is read from the logits of " A" … " D".
fn prompt(q: &Question) -> String {
    let mut s = format!(
        "The following is a multiple choice question. Answer with the letter of the correct option.\n\nQuestion: {}\n",
        q.text
    );
    for (l, o) in LETTERS.iter().zip(&q.options) {
        s.push_str(&format!("{l}. {o}\n"));
    }
    s.push_str("Answer:");
    s
}
// ANCHOR_END: mc_prompt

/// Confidence (the largest probability) and correctness of each row at `t`.
fn confidences(logits: &[Vec<f32>], labels: &[usize], t: f64) -> (Vec<f64>, Vec<bool>) {
    logits
        .iter()
        .zip(labels)
        .map(|(row, &y)| {
            let scaled: Vec<f32> = row.iter().map(|&v| (v as f64 / t) as f32).collect();
            let p = softmax(&scaled);
            let k = argmax(&p);
            (p[k] as f64, k == y)
        })
        .unzip()
}

/// One panel of a reliability diagram: a bar per non-empty bin at its mean
/// confidence, as high as its accuracy, over the diagonal of perfect
/// calibration.
fn panel(svg: &mut Svg, x0: f32, top: f32, title: &str, bins: &[ReliabilityBin]) {
    let (y0, s) = (top + 40.0, 220.0);
    let px = |x: f64| x0 + x as f32 * s;
    let py = |y: f64| y0 + (1.0 - y as f32) * s;
    svg.text(x0, top + 28.0, 13.0, "start", title);
    svg.line(x0, y0 + s, x0 + s, y0 + s, "#999", 1.0, "");
    svg.line(x0, y0, x0, y0 + s, "#999", 1.0, "");
    svg.line(px(0.0), py(0.0), px(1.0), py(1.0), "#999", 1.0, "4 3");
    let w = s / BINS as f32;
    for k in 0..BINS {
        let lo = k as f64 / BINS as f64;
        svg.text(px(lo), y0 + s + 14.0, 9.0, "middle", &format!("{lo:.1}"));
    }
    svg.text(px(1.0), y0 + s + 14.0, 9.0, "middle", "1.0");
    for a in [0.0, 0.5, 1.0] {
        svg.text(x0 - 4.0, py(a) + 3.0, 9.0, "end", &format!("{a:.1}"));
    }
    svg.text_rotated(x0 - 22.0, y0 + s / 2.0, 11.0, "middle", -90.0, "accuracy");
    for b in bins {
        let x = (px(b.prob_pred) - w * 0.35).min(px(1.0) - w * 0.7);
        svg.rect(
            x,
            py(b.prob_true),
            w * 0.7,
            s - (py(b.prob_true) - y0),
            "#3b6ea8",
        );
        svg.circle(px(b.prob_pred), py(b.prob_pred), 3.0, "#c0392b");
        svg.text(
            px(b.prob_pred),
            y0 + 12.0,
            9.0,
            "middle",
            &format!("n={}", b.count),
        );
    }
    svg.text(x0 + s / 2.0, y0 + s + 30.0, 11.0, "middle", "confidence");
}

/// Rows of four scores, one per question: the logits of the letters " A" …
/// " D" after the prompt.
fn score_letters(m: &mut SmolLm2, qs: &[Question]) -> Result<(Vec<u32>, Vec<Vec<f32>>)> {
    // ANCHOR: letter_logits
    let letter_ids: Vec<u32> = LETTERS
        .iter()
        .map(|l| match m.tok.encode(&format!(" {l}"))[..] {
            [id] => Ok(id),
            ref ids => bail!("\" {l}\" is {} tokens, not one", ids.len()),
        })
        .collect::<Result<_>>()?;
    let mut rows = Vec::new();
    for q in qs {
        m.lm.cache_mut().clear(0);
        let ids = m.tok.encode(&prompt(q));
        let last = m.lm.forward(&[(0, &ids)], LogitsFor::Last)?.remove(0);
        rows.push(letter_ids.iter().map(|&id| last[id as usize]).collect());
    }
    // ANCHOR_END: letter_logits
    Ok((letter_ids, rows))
}

/// Rows of four scores, one per question: the log-probability of each
/// option's text after "Question: …\nAnswer:", summed over its tokens.
fn score_cloze(m: &mut SmolLm2, qs: &[Question]) -> Result<Vec<Vec<f32>>> {
    let vocab = m.tok.vocab_size();
    let mut rows = Vec::new();
    // ANCHOR: cloze
    for q in qs {
        let stem = format!("Question: {}\nAnswer:", q.text);
        let pre = m.tok.encode(&stem);
        let conts: Vec<Vec<u32>> = q
            .options
            .iter()
            .map(|o| {
                let full = m.tok.encode(&format!("{stem} {o}"));
                match full.strip_prefix(&pre[..]) {
                    Some(rest) if !rest.is_empty() => Ok(rest.to_vec()),
                    _ => bail!("{o:?} does not extend the question's tokens"),
                }
            })
            .collect::<Result<_>>()?;
        // The question once, forked into four slots; then the four options
        // in one batched call, with the logits of every position.
        m.lm.cache_mut().clear_all();
        let mut next = m.lm.forward(&[(0, &pre)], LogitsFor::Last)?.remove(0);
        engine::kernels::log_softmax_inplace(&mut next);
        for slot in 1..4 {
            m.lm.cache_mut().copy_slot(0, slot)?;
        }
        let batch: Vec<(usize, &[u32])> =
            conts.iter().enumerate().map(|(s, c)| (s, &c[..])).collect();
        let outs = m.lm.forward(&batch, LogitsFor::All)?;
        let row = conts
            .iter()
            .zip(&outs)
            .map(|(c, out)| {
                // Token 0 is predicted by the question's last position,
                // token i by the option's position i - 1.
                let mut lp = next[c[0] as usize] as f64;
                for (i, &t) in c.iter().enumerate().skip(1) {
                    let mut r = out[(i - 1) * vocab..i * vocab].to_vec();
                    engine::kernels::log_softmax_inplace(&mut r);
                    lp += r[t as usize] as f64;
                }
                lp as f32
            })
            .collect();
        rows.push(row);
    }
    // ANCHOR_END: cloze
    Ok(rows)
}

/// Fit T on one half, print the held-out half's accuracy, NLL and ECE at
/// T = 1 and at the fitted T, and return the reliability bins of both.
fn report(name: &str, logits: &[Vec<f32>], labels: &[usize]) -> Result<Vec<Vec<ReliabilityBin>>> {
    // Fit on questions 0-3 of every 8, evaluate on 4-7: each half holds
    // every answer letter equally often.
    let (mut fit, mut eval) = ((Vec::new(), Vec::new()), (Vec::new(), Vec::new()));
    for (i, (row, &y)) in logits.iter().zip(labels).enumerate() {
        let half = if i % 8 < 4 { &mut fit } else { &mut eval };
        half.0.push(row.clone());
        half.1.push(y);
    }
    let t = fit_temperature(&fit.0, &fit.1)?;
    // A large T sits on a flat stretch of the NLL: two significant digits
    // are all that the kernels agree on there.
    let shown = if t >= 10.0 {
        format!("{t:.0}")
    } else {
        format!("{t:.2}")
    };
    println!(
        "{name}: T fitted on {} questions = {shown}; on the other {}:",
        fit.1.len(),
        eval.1.len()
    );
    let mut all_bins = Vec::new();
    let mut before_after = Vec::new();
    for (label, temp) in [("T = 1 (raw)", 1.0), ("T fitted", t)] {
        let (conf, correct) = confidences(&eval.0, &eval.1, temp);
        let acc = correct.iter().filter(|&&c| c).count() as f64 / correct.len() as f64;
        let nll = decode::post::calibration::nll(&eval.0, &eval.1, temp);
        let ece = expected_calibration_error(&conf, &correct, BINS)?;
        let mean_conf = conf.iter().sum::<f64>() / conf.len() as f64;
        let bins = reliability_curve(&correct, &conf, BINS)?;
        println!(
            "  {label:<12} accuracy {acc:.3}  mean confidence {mean_conf:.3}  NLL {nll:.3}  ECE ({BINS} bins) {ece:.3}"
        );
        let cells: Vec<String> = bins
            .iter()
            .map(|b| format!("{:.2}→{:.2} ({})", b.prob_pred, b.prob_true, b.count))
            .collect();
        println!("  {:<12} bins: {}", "", cells.join("  "));
        all_bins.push(bins);
        before_after.push((nll, ece));
    }
    let verb = |before: f64, after: f64| if after < before { "lowers" } else { "raises" };
    println!(
        "  on the held-out half, the fitted T {} the NLL and {} the ECE",
        verb(before_after[0].0, before_after[1].0),
        verb(before_after[0].1, before_after[1].1)
    );
    Ok(all_bins)
}

fn main() -> Result<()> {
    let qs = read_questions()?;
    let labels: Vec<usize> = qs.iter().map(|q| q.answer).collect();
    let mut m = SmolLm2::load(256, 4)?;
    let (letter_ids, letters) = score_letters(&mut m, &qs)?;
    let cloze = score_cloze(&mut m, &qs)?;

    println!("ANCHOR: mc");
    println!(
        "{} questions, 4 options each (chance: 0.25); first three, as probabilities (T = 1):",
        qs.len()
    );
    for (k, q) in qs.iter().take(3).enumerate() {
        println!("  {}  (right: {})", q.text, LETTERS[q.answer]);
        for (name, rows) in [("letters", &letters), ("cloze", &cloze)] {
            let p = softmax(&rows[k]);
            let cells: Vec<String> = LETTERS
                .iter()
                .zip(&p)
                .map(|(l, p)| format!("{l} {p:.2}"))
                .collect();
            println!("    {name:<8} {}", cells.join("  "));
        }
    }
    println!(
        "letters: logits of the tokens {:?} = ids {letter_ids:?} after \"Answer:\"",
        LETTERS.map(|l| format!(" {l}"))
    );
    println!("cloze: log-probability of each option's text after \"Answer:\"");
    println!("ANCHOR_END: mc");

    println!("ANCHOR: calibrate");
    let letter_bins = report("letters", &letters, &labels)?;
    let cloze_bins = report("cloze", &cloze, &labels)?;
    println!("ANCHOR_END: calibrate");

    let mut svg = Svg::new(580.0, 620.0);
    for (row, (method, bins)) in [("letters", &letter_bins), ("cloze", &cloze_bins)]
        .iter()
        .enumerate()
    {
        for (k, (label, b)) in ["T = 1", "T fitted"].iter().zip(bins.iter()).enumerate() {
            panel(
                &mut svg,
                50.0 + 290.0 * k as f32,
                300.0 * row as f32,
                &format!("SmolLM2, {method}, {label}"),
                b,
            );
        }
    }
    svg.text(
        10.0,
        610.0,
        10.0,
        "start",
        &format!(
            "Bars: accuracy per confidence bin ({BINS} bins, held-out half), n = its questions; dots and dashes: perfect calibration."
        ),
    );
    svg.write("ch09_llm_reliability.svg")?;
    Ok(())
}
