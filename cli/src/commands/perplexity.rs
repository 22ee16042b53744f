//! `infer perplexity FILE`: score a text as `llama-perplexity` does.

use std::io::{IsTerminal, Write};

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;

use crate::loader::{ModelArgs, load};

/// Arguments of `infer perplexity`.
#[derive(Debug, Args)]
pub struct PerplexityArgs {
    /// A UTF-8 text file.
    pub file: std::path::PathBuf,
    /// Tokens per chunk (llama-perplexity's `-c`); the second half of each
    /// chunk is scored.
    #[arg(long = "chunk", default_value_t = 512)]
    pub chunk: usize,
    /// Score at most this many chunks (default: all).
    #[arg(long)]
    pub max_chunks: Option<usize>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Model, threads, dtype, cache type.
    #[command(flatten)]
    pub model: ModelArgs,
}

/// Run `infer perplexity`.
pub fn run(a: &PerplexityArgs, out: &mut dyn Write) -> Result<()> {
    let text = std::fs::read_to_string(&a.file)
        .with_context(|| format!("reading {}", a.file.display()))?;
    let mut args = a.model.clone();
    args.ctx = args.ctx.max(a.chunk);
    let mut loaded = load(&args, 1)?;
    let tok = loaded
        .tokenizer
        .as_ref()
        .ok_or_else(|| anyhow!("{} has no tokenizer", loaded.path.display()))?;
    let bos = if loaded.add_bos { tok.bos_id() } else { None };
    let mut ids: Vec<u32> = bos.into_iter().collect();
    ids.extend(tok.encode(&text));
    if let Some(n) = a.max_chunks {
        ids.truncate(ids.len().min(n.saturating_mul(a.chunk)));
    }
    if ids.len() < a.chunk {
        bail!(
            "{} has {} tokens, fewer than one chunk of {}",
            a.file.display(),
            ids.len(),
            a.chunk
        );
    }
    let tty = std::io::stderr().is_terminal();
    let p =
        decode::perplexity::perplexity(loaded.lm.as_mut(), &ids, a.chunk, bos, |done, total| {
            if tty {
                let w = 30;
                let filled = done * w / total;
                eprint!(
                    "\r[{}{}] chunk {done}/{total}",
                    "#".repeat(filled),
                    ".".repeat(w - filled)
                );
                let _ = std::io::stderr().flush();
            }
        })?;
    if tty {
        eprintln!();
    }
    if a.json {
        let v = serde_json::json!({
            "model": loaded.path.display().to_string(),
            "file": a.file.display().to_string(),
            "chunk": a.chunk,
            "chunks": p.chunks,
            "tokens_scored": p.tokens,
            "ppl": p.ppl,
            "plus_minus": p.plus_minus,
            "per_chunk": p.per_chunk,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        let running: Vec<String> = p
            .per_chunk
            .iter()
            .enumerate()
            .map(|(i, x)| format!("[{}]{x:.4}", i + 1))
            .collect();
        writeln!(out, "{}", running.join(","))?;
        writeln!(
            out,
            "Final estimate: PPL = {:.4} +/- {:.5}  ({} chunks of {}, {} tokens scored)",
            p.ppl, p.plus_minus, p.chunks, a.chunk, p.tokens
        )?;
    }
    Ok(())
}
