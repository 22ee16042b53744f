//! Chapter 8: why loops happen, and what repetition, frequency and presence
//! penalties, no-repeat-n-gram and stop strings do about them — on a toy
//! model whose greedy path loops.
//!
//! `cargo run --release --example ch08_penalties`
//! The output carries `ANCHOR:` lines so the chapter can include sections.

use decode::penalties::{FrequencyPresencePenalty, PenaltyScope, RepetitionPenalty};
use decode::probs::softmax;
use decode::toy::FnModel;
use decode::{GenerateParams, Generator, LogitsProcessor, SamplingParams, TokenHistory, generate};

const WORDS: [&str; 9] = [
    " the", " cat", " sat", " on", " mat", " and", " slept", ".", " dog",
];

/// A bigram model with a cycle: the → cat → sat → on → the → … is the most
/// likely path, so greedy decoding loops forever.
fn looping_model() -> FnModel<impl Fn(&[u32]) -> Vec<f32>> {
    FnModel::new(9, 1, 64, |toks: &[u32]| {
        let mut l = vec![-2.0f32; 9];
        match toks.last().copied().unwrap_or(0) {
            0 => {
                l[1] = 2.0;
                l[8] = 1.6;
                l[4] = 1.2;
            }
            1 | 8 => {
                l[2] = 2.0;
                l[6] = 1.0;
            }
            2 => {
                l[3] = 2.0;
                l[7] = 0.8;
            }
            3 => {
                l[0] = 2.0;
            }
            4 | 6 => {
                l[7] = 1.5;
                l[5] = 1.0;
            }
            5 => {
                l[0] = 1.0;
                l[6] = 0.8;
            }
            _ => {
                l[0] = 1.0;
            }
        }
        l
    })
}

fn detok() -> Vec<Vec<u8>> {
    WORDS.iter().map(|w| w.as_bytes().to_vec()).collect()
}

fn main() -> Result<(), decode::DecodeError> {
    println!("ANCHOR: formulas");
    // One logits row and a history where token 0 was seen 3 times, 1 once.
    let logits = vec![2.0f32, -1.0, 1.5, 0.5];
    let prompt = [0u32];
    let history = [0u32, 0, 1, 0];
    let h = TokenHistory::new(&history, prompt.len());
    let show = |name: &str, p: &dyn LogitsProcessor| {
        let mut x = logits.clone();
        p.process(&h, &mut x).expect("valid");
        let pr = softmax(&x);
        println!(
            "{name:<28} {}   probs {}",
            x.iter().map(|v| format!("{v:>+7.3}")).collect::<String>(),
            pr.iter().map(|v| format!("{v:>6.3}")).collect::<String>()
        );
    };
    println!(
        "history {history:?} (prompt {prompt:?}); token 0 seen 3x (2x generated), token 1 once"
    );
    println!(
        "{:<28} {}",
        "",
        (0..4)
            .map(|i| format!("{:>7}", format!("tok{i}")))
            .collect::<String>()
    );
    show("raw", &decode::penalties::LogitBias::new(vec![])?);
    show(
        "repetition 1.5 (all)",
        &RepetitionPenalty::new(1.5, PenaltyScope::PromptAndGenerated)?,
    );
    show(
        "frequency 0.5 (generated)",
        &FrequencyPresencePenalty::new(0.5, 0.0, PenaltyScope::GeneratedOnly)?,
    );
    show(
        "presence 0.5 (generated)",
        &FrequencyPresencePenalty::new(0.0, 0.5, PenaltyScope::GeneratedOnly)?,
    );
    show(
        "frequency 0.5 (prompt+gen)",
        &FrequencyPresencePenalty::new(0.5, 0.0, PenaltyScope::PromptAndGenerated)?,
    );
    println!("ANCHOR_END: formulas");

    println!("ANCHOR: counterexample");
    // Two seen tokens: a big positive logit shrinks a lot under division, a
    // small one barely moves, so the small one's probability goes UP.
    let logits = vec![6.0f32, 0.1, 0.0];
    let seen = [0u32, 1];
    let mut x = logits.clone();
    RepetitionPenalty::new(2.0, PenaltyScope::PromptAndGenerated)?
        .process(&TokenHistory::new(&seen, 2), &mut x)?;
    let (p0, p1) = (softmax(&logits), softmax(&x));
    println!("logits {logits:?} -> {x:?} (tokens 0 and 1 seen, penalty 2)");
    println!("probabilities {:.4?} -> {:.4?}", p0, p1);
    println!(
        "seen token 1: {:.4} -> {:.4}  (up, although it was penalised)",
        p0[1], p1[1]
    );
    println!(
        "seen mass: {:.4} -> {:.4}  (down, as the property test checks)",
        p0[0] + p0[1],
        p1[0] + p1[1]
    );
    println!("ANCHOR_END: counterexample");

    println!("ANCHOR: loops");
    let base = GenerateParams {
        max_new_tokens: 16,
        ..Default::default()
    };
    let runs: Vec<(&str, SamplingParams)> = vec![
        ("greedy, no penalty", SamplingParams::default()),
        (
            "repetition 1.3",
            SamplingParams {
                repetition_penalty: 1.3,
                ..Default::default()
            },
        ),
        (
            "frequency 0.4",
            SamplingParams {
                frequency_penalty: 0.4,
                ..Default::default()
            },
        ),
        (
            "presence 0.8",
            SamplingParams {
                presence_penalty: 0.8,
                ..Default::default()
            },
        ),
        (
            "no-repeat-ngram 2",
            SamplingParams {
                no_repeat_ngram: 2,
                ..Default::default()
            },
        ),
        (
            "repetition 1.3, last 4",
            SamplingParams {
                repetition_penalty: 1.3,
                repetition_scope: PenaltyScope::LastN(4),
                ..Default::default()
            },
        ),
    ];
    for (name, sampling) in runs {
        let params = GenerateParams {
            sampling,
            ..base.clone()
        };
        let g = generate(&mut looping_model(), &detok(), &[0], &params)?;
        println!("{name:<24} the{}", g.text);
    }
    println!("ANCHOR_END: loops");

    println!("ANCHOR: explain");
    let params = GenerateParams {
        max_new_tokens: 5,
        sampling: SamplingParams {
            repetition_penalty: 1.3,
            frequency_penalty: 0.4,
            ..Default::default()
        },
        explain_top: 4,
        ..base.clone()
    };
    let g = generate(&mut looping_model(), &detok(), &[0, 1, 2, 3], &params)?;
    print!("{}", g.explain[0]);
    println!("ANCHOR_END: explain");

    println!("ANCHOR: stop");
    let params = GenerateParams {
        max_new_tokens: 16,
        stop_strings: vec!["sat on the".to_string()],
        ..base
    };
    let mut m = looping_model();
    let d = detok();
    let steps = Generator::new(&mut m, &d, 0, &[0], &params)?;
    for step in steps {
        let step = step?;
        println!(
            "token {:<8} delta {:<10} {}",
            format!("{:?}", step.token.text),
            format!("{:?}", step.delta),
            step.finish
                .map(|f| format!("finish: {f:?}"))
                .unwrap_or_default()
        );
    }
    println!("ANCHOR_END: stop");
    Ok(())
}
