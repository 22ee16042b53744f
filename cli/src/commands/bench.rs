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
    /// Repeat the prefill and decode measurement this many times and report
    /// the mean and standard deviation (as llama-bench's `-r`).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub reps: u32,
    /// Only prefill and decode with the cache (skip the no-cache comparisons).
    #[arg(long)]
    pub quick: bool,
    /// Time each kind of operation during decode and count the thread
    /// hand-offs (parallel regions) per decoded token.
    #[arg(long)]
    pub profile: bool,
    /// Measure a streaming read in the same run and report decode speed as
    /// a fraction of the bandwidth ceiling (weight bytes per token ÷ bytes/s).
    #[arg(long)]
    pub roofline: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Model, threads, context.
    #[command(flatten)]
    pub model: ModelArgs,
}

/// A deterministic pseudo-random prompt (token content does not change the cost).
pub(crate) fn prompt(n: usize, vocab: usize, seed: u64) -> Vec<u32> {
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
    let (prefill, decode, _) = run_profiled(lm, p, steps, label, false)?;
    Ok((prefill, decode))
}

/// As [`run_once`]; with `profile`, the engine's per-op timers run during
/// the decode steps and only then, so that the totals hold those steps'
/// time and nothing of the prefill's. Also returns the decode steps'
/// hand-offs to the thread pool.
fn run_profiled(
    lm: &mut dyn LanguageModel,
    p: &[u32],
    steps: usize,
    label: &str,
    profile: bool,
) -> Result<(f64, f64, u64)> {
    lm.clear(0);
    let t0 = Instant::now();
    let logits = lm.forward(&[(0, p)]).map_err(|e| anyhow!(e))?.remove(0);
    let mut tok = decode::greedy_choice(&logits);
    let prefill = t0.elapsed().as_secs_f64();
    if profile {
        engine::profile::reset();
        engine::profile::enable(true);
    }
    let h0 = engine::threads::hand_offs();
    let t1 = Instant::now();
    for i in 0..steps {
        progress(label, i, steps);
        tok = greedy_step(lm, tok)?;
    }
    let decode = t1.elapsed().as_secs_f64();
    engine::profile::enable(false);
    let hand_offs = engine::threads::hand_offs() - h0;
    progress(label, steps, steps);
    Ok((prefill, decode, hand_offs))
}

/// Feed `tok` to slot 0 and choose the next token greedily: where the
/// model keeps its logits when it can (a GPU sends back the id), from the
/// logits on the host otherwise.
fn greedy_step(lm: &mut dyn LanguageModel, tok: u32) -> Result<u32> {
    let batch = [(0, std::slice::from_ref(&tok))];
    if let Some(chosen) = lm.forward_greedy(&batch).map_err(|e| anyhow!(e))? {
        return chosen
            .first()
            .map(|c| c.0)
            .ok_or_else(|| anyhow!("the model returned no greedy choice"));
    }
    let logits = lm.forward(&batch).map_err(|e| anyhow!(e))?.remove(0);
    Ok(decode::greedy_choice(&logits))
}

/// Mean and (sample) standard deviation.
fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (m, var.sqrt())
}

/// Bytes per second of a plain streaming read of a buffer far larger than
/// the caches, best of three, on the engine's threads.
fn streaming_read_bytes_per_s() -> f64 {
    let x = vec![1.0f32; 64 << 20];
    let mut best = f64::MAX;
    let mut sink = 0.0;
    for _ in 0..4 {
        let t = Instant::now();
        sink += engine::kernels::stream_sum(&x);
        best = best.min(t.elapsed().as_secs_f64());
    }
    std::hint::black_box(sink);
    (x.len() * 4) as f64 / best
}

/// Run `infer bench`.
pub fn run(a: &BenchArgs, out: &mut dyn Write) -> Result<()> {
    let positions: &[usize] = if a.quick { &[] } else { &a.positions };
    let need = positions
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

    // The whole prompt once first: a GPU loads a kernel the first time it
    // runs it (cuBLAS's for a prompt's products among them), and the
    // timed prefills should not pay for that.
    run_once(cached.as_mut(), &p, 2, "warm-up")?;
    let (mut prefills, mut decodes) = (Vec::new(), Vec::new());
    for _ in 0..a.reps {
        let (prefill, decode) =
            run_once(cached.as_mut(), &p, a.new_tokens, "decode with KV cache")?;
        prefills.push(a.prompt_tokens as f64 / prefill);
        decodes.push(a.new_tokens as f64 / decode);
    }
    let (prefill_tps, prefill_sd) = mean_sd(&prefills);
    let (decode_tps, decode_sd) = mean_sd(&decodes);

    let mut profile = None;
    if a.profile {
        let (_, secs, hand_offs) =
            run_profiled(cached.as_mut(), &p, a.new_tokens, "profiled decode", true)?;
        let hand_offs = hand_offs as f64 / a.new_tokens as f64;
        let parallel = engine::profile::parallel_seconds();
        let products: Vec<(String, f64, u64)> = engine::profile::products()
            .into_iter()
            .map(|(w, s, c)| (weight_name(&w), s, c))
            .collect();
        let rows: Vec<(&'static str, f64, u64)> = engine::profile::snapshot()
            .into_iter()
            .map(|(op, s, c)| (op.name(), s, c))
            .collect();
        profile = Some((rows, secs, hand_offs, parallel, products));
    }

    let roofline = if a.roofline {
        let bw = streaming_read_bytes_per_s();
        let bytes = loaded.bytes_per_token as f64;
        Some((bw, bytes, bw / bytes))
    } else {
        None
    };

    let mut decode_nc_tps = None;
    let mut speedups = Vec::new();
    if !a.quick {
        let mut recompute = Recompute::new(cached);
        let (_, decode_nc) = run_once(
            &mut recompute,
            &p,
            a.no_cache_tokens,
            "decode without cache",
        )?;
        decode_nc_tps = Some(a.no_cache_tokens as f64 / decode_nc);
        cached = recompute.into_inner();
        for &pos in positions {
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
    }
    if std::io::stderr().is_terminal() {
        eprint!("\r{:60}\r", "");
    }

    let device = loaded.device.name();
    if a.json {
        let mut v = serde_json::json!({
            "model": loaded.path.display().to_string(),
            "device": device,
            "threads": threads,
            "reps": a.reps,
            "prefill": { "tokens": a.prompt_tokens, "tok_per_s": prefill_tps, "sd": prefill_sd, "runs": prefills },
            "decode_kv_cache": { "tokens": a.new_tokens, "tok_per_s": decode_tps, "sd": decode_sd, "runs": decodes },
        });
        if let Some(nc) = decode_nc_tps {
            v["decode_no_cache"] =
                serde_json::json!({ "tokens": a.no_cache_tokens, "tok_per_s": nc });
            v["kv_cache_speedup"] = speedups.iter().map(|&(pos, w, wo)| serde_json::json!({
                "positions": pos, "cache_tok_per_s": w, "no_cache_tok_per_s": wo, "speedup": w / wo
            })).collect::<Vec<_>>().into();
        }
        if let Some((rows, secs, hand_offs, parallel, products)) = &profile {
            v["profile"] = serde_json::json!({
                "decode_seconds": secs,
                "hand_offs_per_token": hand_offs,
                "parallel_seconds": parallel,
                "products": products.iter().map(|(w, s, c)| serde_json::json!({
                    "weight": w, "seconds": s, "calls": c
                })).collect::<Vec<_>>(),
                "ops": rows.iter().map(|(name, s, c)| serde_json::json!({
                    "op": name, "seconds": s, "calls": c
                })).collect::<Vec<_>>(),
            });
        }
        if let Some((bw, bytes, ceiling)) = roofline {
            v["roofline"] = serde_json::json!({
                "stream_bytes_per_s": bw, "weight_bytes_per_token": bytes,
                "ceiling_tok_per_s": ceiling, "fraction": decode_tps / ceiling
            });
        }
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "model: {}   device: {device}   threads: {threads}   reps: {}",
        loaded.path.display(),
        a.reps
    )?;
    writeln!(
        out,
        "{:<44} {:>7} {:>9} {:>9}",
        "phase", "tokens", "tok/s", "± sd"
    )?;
    writeln!(
        out,
        "{:<44} {:>7} {prefill_tps:>9.1} {prefill_sd:>9.1}",
        format!("prefill ({}-token prompt)", a.prompt_tokens),
        a.prompt_tokens
    )?;
    writeln!(
        out,
        "{:<44} {:>7} {decode_tps:>9.1} {decode_sd:>9.1}",
        format!("decode with KV cache (after {} tokens)", a.prompt_tokens),
        a.new_tokens
    )?;
    if let Some(nc) = decode_nc_tps {
        writeln!(
            out,
            "{:<44} {:>7} {nc:>9.2}",
            format!("decode without cache (after {} tokens)", a.prompt_tokens),
            a.no_cache_tokens
        )?;
    }
    for (pos, w, wo) in speedups {
        writeln!(
            out,
            "KV-cache speedup at {pos:>5} positions: {w:>7.1} vs {wo:>7.2} tok/s = {:>6.1}×",
            w / wo
        )?;
    }
    if let Some((rows, secs, hand_offs, parallel, products)) = profile {
        let n = a.new_tokens as f64;
        writeln!(
            out,
            "\nprofile of {} decode steps ({:.2} ms per token):",
            a.new_tokens,
            secs * 1e3 / n
        )?;
        writeln!(
            out,
            "{:<26} {:>10} {:>8} {:>12}",
            "op", "µs/token", "share", "calls/token"
        )?;
        let mut timed = 0.0;
        for (name, s, c) in &rows {
            timed += s;
            writeln!(
                out,
                "{name:<26} {:>10.1} {:>7.1}% {:>12.1}",
                s * 1e6 / n,
                100.0 * s / secs,
                *c as f64 / n
            )?;
        }
        let rest = (secs - timed).max(0.0);
        writeln!(
            out,
            "{:<26} {:>10.1} {:>7.1}%",
            "other (cache, sampling…)",
            rest * 1e6 / n,
            100.0 * rest / secs
        )?;
        writeln!(
            out,
            "thread hand-offs (parallel regions) per token: {hand_offs:.1}"
        )?;
        writeln!(out, "{}", serial_split(parallel, secs, n, "token", false))?;
        writeln!(
            out,
            "{:<26} {:>10} {:>8} {:>12}",
            "matrix products by weight", "µs/token", "share", "calls/token"
        )?;
        for (w, s, c) in &products {
            writeln!(
                out,
                "{w:<26} {:>10.1} {:>7.1}% {:>12.1}",
                s * 1e6 / n,
                100.0 * s / secs,
                *c as f64 / n
            )?;
        }
    }
    if let Some((bw, bytes, ceiling)) = roofline {
        writeln!(
            out,
            "\nroofline: streaming read {:.1} GB/s, {:.1} MB of weights per token -> ceiling {ceiling:.0} tok/s; decode reaches {:.0}% of it",
            bw / 1e9,
            bytes / 1e6,
            100.0 * decode_tps / ceiling
        )?;
        if decode_tps > ceiling {
            writeln!(
                out,
                "(above 100%: the weights came partly from a cache, not from memory)"
            )?;
        }
    }
    Ok(())
}

/// How a profiled run's `secs` divide between parallel regions (`parallel`
/// seconds, every thread at work) and the rest, which ran on one thread
/// while the others waited, per `unit` (`n` of them), in milliseconds
/// (`ms`) or microseconds.
pub(crate) fn serial_split(parallel: f64, secs: f64, n: f64, unit: &str, ms: bool) -> String {
    let one = (secs - parallel).max(0.0);
    let (scale, name) = if ms { (1e3, "ms") } else { (1e6, "µs") };
    format!(
        "in parallel regions {:.2} {name} per {unit} ({:.1}%); on one thread {:.2} {name} ({:.1}%)",
        parallel * scale / n,
        100.0 * parallel / secs.max(1e-12),
        one * scale / n,
        100.0 * one / secs.max(1e-12)
    )
}

/// A profiled weight as the tables name it: `rows × cols dtype`.
pub(crate) fn weight_name(w: &engine::profile::Product) -> String {
    format!("{} × {} {}", w.rows, w.cols, w.dtype)
}
