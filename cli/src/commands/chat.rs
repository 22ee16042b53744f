//! `infer chat`: an interactive conversation. The chat template is applied
//! to the whole conversation, but only the text it adds since the last turn
//! is fed to the model: the KV cache keeps everything before it.

use std::io::{BufRead, Write};

use anyhow::{Context, Result, bail};
use clap::Args;
use decode::{FinishReason, Generator, Strategy};
use model::chat_template::{ChatMessage, ChatTemplate};
use model::gguf::GgufFile;

use crate::decoding_args::{DecodingArgs, StrategyArg};
use crate::generation::{Show, run_streaming, write_logprobs};
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
    /// Decoding strategy and its settings (chat samples with T = 0.7,
    /// top-p = 0.9 unless told otherwise; beam search is not offered here).
    #[command(flatten)]
    pub decoding: DecodingArgs,
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
    if a.decoding.strategy_or(StrategyArg::Sample) == StrategyArg::Beam {
        bail!(
            "chat streams its replies: use --strategy greedy or sample (beam is in `infer generate`)"
        );
    }
    a.decoding
        .to_params(a.max_new_tokens, Vec::new(), StrategyArg::Sample)
        .context("invalid decoding options")?;
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
    let eos: Vec<u32> = tokenizer.eos_id().into_iter().collect();
    let params = a
        .decoding
        .to_params(a.max_new_tokens, eos, StrategyArg::Sample)?;
    let show = Show {
        text: true,
        explain: a.decoding.explain,
    };
    let mut messages: Vec<ChatMessage> = a
        .system
        .iter()
        .map(|s| ChatMessage::new("system", s.clone()))
        .collect();
    let base = messages.clone();
    // The conversation so far as text and as tokens; the KV cache holds all
    // of `context` but its last token, which the next turn feeds first.
    let mut cached = String::new();
    let mut context: Vec<u32> = Vec::new();
    let mut lines = input.lines();
    let mut turn: u64 = 0;
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
                context.clear();
                loaded.lm.clear(0);
                eprintln!("[conversation reset]");
                continue;
            }
            _ => {}
        }
        messages.push(ChatMessage::new("user", line));
        let full = template.render(&messages, true);
        match full.strip_prefix(cached.as_str()) {
            Some(suffix) => context.extend(tokenizer.encode(suffix)),
            None => {
                // The cache no longer matches the rendered text: start over.
                loaded.lm.clear(0);
                context = tokenizer.encode(&full);
            }
        }
        let reused = loaded.lm.seq_len(0);
        // Turn i samples with seed + i: replies do not replay the same random
        // draws, and the whole conversation stays reproducible for a --seed.
        let mut turn_params = params.clone();
        if let Strategy::Sample { seed } = &mut turn_params.strategy {
            *seed = seed.wrapping_add(turn);
        }
        turn += 1;
        let result = Generator::resume(loaded.lm.as_mut(), &tokenizer, 0, &context, &turn_params)
            .map_err(anyhow::Error::from)
            .and_then(|steps| run_streaming(steps, show, out));
        let o = match result {
            Ok(o) => o,
            Err(e) => {
                eprintln!("\n[{e}; the conversation is reset]");
                messages = base.clone();
                cached.clear();
                context.clear();
                loaded.lm.clear(0);
                continue;
            }
        };
        writeln!(out)?;
        let g = &o.generation;
        if a.decoding.logprobs > 0 {
            write_logprobs(out, &g.tokens, &tokenizer, a.decoding.logprobs)?;
        }
        eprintln!(
            "[{} new prompt tokens ({} cached), {} reply tokens, {:.1} tok/s]",
            context.len() - reused,
            reused,
            g.tokens.len(),
            o.decode_tok_per_s()
        );
        let ids: Vec<u32> = g.tokens.iter().map(|t| t.id).collect();
        context.extend(&ids);
        cached = format!("{full}{}", tokenizer.decode(&ids));
        // The reply as the template will render it: without EOS (the
        // template adds its own end marker) and without a stop string.
        let content = match &g.finish {
            Some(FinishReason::Eos(_)) | Some(FinishReason::StopString(_)) => g.text.clone(),
            _ => tokenizer.decode(&ids),
        };
        messages.push(ChatMessage::new("assistant", content));
    }
    Ok(())
}
