//! `infer tokenize TEXT`: token ids and pieces.

use anyhow::{Context, Result, bail};
use clap::Args;
use model::gguf::GgufFile;
use model::tokenizer::Tokenizer;
use std::io::Write;

use crate::loader::resolve_path;

/// Arguments of `infer tokenize`.
#[derive(Debug, Args)]
pub struct TokenizeArgs {
    /// The text to tokenize.
    pub text: String,
    /// A `.gguf` file, `tokenizer.json`, or a directory holding
    /// `tokenizer.json` or `vocab.json` + `merges.txt` (default: SmolLM2).
    #[arg(long, value_name = "PATH")]
    pub model: Option<std::path::PathBuf>,
    /// Print JSON (`ids`, `pieces`).
    #[arg(long)]
    pub json: bool,
}

fn load_tokenizer(path: &std::path::Path) -> Result<Tokenizer> {
    if path.is_dir() {
        if path.join("tokenizer.json").exists() {
            return Ok(Tokenizer::from_tokenizer_json(path.join("tokenizer.json"))?);
        }
        if path.join("vocab.json").exists() {
            return Ok(Tokenizer::from_vocab_merges(
                path.join("vocab.json"),
                path.join("merges.txt"),
            )?);
        }
        bail!(
            "{}: no tokenizer.json or vocab.json/merges.txt",
            path.display()
        );
    }
    if path.extension().is_some_and(|e| e == "json") {
        return Ok(Tokenizer::from_tokenizer_json(path)?);
    }
    let g = GgufFile::open(path).with_context(|| format!("opening {}", path.display()))?;
    Ok(Tokenizer::from_gguf(&g)?)
}

/// Run `infer tokenize`.
pub fn run(a: &TokenizeArgs, out: &mut dyn Write) -> Result<()> {
    let path = resolve_path(a.model.as_deref())?;
    let t = load_tokenizer(&path)?;
    let ids = t.encode(&a.text);
    let bytes: Vec<&[u8]> = ids.iter().map(|&id| t.token_bytes(id)).collect();
    if a.json {
        let pieces: Vec<String> = bytes
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect();
        writeln!(
            out,
            "{}",
            serde_json::json!({ "ids": ids, "pieces": pieces, "bytes": bytes })
        )?;
        return Ok(());
    }
    writeln!(out, "{} tokens", ids.len())?;
    for (id, b) in ids.iter().zip(&bytes) {
        // A piece may be part of a UTF-8 character: show such bytes escaped.
        let shown = match std::str::from_utf8(b) {
            Ok(s) => format!("{s:?}"),
            Err(_) => format!("b\"{}\"", b.escape_ascii()),
        };
        writeln!(out, "{id:>7}  {shown}")?;
    }
    Ok(())
}
