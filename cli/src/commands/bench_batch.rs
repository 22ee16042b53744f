//! `infer bench-batch`: what continuous batching buys, measured on the
//! library's scheduler without HTTP. For each client count N, N requests
//! with distinct prompts start together and decode a fixed number of
//! tokens; the table shows aggregate tokens per second, time to first
//! token and the gaps between a request's tokens (p50 and p99).

use std::io::Write;

use anyhow::{Result, bail};
use clap::Args;
use decode::LanguageModel;
use decode::sweep::{measure, table};

use super::bench::prompt;
use crate::generation::id_detokenizer;
use crate::loader::{ModelArgs, load};

/// Arguments of `infer bench-batch`.
#[derive(Debug, Args)]
pub struct BenchBatchArgs {
    /// Client counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16")]
    pub clients: Vec<usize>,
    /// Prompt length of every request.
    #[arg(long, default_value_t = 64)]
    pub prompt_tokens: usize,
    /// Tokens every request generates.
    #[arg(long, default_value_t = 64)]
    pub new_tokens: usize,
    /// Prompt tokens a request reads per step.
    #[arg(long, default_value_t = 256)]
    pub prefill_chunk: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Model, threads, context.
    #[command(flatten)]
    pub model: ModelArgs,
}

/// Run `infer bench-batch`.
///
/// # Errors
/// A model that does not load, or a request the scheduler refuses.
pub fn run(a: &BenchBatchArgs, out: &mut dyn Write) -> Result<()> {
    let most = a.clients.iter().copied().max().unwrap_or(1);
    if a.clients.contains(&0) || a.new_tokens == 0 || a.prompt_tokens == 0 {
        bail!("--clients, --prompt-tokens and --new-tokens must be at least 1");
    }
    let mut args = a.model.clone().sum_order_or(engine::quant::SumOrder::Block);
    args.ctx = args.ctx.min(a.prompt_tokens + a.new_tokens + 1);
    let loaded = load(&args, most)?;
    let mut model = loaded.lm;
    let vocab = model.vocab_size();
    let detok = id_detokenizer(&model);
    let prompts = |n: usize| -> Vec<Vec<u32>> {
        (0..n)
            .map(|i| prompt(a.prompt_tokens, vocab, 1 + i as u64))
            .collect()
    };
    // Warm the pool and the caches once.
    model = measure(model, detok.clone(), &prompts(1), 2, a.prefill_chunk)?.1;
    let mut rows = Vec::new();
    for &n in &a.clients {
        let (row, m) = measure(
            model,
            detok.clone(),
            &prompts(n),
            a.new_tokens,
            a.prefill_chunk,
        )?;
        model = m;
        eprintln!("[{n} clients: {:.1} tok/s]", row.tok_per_s);
        rows.push(row);
    }
    let base = rows.first().map_or(1.0, |r| r.tok_per_s);
    let order = args.sum_order.unwrap_or_default().to_string();
    if a.json {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "clients": r.clients,
                    "tok_per_s": r.tok_per_s,
                    "speedup": r.tok_per_s / base,
                    "decode_tok_per_s": r.decode_tok_per_s,
                    "decode_speedup": r.decode_tok_per_s / rows[0].decode_tok_per_s.max(1e-9),
                    "ttft_ms_p50": r.ttft_ms,
                    "itl_ms_p50": r.itl_p50_ms,
                    "itl_ms_p99": r.itl_p99_ms,
                    "itl_p99_ratio": r.itl_p99_ms / rows[0].itl_p99_ms.max(1e-9),
                    "steps": r.steps,
                })
            })
            .collect();
        let doc = serde_json::json!({
            "threads": engine::threads::num_threads(),
            "prompt_tokens": a.prompt_tokens,
            "new_tokens": a.new_tokens,
            "sum_order": order,
            "rows": v,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "{} threads; prompts of {} tokens, {} new tokens each; {order} sums",
        engine::threads::num_threads(),
        a.prompt_tokens,
        a.new_tokens
    )?;
    write!(out, "{}", table(&rows))?;
    Ok(())
}
