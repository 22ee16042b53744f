//! `infer bench-batch`: what continuous batching buys, measured on the
//! library's scheduler without HTTP. For each client count N, N requests
//! with distinct prompts start together and decode a fixed number of
//! tokens; the table shows aggregate tokens per second, time to first
//! token and the gaps between a request's tokens (p50 and p99).

use std::io::Write;
use std::time::Instant;

use anyhow::{Result, anyhow, bail};
use clap::Args;
use decode::{Event, GenerateParams, LanguageModel, Request, Scheduler, SchedulerConfig, Strategy};

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

/// One client count's figures.
#[derive(Debug, Clone)]
pub struct SweepRow {
    /// Requests running together.
    pub clients: usize,
    /// Generated tokens of all requests per second of wall time.
    pub tok_per_s: f64,
    /// Median time from the start to a request's first token, ms.
    pub ttft_ms: f64,
    /// Median gap between consecutive tokens of one request, ms.
    pub itl_p50_ms: f64,
    /// 99th-percentile gap, ms.
    pub itl_p99_ms: f64,
    /// Forward passes.
    pub steps: u64,
}

/// The `q`-quantile of `v` (nearest rank; 0 for an empty list).
pub fn quantile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    v[i]
}

/// Run `clients` requests together through a fresh scheduler over `model`
/// and measure them; the model comes back for the next round.
pub fn measure<M: LanguageModel>(
    model: M,
    clients: usize,
    a: &BenchBatchArgs,
) -> Result<(SweepRow, M)> {
    let vocab = model.vocab_size();
    let detok = id_detokenizer(&model);
    let config = SchedulerConfig {
        max_queue: clients.max(1),
        prefill_chunk: a.prefill_chunk,
        prefill_budget: a.prefill_chunk.max(a.prompt_tokens),
    };
    let mut sched = Scheduler::new(model, detok, config)?;
    let params = GenerateParams {
        strategy: Strategy::Greedy,
        max_new_tokens: a.new_tokens,
        ..Default::default()
    };
    for i in 0..clients {
        sched
            .submit(Request {
                prompt: prompt(a.prompt_tokens, vocab, 1 + i as u64),
                params: params.clone(),
                stream: 0,
            })
            .map_err(|e| anyhow!("{e}"))?;
    }
    let t0 = Instant::now();
    let mut last: Vec<Option<f64>> = vec![None; clients];
    let (mut ttft, mut gaps) = (Vec::new(), Vec::new());
    let mut generated = 0usize;
    while !sched.is_idle() {
        let events = sched.step();
        let now = t0.elapsed().as_secs_f64();
        for e in events {
            match e {
                Event::Token { id, .. } => {
                    generated += 1;
                    let slot = &mut last[id as usize];
                    match slot {
                        None => ttft.push(now * 1e3),
                        Some(prev) => gaps.push((now - *prev) * 1e3),
                    }
                    *slot = Some(now);
                }
                Event::Ended { id, result } => bail!("request {id} ended early: {result:?}"),
            }
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let row = SweepRow {
        clients,
        tok_per_s: generated as f64 / secs,
        ttft_ms: quantile(&mut ttft, 0.5),
        itl_p50_ms: quantile(&mut gaps, 0.5),
        itl_p99_ms: quantile(&mut gaps, 0.99),
        steps: sched.stats().steps,
    };
    Ok((row, sched.into_model()))
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
    let mut args = a.model.clone();
    args.ctx = args.ctx.min(a.prompt_tokens + a.new_tokens + 1);
    let loaded = load(&args, most)?;
    let mut model = loaded.lm;
    // Warm the pool and the caches once.
    let warm = BenchBatchArgs {
        clients: vec![1],
        prompt_tokens: a.prompt_tokens,
        new_tokens: 2,
        prefill_chunk: a.prefill_chunk,
        json: a.json,
        model: a.model.clone(),
    };
    model = measure(model, 1, &warm)?.1;
    let mut rows = Vec::new();
    for &n in &a.clients {
        let (row, m) = measure(model, n, a)?;
        model = m;
        eprintln!("[{n} clients: {:.1} tok/s]", row.tok_per_s);
        rows.push(row);
    }
    let base = rows.first().map_or(1.0, |r| r.tok_per_s);
    let base_itl = rows.first().map_or(1.0, |r| r.itl_p99_ms);
    if a.json {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "clients": r.clients,
                    "tok_per_s": r.tok_per_s,
                    "speedup": r.tok_per_s / base,
                    "ttft_ms_p50": r.ttft_ms,
                    "itl_ms_p50": r.itl_p50_ms,
                    "itl_ms_p99": r.itl_p99_ms,
                    "steps": r.steps,
                })
            })
            .collect();
        let doc = serde_json::json!({
            "threads": engine::threads::num_threads(),
            "prompt_tokens": a.prompt_tokens,
            "new_tokens": a.new_tokens,
            "rows": v,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "{} threads; prompts of {} tokens, {} new tokens each",
        engine::threads::num_threads(),
        a.prompt_tokens,
        a.new_tokens
    )?;
    writeln!(
        out,
        "{:>7} {:>9} {:>8} {:>9} {:>9} {:>9} {:>8}",
        "clients", "tok/s", "x one", "TTFT ms", "ITL p50", "ITL p99", "x p99"
    )?;
    for r in &rows {
        writeln!(
            out,
            "{:>7} {:>9.1} {:>8.2} {:>9.1} {:>9.1} {:>9.1} {:>8.2}",
            r.clients,
            r.tok_per_s,
            r.tok_per_s / base,
            r.ttft_ms,
            r.itl_p50_ms,
            r.itl_p99_ms,
            r.itl_p99_ms / base_itl
        )?;
    }
    Ok(())
}
