//! Chapter 6: greedy search and beam search on a toy model whose
//! probabilities are written down, so every number can be checked by hand.
//!
//! `cargo run --release --example ch06_beam`
//! The output carries `ANCHOR:` lines so the chapter can include sections.

/// The toy models' tokens have no text; beam search needs a detokenizer
/// only to cut hypotheses at stop strings, which these runs do not use.
const TOY_TEXT: Vec<Vec<u8>> = Vec::new();

use decode::probs::log_softmax;
use decode::toy::{FnModel, greedy_trap_model};
use decode::{BeamParams, EarlyStopping, GenerateParams, Strategy, beam_search, generate};

const WORDS: [&str; 8] = ["<s>", "the", "a", "cat", "dog", "sat", "ran", "."];

/// Next-word probabilities after each word (rows sum to 1; "." is EOS).
fn probs(prev: u32) -> [f32; 8] {
    match prev {
        0 => [0.0, 0.55, 0.45, 0.0, 0.0, 0.0, 0.0, 0.0],
        1 => [0.0, 0.0, 0.0, 0.55, 0.45, 0.0, 0.0, 0.0],
        2 => [0.0, 0.0, 0.0, 0.9, 0.1, 0.0, 0.0, 0.0],
        3 => [0.0, 0.0, 0.0, 0.0, 0.0, 0.6, 0.3, 0.1],
        4 => [0.0, 0.0, 0.0, 0.0, 0.0, 0.3, 0.6, 0.1],
        5 => [0.0, 0.4, 0.0, 0.0, 0.0, 0.0, 0.0, 0.6],
        6 => [0.0, 0.0, 0.3, 0.0, 0.0, 0.0, 0.0, 0.7],
        _ => [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
    }
}

fn toy(slots: usize) -> FnModel<impl Fn(&[u32]) -> Vec<f32>> {
    FnModel::new(8, slots, 32, |toks: &[u32]| {
        probs(*toks.last().unwrap())
            .iter()
            .map(|&p| if p > 0.0 { p.ln() } else { -1e4 })
            .collect()
    })
}

fn words(ids: &[u32]) -> String {
    ids.iter()
        .map(|&i| WORDS[i as usize])
        .collect::<Vec<_>>()
        .join(" ")
}

fn beam(
    nb: usize,
    lp: f32,
    es: EarlyStopping,
    ret: usize,
    n: usize,
    eos: Vec<u32>,
) -> GenerateParams {
    GenerateParams {
        strategy: Strategy::Beam(BeamParams {
            num_beams: nb,
            length_penalty: lp,
            early_stopping: es,
            num_return_sequences: ret,
            ..Default::default()
        }),
        max_new_tokens: n,
        eos_ids: eos,
        ..Default::default()
    }
}

fn main() -> Result<(), decode::DecodeError> {
    let detok: Vec<Vec<u8>> = WORDS.iter().map(|w| format!("{w} ").into_bytes()).collect();

    println!("ANCHOR: greedy");
    let g = generate(
        &mut toy(1),
        &detok,
        &[0],
        &GenerateParams {
            max_new_tokens: 3,
            ..Default::default()
        },
    )?;
    let mut total = 0.0;
    for t in &g.tokens {
        total += t.logprob;
        println!(
            "greedy picks {:<4} p = {:.2}   running log-prob {:+.3}",
            WORDS[t.id as usize],
            t.logprob.exp(),
            total
        );
    }
    println!(
        "greedy: \"{}\"  probability {:.4}",
        g.text.trim(),
        total.exp()
    );
    println!("ANCHOR_END: greedy");

    println!("ANCHOR: table");
    // The beam after each step: beam search stopped after t tokens returns
    // exactly the beams it held (no EOS, length penalty 0).
    let nb = 2;
    let mut prev: Vec<(Vec<u32>, f32)> = vec![(vec![], 0.0)];
    for step in 1..=3 {
        println!("step {step}: every beam x every next word (top {})", 2 * nb);
        let mut cands: Vec<(Vec<u32>, f32, f32)> = Vec::new();
        for (seq, score) in &prev {
            let last = *seq.last().unwrap_or(&0);
            let row: Vec<f32> = probs(last)
                .iter()
                .map(|&p| if p > 0.0 { p.ln() } else { -1e4 })
                .collect();
            let lsm = log_softmax(&row);
            for (tok, &l) in lsm.iter().enumerate() {
                if l > -100.0 {
                    let mut s = seq.clone();
                    s.push(tok as u32);
                    cands.push((s, l, score + l));
                }
            }
        }
        cands.sort_by(|a, b| b.2.total_cmp(&a.2));
        let hyps = beam_search(
            &mut toy(nb),
            &TOY_TEXT,
            &[0],
            &beam(nb, 0.0, EarlyStopping::Never, nb, step, vec![]),
        )?;
        println!(
            "  {:<22} {:>10} {:>12} {:>8}  kept?",
            "sequence", "log p(w)", "sum log p", "prob"
        );
        for (seq, l, s) in cands.iter().take(2 * nb) {
            let kept = hyps.iter().any(|h| &h.tokens == seq);
            println!(
                "  {:<22} {:>+10.3} {:>+12.3} {:>8.4}  {}",
                words(seq),
                l,
                s,
                s.exp(),
                if kept { "kept" } else { "-" }
            );
        }
        prev = hyps
            .iter()
            .map(|h| (h.tokens.clone(), h.sum_logprobs))
            .collect();
    }
    println!(
        "beam (width 2): \"{}\"  probability {:.4}",
        words(&prev[0].0),
        prev[0].1.exp()
    );
    println!("ANCHOR_END: table");

    println!("ANCHOR: length");
    // With "." as EOS, hypotheses end at different lengths; α decides.
    for lp in [0.0f32, 1.0, 2.0] {
        let hyps = beam_search(
            &mut toy(3),
            &TOY_TEXT,
            &[0],
            &beam(3, lp, EarlyStopping::Never, 3, 8, vec![7]),
        )?;
        println!("length penalty {lp}:");
        for h in &hyps {
            println!(
                "  {:<30} len {}  sum log p {:+.3}  score {:+.4}",
                words(&h.tokens),
                h.tokens.len(),
                h.sum_logprobs,
                h.score
            );
        }
    }
    println!("ANCHOR_END: length");

    println!("ANCHOR: trap");
    let letters: Vec<Vec<u8>> = [
        "S", "A", "B", "C", "<eos>", "f", "f", "f", "f", "f", "f", "f", "f", "f", "f", "f",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let g = generate(
        &mut greedy_trap_model(1),
        &letters,
        &[0],
        &GenerateParams {
            max_new_tokens: 3,
            eos_ids: vec![4],
            ..Default::default()
        },
    )?;
    let gsum: f32 = g.tokens.iter().map(|t| t.logprob).sum();
    println!(
        "greedy : {:?}  log-prob {:+.3}",
        g.tokens.iter().map(|t| t.id).collect::<Vec<_>>(),
        gsum
    );
    for nb in [2, 4] {
        let h = &beam_search(
            &mut greedy_trap_model(nb),
            &TOY_TEXT,
            &[0],
            &beam(nb, 0.0, EarlyStopping::Never, 1, 3, vec![4]),
        )?[0];
        println!(
            "beam {nb} : {:?}  log-prob {:+.3}",
            h.tokens, h.sum_logprobs
        );
    }
    println!("ANCHOR_END: trap");
    Ok(())
}
