//! `infer perplexity FILE`: score a text as `llama-perplexity` does.

use std::io::{IsTerminal, Write};

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;

use crate::loader::{ModelArgs, load};

/// Arguments of `infer perplexity`. Its `--ctx` is the chunk's length, as
/// llama-perplexity's `-c` is: each chunk is one context, and the KV cache
/// holds exactly that many positions.
#[derive(Debug, Args)]
#[command(mut_arg("ctx", |a| a
    .default_value("512")
    .visible_alias("chunk")
    .help("Tokens per chunk, one context each (llama-perplexity's -c); the second half of each chunk is scored")))]
pub struct PerplexityArgs {
    /// A UTF-8 text file.
    pub file: std::path::PathBuf,
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
    let chunk = a.model.ctx;
    if chunk < 4 {
        bail!("--ctx {chunk}: a chunk needs at least 4 tokens (its second half is scored)");
    }
    let mut loaded = load(&a.model, 1)?;
    let tok = loaded
        .tokenizer
        .as_ref()
        .ok_or_else(|| anyhow!("{} has no tokenizer", loaded.path.display()))?;
    let bos = if loaded.add_bos { tok.bos_id() } else { None };
    let mut ids: Vec<u32> = bos.into_iter().collect();
    ids.extend(tok.encode(&text));
    // llama-perplexity refuses a text of fewer than two contexts, however
    // few chunks it is asked to score.
    if ids.len() < 2 * chunk {
        bail!(
            "{} has {} tokens; scoring with a context of {chunk} needs at least {} (two contexts, as llama-perplexity asks)",
            a.file.display(),
            ids.len(),
            2 * chunk
        );
    }
    if let Some(n) = a.max_chunks {
        if n == 0 {
            bail!("--max-chunks 0: nothing to score");
        }
        ids.truncate(ids.len().min(n.saturating_mul(chunk)));
    }
    let tty = std::io::stderr().is_terminal();
    let p = decode::perplexity::perplexity(loaded.lm.as_mut(), &ids, chunk, bos, |done, total| {
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
            "ctx": chunk,
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
            p.ppl, p.plus_minus, p.chunks, chunk, p.tokens
        )?;
    }
    Ok(())
}
