//! `infer chat`: an interactive conversation. The chat template is applied
//! to the whole conversation, but only the text it adds since the last turn
//! is fed to the model: the KV cache keeps everything before it.

use std::io::{BufRead, Write};

use anyhow::{Context, Result, bail};
use clap::Args;
use model::chat_template::{ChatMessage, ChatTemplate};
use model::gguf::GgufFile;
use model::tokenizer::StreamDecoder;

use crate::generation::generate;
use crate::loader::{ModelArgs, load};

/// Arguments of `infer chat`.
#[derive(Debug, Args)]
pub struct ChatArgs {
    /// Most tokens per reply.
    #[arg(long, default_value_t = 256)]
    pub max_new_tokens: usize,
    /// System prompt (default: the one in the model's chat template).
    #[arg(long)]
    pub system: Option<String>,
    /// Model, threads, context.
    #[command(flatten)]
    pub model: ModelArgs,
}

/// Run `infer chat` on stdin.
pub fn run(a: &ChatArgs, out: &mut dyn Write) -> Result<()> {
    run_with_input(a, &mut std::io::stdin().lock(), out)
}

/// Run `infer chat`, reading user turns from `input` (one line each;
/// `/reset` starts over, `/exit` or end of input quits).
pub fn run_with_input(a: &ChatArgs, input: &mut dyn BufRead, out: &mut dyn Write) -> Result<()> {
    let mut loaded = load(&a.model, 1)?;
    let Some(tokenizer) = loaded.tokenizer.clone() else {
        bail!("{} has no tokenizer; chat needs one", loaded.path.display());
    };
    let template = if loaded.path.is_dir() {
        ChatTemplate::chatml(None)
    } else {
        ChatTemplate::from_gguf(&GgufFile::open(&loaded.path)?)
            .context("reading the chat template")?
    };
    let stop: Vec<u32> = tokenizer.eos_id().into_iter().collect();
    let mut messages: Vec<ChatMessage> = a
        .system
        .iter()
        .map(|s| ChatMessage::new("system", s.clone()))
        .collect();
    let base = messages.clone();
    // The text whose tokens are in the KV cache.
    let mut cached = String::new();
    let mut lines = input.lines();
    loop {
        eprint!("> ");
        std::io::stderr().flush()?;
        let Some(line) = lines.next().transpose()? else {
            break;
        };
        let line = line.trim();
        match line {
            "" => continue,
            "/exit" | "/quit" => break,
            "/reset" => {
                messages = base.clone();
                cached.clear();
                loaded.lm.clear(0);
                eprintln!("[conversation reset]");
                continue;
            }
            _ => {}
        }
        messages.push(ChatMessage::new("user", line));
        let full = template.render(&messages, true);
        let suffix = match full.strip_prefix(cached.as_str()) {
            Some(s) => s.to_string(),
            None => {
                // The cache no longer matches the rendered text: start over.
                loaded.lm.clear(0);
                full.clone()
            }
        };
        let ids = tokenizer.encode(&suffix);
        let reused = loaded.lm.seq_len(0);
        let mut stream = StreamDecoder::new(&tokenizer);
        let mut on_token = |tok: u32| {
            if !stop.contains(&tok) {
                let _ = write!(out, "{}", stream.push(tok));
                let _ = out.flush();
            }
        };
        let o = match generate(
            loaded.lm.as_mut(),
            0,
            &ids,
            a.max_new_tokens,
            &stop,
            &mut on_token,
        ) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("\n[{e}; the conversation is reset]");
                messages = base.clone();
                cached.clear();
                loaded.lm.clear(0);
                continue;
            }
        };
        write!(out, "{}", stream.finish())?;
        writeln!(out)?;
        let reply = tokenizer.decode(&o.tokens);
        eprintln!(
            "[{} new prompt tokens ({} cached), {} reply tokens, {:.1} tok/s]",
            ids.len(),
            reused,
            o.tokens.len(),
            o.decode_steps as f64 / o.decode_secs.max(1e-9)
        );
        cached = format!("{full}{reply}");
        let content = o
            .tokens
            .last()
            .filter(|t| stop.contains(t))
            .map_or(reply.clone(), |_| {
                tokenizer.decode(&o.tokens[..o.tokens.len() - 1])
            });
        messages.push(ChatMessage::new("assistant", content));
    }
    Ok(())
}
