//! `infer chat`: an interactive conversation on stdin, driven by the
//! library's [`ChatSession`] (which feeds only what each turn adds and
//! keeps the KV cache between turns).

use std::io::{BufRead, Write};

use anyhow::{Context, Result, bail};
use clap::Args;
use model::chat_session::ChatSession;
use model::chat_template::{CHAT_TEMPLATE_KEY, ChatTemplate};
use model::gguf::GgufFile;

use crate::decoding_args::{DecodingArgs, StrategyArg};
use crate::generation::{Show, run_streaming, write_logprobs};
use crate::loader::{Arch, ModelArgs, load};

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
    // GPT-2 has no chat template of its own: ChatML, unless its GGUF names one.
    let gguf = match loaded.path.is_dir() {
        true => None,
        false => Some(GgufFile::open(&loaded.path)?),
    };
    let template = match gguf {
        Some(g) if loaded.arch == Arch::Llama || g.metadata(CHAT_TEMPLATE_KEY).is_some() => {
            ChatTemplate::from_gguf(&g).context("reading the chat template")?
        }
        _ => ChatTemplate::chatml(None),
    };
    let params = a
        .decoding
        .to_params(a.max_new_tokens, Vec::new(), StrategyArg::Sample)?;
    let show = Show {
        text: true,
        explain: a.decoding.explain,
    };
    let mut session = ChatSession::new(template, tokenizer, a.system.clone(), params, 0)?;
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
                session.reset(loaded.lm.as_mut());
                eprintln!("[conversation reset]");
                continue;
            }
            _ => {}
        }
        let result = session.reply(loaded.lm.as_mut(), line, |steps| {
            run_streaming(steps, show, out)
        });
        let (o, stats) = match result {
            Ok(r) => r,
            Err(e) => {
                eprintln!("\n[{e}; the conversation is reset]");
                continue;
            }
        };
        writeln!(out)?;
        let g = &o.generation;
        if a.decoding.logprobs > 0 {
            write_logprobs(out, &g.tokens, session.tokenizer(), a.decoding.logprobs)?;
        }
        eprintln!(
            "[{} new prompt tokens ({} cached), {} reply tokens, {:.1} tok/s]",
            stats.new_prompt_tokens,
            stats.cached_tokens,
            g.tokens.len(),
            o.decode_tok_per_s()
        );
    }
    Ok(())
}
