//! `infer bench`: prefill and decode speed, with and without the KV cache.

use std::io::{IsTerminal, Write};
use std::time::Instant;

use anyhow::{Result, anyhow};
use clap::Args;
use decode::LanguageModel;
use model::no_cache::Recompute;

use crate::loader::{ModelArgs, load};

/// Arguments of `infer bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Prompt length for the prefill measurement.
    #[arg(long, default_value_t = 128)]
    pub prompt_tokens: usize,
    /// Tokens to decode with the KV cache.
    #[arg(long, default_value_t = 128)]
    pub new_tokens: usize,
    /// Tokens to decode without the cache (each step recomputes the prefix).
    #[arg(long, default_value_t = 16)]
    pub no_cache_tokens: usize,
    /// Context lengths at which to compare decoding with and without the cache.
    #[arg(long, value_delimiter = ',', default_value = "128,512")]
    pub positions: Vec<usize>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Model, threads, context.
    #[command(flatten)]
    pub model: ModelArgs,
}

/// A deterministic pseudo-random prompt (token content does not change the cost).
fn prompt(n: usize, vocab: usize, seed: u64) -> Vec<u32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 33) % vocab as u64) as u32
        })
        .collect()
}

fn progress(label: &str, done: usize, total: usize) {
    if !std::io::stderr().is_terminal() {
        if done == total {
            eprintln!("[bench] {label}: {total} steps");
        }
        return;
    }
    eprint!("\r[bench] {label}: {done}/{total}          ");
    let _ = std::io::stderr().flush();
}

/// Prefill `p`, then time `steps` greedy decode steps. Returns (prefill secs, decode secs).
fn run_once(
    lm: &mut dyn LanguageModel,
    p: &[u32],
    steps: usize,
    label: &str,
) -> Result<(f64, f64)> {
    lm.clear(0);
    let t0 = Instant::now();
    let mut logits = lm.forward(&[(0, p)]).map_err(|e| anyhow!(e))?.remove(0);
    let prefill = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    for i in 0..steps {
        progress(label, i, steps);
        let tok = decode::greedy_choice(&logits);
        logits = lm
            .forward(&[(0, &[tok])])
            .map_err(|e| anyhow!(e))?
            .remove(0);
    }
    progress(label, steps, steps);
    Ok((prefill, t1.elapsed().as_secs_f64()))
}

/// Run `infer bench`.
pub fn run(a: &BenchArgs, out: &mut dyn Write) -> Result<()> {
    let need = a
        .positions
        .iter()
        .map(|p| p + a.new_tokens.min(16) + 1)
        .chain([a.prompt_tokens + a.new_tokens + 1])
        .max()
        .unwrap_or(0);
    let mut args = a.model.clone();
    args.ctx = args.ctx.max(need);
    let loaded = load(&args, 1)?;
    let threads = engine::threads::num_threads();
    let vocab = loaded.lm.vocab_size();
    let mut cached = loaded.lm;
    let p = prompt(a.prompt_tokens, vocab, 1);

    run_once(cached.as_mut(), &p[..p.len().min(8)], 2, "warm-up")?;
    let (prefill, decode) = run_once(cached.as_mut(), &p, a.new_tokens, "decode with KV cache")?;
    let mut recompute = Recompute::new(cached);
    let (_, decode_nc) = run_once(
        &mut recompute,
        &p,
        a.no_cache_tokens,
        "decode without cache",
    )?;
    let mut cached = recompute.into_inner();

    let mut speedups = Vec::new();
    for &pos in &a.positions {
        let pp = prompt(pos, vocab, 2);
        let k = a.new_tokens.clamp(1, 16);
        let (_, with) = run_once(cached.as_mut(), &pp, k, &format!("{pos} positions, cache"))?;
        let mut rc = Recompute::new(cached);
        let k_nc = a.no_cache_tokens.clamp(1, 4);
        let (_, without) = run_once(&mut rc, &pp, k_nc, &format!("{pos} positions, no cache"))?;
        cached = rc.into_inner();
        let (with_tps, without_tps) = (k as f64 / with, k_nc as f64 / without);
        speedups.push((pos, with_tps, without_tps));
    }
    if std::io::stderr().is_terminal() {
        eprint!("\r{:60}\r", "");
    }

    let prefill_tps = a.prompt_tokens as f64 / prefill;
    let decode_tps = a.new_tokens as f64 / decode;
    let decode_nc_tps = a.no_cache_tokens as f64 / decode_nc;
    if a.json {
        let v = serde_json::json!({
            "model": loaded.path.display().to_string(),
            "threads": threads,
            "prefill": { "tokens": a.prompt_tokens, "seconds": prefill, "tok_per_s": prefill_tps },
            "decode_kv_cache": { "tokens": a.new_tokens, "seconds": decode, "tok_per_s": decode_tps },
            "decode_no_cache": { "tokens": a.no_cache_tokens, "seconds": decode_nc, "tok_per_s": decode_nc_tps },
            "kv_cache_speedup": speedups.iter().map(|&(pos, w, wo)| serde_json::json!({
                "positions": pos, "cache_tok_per_s": w, "no_cache_tok_per_s": wo, "speedup": w / wo
            })).collect::<Vec<_>>(),
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(());
    }
    writeln!(out, "model: {}   threads: {threads}", loaded.path.display())?;
    writeln!(
        out,
        "{:<44} {:>7} {:>9} {:>9}",
        "phase", "tokens", "seconds", "tok/s"
    )?;
    let rows = [
        (
            format!("prefill ({}-token prompt)", a.prompt_tokens),
            a.prompt_tokens,
            prefill,
        ),
        (
            format!("decode with KV cache (after {} tokens)", a.prompt_tokens),
            a.new_tokens,
            decode,
        ),
        (
            format!("decode without cache (after {} tokens)", a.prompt_tokens),
            a.no_cache_tokens,
            decode_nc,
        ),
    ];
    for (name, n, s) in rows {
        writeln!(out, "{name:<44} {n:>7} {s:>9.3} {:>9.1}", n as f64 / s)?;
    }
    for (pos, w, wo) in speedups {
        writeln!(
            out,
            "KV-cache speedup at {pos:>5} positions: {w:>7.1} vs {wo:>7.2} tok/s = {:>6.1}×",
            w / wo
        )?;
    }
    Ok(())
}
