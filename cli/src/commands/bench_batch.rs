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
    /// Prompt tokens a request reads per step (`infer serve` reads 16).
    #[arg(long, default_value_t = 256)]
    pub prefill_chunk: usize,
    /// Most prompt tokens per step over all requests, as `infer serve`
    /// sets it to its chunk (default: the prompt length, so that every
    /// prompt is read in a burst at the start).
    #[arg(long)]
    pub prefill_budget: Option<usize>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also print, per client count, the time per forward step by kind of
    /// operation and the thread hand-offs per step (prompt steps included).
    #[arg(long)]
    pub profile: bool,
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
    if a.prefill_chunk == 0 || a.prefill_budget == Some(0) {
        bail!("--prefill-chunk and --prefill-budget must be at least 1");
    }
    let budget = a
        .prefill_budget
        .unwrap_or(a.prompt_tokens)
        .max(a.prefill_chunk);
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
    model = measure(
        model,
        detok.clone(),
        &prompts(1),
        2,
        a.prefill_chunk,
        Some(budget),
    )?
    .1;
    let mut rows = Vec::new();
    let mut profiles = Vec::new();
    // The pool's empty hand-off just before each count, as `bench-serve`
    // reports it: on a guest whose two cores are sometimes near and
    // sometimes far apart, it says which the count began with.
    let mut hand_offs_us = Vec::new();
    for &n in &a.clients {
        hand_offs_us.push(engine::threads::hand_off_seconds(5_000).map(|s| s * 1e6));
        engine::profile::reset();
        engine::profile::enable(a.profile);
        let (h0, t0) = (engine::threads::hand_offs(), std::time::Instant::now());
        let measured = measure(
            model,
            detok.clone(),
            &prompts(n),
            a.new_tokens,
            a.prefill_chunk,
            Some(budget),
        );
        let (h1, secs) = (engine::threads::hand_offs(), t0.elapsed().as_secs_f64());
        engine::profile::enable(false);
        let (row, m) = measured?;
        if a.profile {
            profiles.push(Profile {
                clients: n,
                steps: row.steps.max(1) as f64,
                secs,
                ops: engine::profile::snapshot(),
                hand_offs: h1 - h0,
                parallel: engine::profile::parallel_seconds(),
                products: engine::profile::products(),
            });
        }
        model = m;
        eprintln!("[{n} clients: {:.1} tok/s]", row.tok_per_s);
        rows.push(row);
    }
    let base = rows.first().map_or(1.0, |r| r.tok_per_s);
    let order = args.sum_order.unwrap_or_default().to_string();
    if a.json {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .zip(&hand_offs_us)
            .map(|(r, hand)| {
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
                    "hand_off_us": hand,
                })
            })
            .collect();
        let mut doc = serde_json::json!({
            "threads": engine::threads::num_threads(),
            "prompt_tokens": a.prompt_tokens,
            "new_tokens": a.new_tokens,
            "sum_order": order,
            "prefill_chunk": a.prefill_chunk,
            "prefill_budget": budget,
            "rows": v,
        });
        if a.profile {
            doc["profiles"] = profiles.iter().map(Profile::to_json).collect();
        }
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "{} threads; prompts of {} tokens, {} new tokens each, read {} a step in chunks of {}; {order} sums",
        engine::threads::num_threads(),
        a.prompt_tokens,
        a.new_tokens,
        budget,
        a.prefill_chunk
    )?;
    write!(out, "{}", table(&rows))?;
    if hand_offs_us.iter().any(Option::is_some) {
        let us: Vec<String> = hand_offs_us
            .iter()
            .map(|h| h.map_or("-".into(), |h| format!("{h:.2}")))
            .collect();
        writeln!(
            out,
            "empty hand-off before each count, µs: {}",
            us.join(" ")
        )?;
    }
    for p in &profiles {
        write_profile(p, out)?;
    }
    Ok(())
}

/// One client count's operation times ([`engine::profile`]).
struct Profile {
    clients: usize,
    steps: f64,
    secs: f64,
    ops: Vec<(engine::profile::Op, f64, u64)>,
    hand_offs: u64,
    /// Seconds in parallel regions ([`engine::profile::parallel_seconds`]).
    parallel: f64,
    /// Seconds and calls per weight ([`engine::profile::products`]).
    products: Vec<(engine::profile::Product, f64, u64)>,
}

impl Profile {
    /// Milliseconds per step by kind of operation, and the hand-offs per
    /// step.
    fn to_json(&self) -> serde_json::Value {
        let ops: serde_json::Map<String, serde_json::Value> = self
            .ops
            .iter()
            .map(|(op, s, _)| (op.name().to_string(), (s * 1e3 / self.steps).into()))
            .collect();
        serde_json::json!({
            "clients": self.clients,
            "steps": self.steps,
            "ms_per_step": self.secs * 1e3 / self.steps,
            "hand_offs_per_step": self.hand_offs as f64 / self.steps,
            "parallel_ms_per_step": self.parallel * 1e3 / self.steps,
            "products": self.products.iter().map(|(w, s, c)| serde_json::json!({
                "weight": super::bench::weight_name(w),
                "ms_per_step": s * 1e3 / self.steps,
                "calls": c,
            })).collect::<Vec<_>>(),
            "ms_per_step_by_op": ops,
        })
    }
}

/// `p` as a table: milliseconds per forward step and share of the wall
/// time per kind of operation, the rest (KV cache writes, choosing tokens,
/// the scheduler) as "other".
fn write_profile(p: &Profile, out: &mut dyn Write) -> Result<()> {
    writeln!(
        out,
        "\nprofile, {} clients: {} steps, {:.2} ms per step, {:.1} hand-offs per step",
        p.clients,
        p.steps,
        p.secs * 1e3 / p.steps,
        p.hand_offs as f64 / p.steps
    )?;
    writeln!(out, "{:<26} {:>9} {:>7}", "op", "ms/step", "share")?;
    let mut timed = 0.0;
    for (op, s, _) in &p.ops {
        timed += s;
        writeln!(
            out,
            "{:<26} {:>9.3} {:>6.1}%",
            op.name(),
            s * 1e3 / p.steps,
            100.0 * s / p.secs
        )?;
    }
    let rest = (p.secs - timed).max(0.0);
    writeln!(
        out,
        "{:<26} {:>9.3} {:>6.1}%",
        "other (cache, sampling…)",
        rest * 1e3 / p.steps,
        100.0 * rest / p.secs
    )?;
    writeln!(
        out,
        "{}",
        super::bench::serial_split(p.parallel, p.secs, p.steps, "step", true)
    )?;
    writeln!(
        out,
        "{:<26} {:>9} {:>7}",
        "matrix products by weight", "ms/step", "share"
    )?;
    for (w, s, _) in &p.products {
        writeln!(
            out,
            "{:<26} {:>9.3} {:>6.1}%",
            super::bench::weight_name(w),
            s * 1e3 / p.steps,
            100.0 * s / p.secs
        )?;
    }
    Ok(())
}
