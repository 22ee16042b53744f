//! Chapter 8 on the real model: a prompt whose greedy continuation by
//! SmolLM2-135M-Instruct falls into a loop, decoded greedily with no
//! penalty and with each penalty, then one step of the `--explain` table
//! where the repetition penalty changes the choice.
//!
//! `cargo run --release --example ch08_real_model`
//! (needs the model: `scripts/fetch-model.sh`). The output carries
//! `ANCHOR:` lines so the chapter can include sections. The same runs from
//! the command line: `infer generate PROMPT --strategy greedy --repetition-penalty 1.3`, ...

use std::collections::HashSet;

use anyhow::Result;
use decode::{GenerateParams, SamplingParams, Strategy, generate};
use model::gguf::GgufFile;
use model::llama::{Llama, LlamaWeights};
use model::tokenizer::Tokenizer;

const PROMPT: &str = "My favourite food is pizza because";
const NEW_TOKENS: usize = 48;

/// One line of text: newlines shown as ⏎.
fn one_line(s: &str) -> String {
    s.replace('\n', "⏎")
}

/// How many token 4-grams of `ids` already occurred earlier in `ids`.
fn repeated_4grams(ids: &[u32]) -> usize {
    let mut seen = HashSet::new();
    ids.windows(4).filter(|w| !seen.insert(w.to_vec())).count()
}

fn main() -> Result<()> {
    let path = model::model_path::find_default_model()?;
    let gguf = GgufFile::open(&path)?;
    let tok = Tokenizer::from_gguf(&gguf)?;
    let weights = LlamaWeights::from_gguf(&gguf, |_, _| {})?
        // Widened to f32, the model the transformers fixtures check (chapter
        // 10 runs the file's 4-bit blocks as they are).
        .to_dtype(engine::DType::F32)?;
    let mut lm = Llama::new(weights, 128, 1)?;
    let prompt = tok.encode(PROMPT);
    let none = SamplingParams::default();
    let settings: Vec<(&str, SamplingParams)> = vec![
        ("no penalty", none.clone()),
        (
            "repetition 1.3 (prompt + output)",
            SamplingParams {
                repetition_penalty: 1.3,
                ..none.clone()
            },
        ),
        (
            "frequency 0.5 (output)",
            SamplingParams {
                frequency_penalty: 0.5,
                ..none.clone()
            },
        ),
        (
            "presence 0.5 (output)",
            SamplingParams {
                presence_penalty: 0.5,
                ..none.clone()
            },
        ),
        (
            "no-repeat-ngram 3",
            SamplingParams {
                no_repeat_ngram: 3,
                ..none.clone()
            },
        ),
    ];
    let eos: Vec<u32> = tok.eos_id().into_iter().collect();
    println!("ANCHOR: side_by_side");
    println!("prompt: {PROMPT:?}");
    println!("SmolLM2-135M-Instruct, greedy, {NEW_TOKENS} new tokens");
    for (name, sampling) in settings {
        let params = GenerateParams {
            strategy: Strategy::Greedy,
            sampling,
            max_new_tokens: NEW_TOKENS,
            eos_ids: eos.clone(),
            ..Default::default()
        };
        let g = generate(&mut lm, &tok, &prompt, &params)?;
        let ids: Vec<u32> = g.tokens.iter().map(|t| t.id).collect();
        println!();
        println!(
            "{name}  ({} of {} token 4-grams are repeats)",
            repeated_4grams(&ids),
            ids.len().saturating_sub(3)
        );
        println!("  {}", one_line(&g.text));
    }
    println!("ANCHOR_END: side_by_side");

    // The first step where the repetition penalty overrides the raw argmax,
    // as `infer generate --explain` shows it (greedy: no warpers, so the
    // /T column is empty and nothing is cut).
    let params = GenerateParams {
        strategy: Strategy::Greedy,
        sampling: SamplingParams {
            repetition_penalty: 1.3,
            ..none
        },
        max_new_tokens: NEW_TOKENS,
        eos_ids: eos,
        explain_top: 5,
        ..Default::default()
    };
    let g = generate(&mut lm, &tok, &prompt, &params)?;
    println!("ANCHOR: explain");
    match g.explain.iter().find(|s| s.rows[0].id != s.chosen) {
        Some(step) => {
            let before: Vec<u32> = g.tokens[..step.step].iter().map(|t| t.id).collect();
            println!(
                "text so far: {:?}",
                format!("{PROMPT}{}", tok.decode(&before))
            );
            print!("{step}");
        }
        None => println!("the repetition penalty never changed the greedy choice"),
    }
    println!("ANCHOR_END: explain");
    Ok(())
}
