//! Chapter 6 on the real model: beam search on SmolLM2-135M-Instruct at
//! widths 1, 2, 4 and 8 (width 1 is greedy), with the score, the text and
//! how repetitive each output is; sampled continuations of the same prompt
//! for comparison, and the verdict on "beam output is bland" computed from
//! them; then what the length penalty α does to a chat answer. The wall
//! times are in their own section (`timing`), the only one that depends on
//! the machine.
//!
//! `cargo run --release --example ch06_real_model`
//! (needs the model: `scripts/fetch-model.sh`). The same runs from the
//! command line: `infer generate PROMPT --strategy beam --num-beams 4`, ...

use std::time::Instant;

use anyhow::Result;
use book::smollm2::{SmolLm2, distinct_n, excerpt, one_line, rep3};
use decode::{
    BeamHypothesis, BeamParams, EarlyStopping, GenerateParams, SamplingParams, Strategy,
    beam_search, generate_batch,
};

const PROMPT: &str = "Once upon a time, in a small village by the sea,";
const NEW_TOKENS: usize = 64;
const WIDTHS: [usize; 4] = [1, 2, 4, 8];
const SEED: u64 = 42;
/// Sampled continuations to compare with (streams 0.. of the seed).
const SAMPLES: usize = 8;
/// The chat question of the length-penalty table, and its token limit.
const QUESTION: &str = "What is the capital of France?";
const ANSWER_TOKENS: usize = 40;

fn beam(width: usize, alpha: f32, returned: usize, n: usize, eos: Vec<u32>) -> GenerateParams {
    GenerateParams {
        strategy: Strategy::Beam(BeamParams {
            num_beams: width,
            length_penalty: alpha,
            early_stopping: EarlyStopping::Heuristic,
            num_return_sequences: returned,
            ..Default::default()
        }),
        max_new_tokens: n,
        eos_ids: eos,
        ..Default::default()
    }
}

/// Mean distinct-2 and mean 3-gram repeat share of several outputs.
fn means(outputs: &[Vec<u32>]) -> (f64, f64) {
    let n = outputs.len().max(1) as f64;
    (
        outputs.iter().map(|o| distinct_n(o, 2)).sum::<f64>() / n,
        outputs.iter().map(|o| rep3(o)).sum::<f64>() / n,
    )
}

fn main() -> Result<()> {
    let mut m = SmolLm2::load(128, SAMPLES.max(8))?;
    let prompt = m.tok.encode(PROMPT);
    let eos = m.eos();

    // Beam search at each width (length penalty 1, HF's default).
    let mut runs: Vec<(usize, BeamHypothesis, f64)> = Vec::new();
    for &w in &WIDTHS {
        let start = Instant::now();
        let h = beam_search(
            &mut m.lm,
            &m.tok,
            &prompt,
            &beam(w, 1.0, 1, NEW_TOKENS, eos.clone()),
        )?
        .remove(0);
        runs.push((w, h, start.elapsed().as_secs_f64()));
    }

    // Sampled continuations of the same prompt, all in one batch.
    let prompts = vec![prompt.clone(); SAMPLES];
    let sample = |sampling: SamplingParams| GenerateParams {
        strategy: Strategy::Sample { seed: SEED },
        sampling,
        max_new_tokens: NEW_TOKENS,
        eos_ids: eos.clone(),
        ..Default::default()
    };
    let t1 = generate_batch(
        &mut m.lm,
        &m.tok,
        &prompts,
        &sample(SamplingParams::default()),
    )?;
    let t1_ids: Vec<Vec<u32>> = t1
        .iter()
        .map(|g| g.tokens.iter().map(|t| t.id).collect())
        .collect();
    let t1_lp: f64 = t1
        .iter()
        .map(|g| {
            g.tokens.iter().map(|t| t.logprob as f64).sum::<f64>() / g.tokens.len().max(1) as f64
        })
        .sum::<f64>()
        / SAMPLES as f64;

    println!("ANCHOR: widths");
    println!("prompt: {PROMPT:?}");
    println!(
        "SmolLM2-135M-Instruct, beam search, up to {NEW_TOKENS} new tokens, length penalty 1, EOS = {:?}",
        m.tok.decode(&eos)
    );
    println!(
        "{:<6} {:>6} {:>11} {:>12} {:>11} {:>7}",
        "width", "tokens", "sum log p", "per token", "distinct-2", "rep-3"
    );
    for (w, h, _) in &runs {
        let n = h.tokens.len();
        println!(
            "{:<6} {:>6} {:>11.2} {:>12.3} {:>11.2} {:>7.2}",
            w,
            n,
            h.sum_logprobs,
            h.sum_logprobs / n as f32,
            distinct_n(&h.tokens, 2),
            rep3(&h.tokens)
        );
    }
    let (d2, r3) = means(&t1_ids);
    println!(
        "{:<6} {:>6} {:>11} {:>12.3} {:>11.2} {:>7.2}   (mean of {SAMPLES} samples at T = 1, seed {SEED})",
        "T = 1", "", "", t1_lp, d2, r3
    );
    println!();
    for (w, h, _) in &runs {
        println!("width {w}: {}", one_line(&h.text));
    }
    println!("T = 1, first sample: {}", one_line(&t1[0].text));
    println!("ANCHOR_END: widths");

    println!("ANCHOR: verdict");
    let per_token = |h: &BeamHypothesis| h.sum_logprobs as f64 / h.tokens.len().max(1) as f64;
    let greedy = &runs[0].1;
    let widest = &runs[runs.len() - 1];
    let rising = runs
        .windows(2)
        .all(|w| per_token(&w[1].1) > per_token(&w[0].1));
    println!(
        "Per-token log-probability {} with every width (greedy {:.3}, width {} {:.3}); sampled text at T = 1 averages {t1_lp:.3}.",
        if rising { "rises" } else { "does not rise" },
        per_token(greedy),
        widest.0,
        per_token(&widest.1)
    );
    let (g_d2, g_r3) = (distinct_n(&greedy.tokens, 2), rep3(&greedy.tokens));
    let (b_d2, b_r3) = (distinct_n(&widest.1.tokens, 2), rep3(&widest.1.tokens));
    println!(
        "Repetition: width {} has distinct-2 {b_d2:.2} and rep-3 {b_r3:.2}, greedy {g_d2:.2} and {g_r3:.2}, sampling {d2:.2} and {r3:.2} (mean).",
        widest.0
    );
    let predictable = per_token(&widest.1) > t1_lp;
    let repetitive = b_d2 < g_d2.min(d2) || b_r3 > g_r3.max(r3);
    println!(
        "So on this prompt \"beam output is bland\" {} in the sense of predictable (more probable per token than sampled text), and {} in the sense of repetitive ({}).",
        if predictable {
            "holds"
        } else {
            "does not hold"
        },
        if repetitive { "holds" } else { "does not hold" },
        if repetitive {
            "the widest beam repeats more than greedy or sampling"
        } else {
            "the widest beam repeats no more than greedy and sampling"
        }
    );
    println!("ANCHOR_END: verdict");

    println!("ANCHOR: timing");
    println!("wall time on this machine (prefill included)");
    for (w, h, secs) in &runs {
        println!(
            "width {w}: {:>6.2} s  {:>6.1} ms per generated token",
            secs,
            1e3 * secs / h.tokens.len() as f64
        );
    }
    println!("ANCHOR_END: timing");

    // The length penalty decides between finished hypotheses of different
    // lengths: a chat answer, which ends with EOS.
    let question = m.chat_prompt(QUESTION);
    println!("ANCHOR: length");
    println!("chat prompt: {QUESTION:?}, beam width 4, up to {ANSWER_TOKENS} tokens");
    for alpha in [0.0f32, 1.0, 2.0] {
        let hyps = beam_search(
            &mut m.lm,
            &m.tok,
            &question,
            &beam(4, alpha, 4, ANSWER_TOKENS, eos.clone()),
        )?;
        println!("length penalty α = {alpha}:");
        for (i, h) in hyps.iter().enumerate() {
            println!(
                "  {} len {:>2}  sum log p {:>+7.2}  score {:>+7.3}  {}",
                if i == 0 { "chosen" } else { "      " },
                h.tokens.len(),
                h.sum_logprobs,
                h.score,
                excerpt(&h.text, 60)
            );
        }
    }
    println!("ANCHOR_END: length");
    Ok(())
}
