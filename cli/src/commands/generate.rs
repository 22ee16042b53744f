//! `infer generate PROMPT`: continue a prompt with any decoding strategy.
//! Greedy and sampling stream tokens to stdout as they arrive; beam search
//! prints its hypotheses at the end.

use std::io::Write;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use decode::{Detokenize, FinishReason, GenerateParams, Generator, Strategy, beam_search};

use crate::decoding_args::{DecodingArgs, StrategyArg};
use crate::generation::{
    EXPLAIN_ROWS, Show, id_detokenizer, run_streaming, tidy_explain, token_json, write_logprobs,
};
use crate::loader::{Loaded, ModelArgs, load, prompt_ids};

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
    /// Print one JSON object (ids, text, per-token log-probs, timing; every
    /// returned sequence for beam search) instead of streaming text.
    #[arg(long)]
    pub json: bool,
    /// Decoding strategy and its settings.
    #[command(flatten)]
    pub decoding: DecodingArgs,
    /// Model, threads, context.
    #[command(flatten)]
    pub model: ModelArgs,
}

/// Run `infer generate`.
pub fn run(a: &GenerateArgs, out: &mut dyn Write) -> Result<()> {
    // Check the flags before loading the model (EOS ids are not needed for that).
    a.decoding
        .to_params(a.max_new_tokens, Vec::new(), StrategyArg::Greedy)
        .context("invalid decoding options")?;
    let beam = a.decoding.strategy_or(StrategyArg::Greedy) == StrategyArg::Beam;
    let slots = if beam { a.decoding.num_beams.max(1) } else { 1 };
    let mut loaded = load(&a.model, slots)?;
    let prompt = prompt_ids(&loaded, &a.prompt, a.ids)?;
    if prompt.is_empty() {
        bail!("the prompt is empty: give at least one token to continue");
    }
    let eos: Vec<u32> = loaded
        .tokenizer
        .as_ref()
        .and_then(|t| t.eos_id())
        .into_iter()
        .collect();
    let params = a
        .decoding
        .to_params(a.max_new_tokens, eos, StrategyArg::Greedy)?;
    let tokenizer = loaded.tokenizer.take();
    let ids_table;
    let detok: &dyn Detokenize = match &tokenizer {
        Some(t) => t,
        None => {
            ids_table = id_detokenizer(loaded.lm.as_ref());
            &ids_table
        }
    };
    if beam {
        run_beam(a, &mut loaded, detok, &prompt, &params, out)
    } else {
        run_tokens(a, &mut loaded, detok, &prompt, &params, out)
    }
}

/// Greedy or sampling: stream the text, then the log-probs if asked.
fn run_tokens(
    a: &GenerateArgs,
    loaded: &mut Loaded,
    detok: &dyn Detokenize,
    prompt: &[u32],
    params: &GenerateParams,
    out: &mut dyn Write,
) -> Result<()> {
    let steps = Generator::new(loaded.lm.as_mut(), detok, 0, prompt, params)
        .context("starting generation")?;
    let show = Show {
        text: !a.json,
        explain: !a.json && a.decoding.explain,
    };
    let o = run_streaming(steps, show, out)?;
    let g = &o.generation;
    let ids: Vec<u32> = g.tokens.iter().map(|t| t.id).collect();
    if a.json {
        let mut v = serde_json::json!({
            "model": loaded.path.display().to_string(),
            "prompt": a.prompt,
            "prompt_ids": prompt,
            "strategy": strategy_name(&params.strategy),
            "ids": ids,
            "text": g.text,
            "finish": finish_name(g.finish.as_ref()),
            "stopped_by_eos": matches!(g.finish, Some(FinishReason::Eos(_))),
            "timing": {
                "load_s": loaded.load_secs,
                "prefill_s": o.prefill_secs,
                "prefill_tok_per_s": o.prefill_tok_per_s(prompt.len()),
                "decode_s": o.decode_secs,
                "decode_steps": o.decode_steps,
                "decode_tok_per_s": o.decode_tok_per_s(),
            }
        });
        if a.decoding.logprobs > 0 {
            v["tokens"] = g.tokens.iter().map(|t| token_json(t, detok)).collect();
        }
        if a.decoding.explain {
            v["explain"] = g
                .explain
                .iter()
                .map(|e| tidy_explain(e, EXPLAIN_ROWS).to_string())
                .collect();
        }
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(());
    }
    writeln!(out)?;
    if a.decoding.explain {
        writeln!(out, "text: {}", g.text)?;
    }
    if a.decoding.logprobs > 0 {
        write_logprobs(out, &g.tokens, detok, a.decoding.logprobs)?;
    }
    eprintln!(
        "[{} prompt tokens in {:.2} s ({:.1} tok/s); {} tokens in {:.2} s ({:.1} tok/s); {}]",
        prompt.len(),
        o.prefill_secs,
        o.prefill_tok_per_s(prompt.len()),
        o.decode_steps,
        o.decode_secs,
        o.decode_tok_per_s(),
        finish_name(g.finish.as_ref())
    );
    Ok(())
}

/// Beam search: print the returned hypotheses, best first, with their scores.
fn run_beam(
    a: &GenerateArgs,
    loaded: &mut Loaded,
    detok: &dyn Detokenize,
    prompt: &[u32],
    params: &GenerateParams,
    out: &mut dyn Write,
) -> Result<()> {
    let t0 = Instant::now();
    let hyps = beam_search(loaded.lm.as_mut(), detok, prompt, params).context("beam search")?;
    let secs = t0.elapsed().as_secs_f64();
    let texts: Vec<&String> = hyps.iter().map(|h| &h.text).collect();
    if a.json {
        let seqs: Vec<serde_json::Value> = hyps
            .iter()
            .zip(&texts)
            .map(|(h, text)| {
                serde_json::json!({
                    "ids": h.tokens,
                    "text": text,
                    "finish": finish_name(Some(&h.finish)),
                    "score": h.score,
                    "sum_logprobs": h.sum_logprobs,
                    "group": h.group,
                })
            })
            .collect();
        let v = serde_json::json!({
            "model": loaded.path.display().to_string(),
            "prompt": a.prompt,
            "prompt_ids": prompt,
            "strategy": "beam",
            "ids": hyps.first().map(|h| h.tokens.clone()).unwrap_or_default(),
            "text": texts.first().map_or("", |t| t.as_str()),
            "sequences": seqs,
            "timing": { "load_s": loaded.load_secs, "search_s": secs },
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(());
    }
    for (i, (h, text)) in hyps.iter().zip(&texts).enumerate() {
        writeln!(
            out,
            "[{}] score {:.4} (sum of log-probs {:.3} over {} tokens)",
            i + 1,
            h.score,
            h.sum_logprobs,
            h.tokens.len()
        )?;
        writeln!(out, "{text}")?;
    }
    eprintln!(
        "[{} prompt tokens; {} beams searched in {:.2} s]",
        prompt.len(),
        slots_of(params),
        secs
    );
    Ok(())
}

fn slots_of(params: &GenerateParams) -> usize {
    match &params.strategy {
        Strategy::Beam(b) => b.num_beams,
        _ => 1,
    }
}

fn strategy_name(s: &Strategy) -> &'static str {
    match s {
        Strategy::Greedy => "greedy",
        Strategy::Sample { .. } => "sample",
        Strategy::Beam(_) => "beam",
    }
}

/// Why a generation ended, in words.
pub fn finish_name(f: Option<&FinishReason>) -> String {
    match f {
        None => "nothing generated".into(),
        Some(FinishReason::MaxNewTokens) => "max new tokens".into(),
        Some(FinishReason::Eos(id)) => format!("end of sequence (token {id})"),
        Some(FinishReason::StopString(s)) => format!("stop string {s:?}"),
        Some(FinishReason::ContextFull) => "context full".into(),
        Some(FinishReason::Cancelled) => "cancelled".into(),
    }
}
