//! `infer generate PROMPT`: continue a prompt, streaming tokens to stdout.

use std::io::Write;

use anyhow::Result;
use clap::Args;
use model::tokenizer::StreamDecoder;

use crate::generation::generate;
use crate::loader::{ModelArgs, load, prompt_ids};

/// Arguments of `infer generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// The prompt text (or comma-separated token ids with `--ids`).
    pub prompt: String,
    /// Most tokens to generate.
    #[arg(long, default_value_t = 64)]
    pub max_new_tokens: usize,
    /// Treat PROMPT as token ids.
    #[arg(long)]
    pub ids: bool,
    /// Print one JSON object (ids, text, timing) instead of streaming text.
    #[arg(long)]
    pub json: bool,
    /// Model, threads, context.
    #[command(flatten)]
    pub model: ModelArgs,
}

/// Run `infer generate`.
pub fn run(a: &GenerateArgs, out: &mut dyn Write) -> Result<()> {
    let mut loaded = load(&a.model, 1)?;
    let prompt = prompt_ids(&loaded, &a.prompt, a.ids)?;
    if prompt.is_empty() {
        anyhow::bail!("the prompt is empty: give at least one token to continue");
    }
    let stop: Vec<u32> = loaded
        .tokenizer
        .as_ref()
        .and_then(|t| t.eos_id())
        .into_iter()
        .collect();
    let tokenizer = loaded.tokenizer.clone();
    let mut stream = tokenizer.as_ref().map(StreamDecoder::new);
    let json = a.json;
    let mut on_token = |tok: u32| {
        if json {
            return;
        }
        match stream.as_mut() {
            Some(s) => {
                let _ = write!(out, "{}", s.push(tok));
            }
            None => {
                let _ = write!(out, "{tok} ");
            }
        }
        let _ = out.flush();
    };
    let o = generate(
        loaded.lm.as_mut(),
        0,
        &prompt,
        a.max_new_tokens,
        &stop,
        &mut on_token,
    )?;
    let text = tokenizer.as_ref().map(|t| t.decode(&o.tokens));
    if json {
        let v = serde_json::json!({
            "model": loaded.path.display().to_string(),
            "prompt": a.prompt,
            "prompt_ids": prompt,
            "ids": o.tokens,
            "text": text,
            "stopped_by_eos": o.stopped,
            "timing": {
                "load_s": loaded.load_secs,
                "prefill_s": o.prefill_secs,
                "prefill_tok_per_s": prompt.len() as f64 / o.prefill_secs.max(1e-9),
                "decode_s": o.decode_secs,
                "decode_steps": o.decode_steps,
                "decode_tok_per_s": o.decode_steps as f64 / o.decode_secs.max(1e-9),
            }
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        if let Some(s) = stream.as_mut() {
            write!(out, "{}", s.finish())?;
        }
        writeln!(out)?;
        eprintln!(
            "[{} prompt tokens in {:.2} s ({:.1} tok/s); {} tokens in {:.2} s ({:.1} tok/s)]",
            prompt.len(),
            o.prefill_secs,
            prompt.len() as f64 / o.prefill_secs.max(1e-9),
            o.decode_steps,
            o.decode_secs,
            o.decode_steps as f64 / o.decode_secs.max(1e-9)
        );
    }
    Ok(())
}
