//! Chapter 7 on the real model: one prompt, continued by SmolLM2-135M-Instruct
//! under greedy decoding and under each sampling setting, all with the same
//! seed, so the differences come from the settings alone.
//!
//! `cargo run --release --example ch07_real_model`
//! (needs the model: `scripts/fetch-model.sh`). The same runs from the
//! command line: `infer generate PROMPT --seed 42 --temperature 1 --top-p 1 --top-k 40`, ...

use anyhow::Result;
use decode::{GenerateParams, SamplingParams, Strategy, generate};
use model::gguf::GgufFile;
use model::llama::{Llama, LlamaWeights};
use model::tokenizer::Tokenizer;

const PROMPT: &str = "Once upon a time, in a small village by the sea,";
const SEED: u64 = 42;
const NEW_TOKENS: usize = 40;

/// One line of text: newlines shown as ⏎ so each run stays on one paragraph.
fn one_line(s: &str) -> String {
    s.replace('\n', "⏎")
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
    let t1 = SamplingParams::default(); // T = 1, every warper off
    let settings: Vec<(&str, Strategy, SamplingParams)> = vec![
        ("greedy", Strategy::Greedy, t1.clone()),
        (
            "T = 0.5",
            Strategy::Sample { seed: SEED },
            SamplingParams {
                temperature: 0.5,
                ..t1.clone()
            },
        ),
        ("T = 1.0", Strategy::Sample { seed: SEED }, t1.clone()),
        (
            "T = 1.5",
            Strategy::Sample { seed: SEED },
            SamplingParams {
                temperature: 1.5,
                ..t1.clone()
            },
        ),
        (
            "T = 1.5, top-k 40",
            Strategy::Sample { seed: SEED },
            SamplingParams {
                temperature: 1.5,
                top_k: 40,
                ..t1.clone()
            },
        ),
        (
            "T = 1.5, top-p 0.9",
            Strategy::Sample { seed: SEED },
            SamplingParams {
                temperature: 1.5,
                top_p: 0.9,
                ..t1.clone()
            },
        ),
        (
            "T = 1.5, min-p 0.05",
            Strategy::Sample { seed: SEED },
            SamplingParams {
                temperature: 1.5,
                min_p: 0.05,
                ..t1.clone()
            },
        ),
    ];
    println!("prompt: {PROMPT:?}");
    println!("SmolLM2-135M-Instruct, {NEW_TOKENS} new tokens, seed {SEED} for every sampled run");
    for (name, strategy, sampling) in settings {
        let params = GenerateParams {
            strategy,
            sampling,
            max_new_tokens: NEW_TOKENS,
            eos_ids: tok.eos_id().into_iter().collect(),
            ..Default::default()
        };
        let g = generate(&mut lm, &tok, &prompt, &params)?;
        // Mean log-prob of the chosen tokens under the distribution each was
        // drawn from: how far from the model's favourites the run wandered.
        let mean_lp =
            g.tokens.iter().map(|t| t.logprob as f64).sum::<f64>() / g.tokens.len().max(1) as f64;
        println!();
        println!("{name}  (mean log-prob of the chosen tokens {mean_lp:.2})");
        println!("  {}", one_line(&g.text));
    }
    Ok(())
}
