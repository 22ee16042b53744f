//! Batching and serving: static against continuous batching on a toy
//! workload (counted in steps, so the same on every machine), then what a
//! batch costs on SmolLM2 (timed on this machine), with an SVG plot
//! written to `book/src/generated/`, and what the second core adds to a
//! batch of eight beside what a hand-off between the cores costs.
//!
//! `cargo run --release --example ch08b_batching`
//! (needs the model: `scripts/fetch-model.sh`). The timed sweep is also
//! `infer bench-batch`; the same over HTTP is `scripts/load-test.py`.

use std::collections::HashMap;

use anyhow::{Result, anyhow};
use decode::sweep::{SweepRow, measure, table};
use decode::toy::FnModel;
use decode::{Event, GenerateParams, Request, Scheduler, SchedulerConfig};
use engine::quant::SumOrder;
use model::gguf::GgufFile;
use model::llama::{Llama, LlamaWeights};
use model::tokenizer::Tokenizer;

const SLOTS: usize = 4;
const REQUESTS: usize = 16;

/// Reply lengths of the toy workload: mostly short, a few long (as chat
/// replies are), from a fixed pseudo-random sequence.
fn lengths() -> Vec<usize> {
    let mut s: u64 = 7;
    (0..REQUESTS)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (s >> 33) as f64 / (1u64 << 31) as f64;
            // Exponential with mean 16, at least 2 and at most 96 tokens.
            ((-16.0 * (1.0 - u).ln()) as usize).clamp(2, 96)
        })
        .collect()
}

/// Run `groups` of requests through a scheduler over a toy model; a group
/// starts only when the previous one has finished (one group of everything
/// is continuous batching). Returns each request's finish step and the
/// number of steps.
fn run(groups: &[Vec<usize>]) -> Result<(Vec<u64>, u64)> {
    let model = FnModel::new(8, SLOTS, 128, |_: &[u32]| {
        vec![0.0, 1.0, 0.5, 0.2, 0.0, 0.0, 0.0, 0.0]
    });
    let config = SchedulerConfig {
        max_queue: REQUESTS,
        ..Default::default()
    };
    let mut sched = Scheduler::new(model, Vec::<Vec<u8>>::new(), config)?;
    let mut finish = vec![0u64; REQUESTS];
    let mut who = HashMap::new();
    let mut steps = 0;
    let mut next = 0;
    for group in groups {
        for &len in group {
            let params = GenerateParams {
                max_new_tokens: len,
                ..Default::default()
            };
            let id = sched
                .submit(Request {
                    prompt: vec![1],
                    params,
                    stream: 0,
                })
                .map_err(|e| anyhow!("{e}"))?;
            who.insert(id, next);
            next += 1;
        }
        while !sched.is_idle() {
            let events = sched.step();
            steps += 1;
            for e in events {
                if let Event::Token { id, step } = e
                    && step.finish.is_some()
                {
                    finish[who[&id]] = steps;
                }
            }
        }
    }
    Ok((finish, steps))
}

fn static_vs_continuous() -> Result<()> {
    let lens = lengths();
    let total: usize = lens.iter().sum();
    println!("// ANCHOR: workload");
    println!("{REQUESTS} requests, {SLOTS} slots; reply lengths (tokens): {lens:?}");
    println!("// ANCHOR_END: workload");
    let static_groups: Vec<Vec<usize>> = lens.chunks(SLOTS).map(<[usize]>::to_vec).collect();
    println!("// ANCHOR: static_vs_continuous");
    println!(
        "{:<11} {:>6} {:>13} {:>12} {:>9}",
        "batching", "steps", "mean latency", "max latency", "slot use"
    );
    for (name, groups) in [
        ("static", static_groups),
        ("continuous", vec![lens.clone()]),
    ] {
        let (finish, steps) = run(&groups)?;
        let mean = finish.iter().sum::<u64>() as f64 / REQUESTS as f64;
        let max = finish.iter().max().copied().unwrap_or(0);
        let use_pct = 100.0 * total as f64 / (SLOTS as f64 * steps as f64);
        println!("{name:<11} {steps:>6} {mean:>13.1} {max:>12} {use_pct:>8.0}%");
    }
    println!("// ANCHOR_END: static_vs_continuous");
    Ok(())
}

/// A line chart of aggregate tok/s and p99 inter-token latency against clients.
fn write_svg(rows: &[SweepRow]) -> std::io::Result<()> {
    let (w, h, pad) = (640.0f64, 260.0f64, 48.0f64);
    let xs: Vec<f64> = rows.iter().map(|r| (r.clients as f64).log2()).collect();
    let xmax = xs.iter().cloned().fold(1.0, f64::max);
    let x = |v: f64| pad + v / xmax * (w - 2.0 * pad);
    let series = [
        (
            "aggregate tok/s",
            "#3b6ea8",
            rows.iter().map(|r| r.tok_per_s).collect::<Vec<_>>(),
        ),
        (
            "p99 inter-token ms",
            "#c0504d",
            rows.iter().map(|r| r.itl_p99_ms).collect(),
        ),
    ];
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif">"#
    );
    svg += &format!(
        r#"<line x1="{pad}" y1="{y}" x2="{x2}" y2="{y}" stroke="gray"/>"#,
        y = h - pad,
        x2 = w - pad
    );
    for (r, xv) in rows.iter().zip(&xs) {
        svg += &format!(
            r#"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">{}</text>"#,
            x(*xv),
            h - pad + 16.0,
            r.clients
        );
    }
    svg += &format!(
        r#"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">concurrent requests</text>"#,
        w / 2.0,
        h - 8.0
    );
    for (k, (label, colour, ys)) in series.iter().enumerate() {
        let ymax = ys.iter().cloned().fold(1e-9, f64::max) * 1.1;
        let y = |v: f64| h - pad - v / ymax * (h - 2.0 * pad);
        let pts: Vec<String> = xs
            .iter()
            .zip(ys)
            .map(|(a, b)| format!("{:.1},{:.1}", x(*a), y(*b)))
            .collect();
        svg += &format!(
            r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#,
            pts.join(" ")
        );
        for (a, b) in xs.iter().zip(ys) {
            svg += &format!(
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{colour}"/><text x="{:.1}" y="{:.1}" font-size="10" fill="{colour}" text-anchor="middle">{b:.0}</text>"#,
                x(*a),
                y(*b),
                x(*a),
                y(*b) - 7.0
            );
        }
        svg += &format!(
            r#"<text x="{:.1}" y="{:.1}" font-size="12" fill="{colour}">{label} (peak {:.0})</text>"#,
            pad + 8.0 + 230.0 * k as f64,
            18.0,
            ys.iter().cloned().fold(0.0, f64::max)
        );
    }
    svg += "</svg>\n";
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/generated");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("ch08b_batching.svg"), svg)
}

/// The sweep for one weight dtype; prints its table between anchors `name`.
fn sweep(
    weights: LlamaWeights,
    order: SumOrder,
    tok: &Tokenizer,
    name: &str,
    label: &str,
) -> Result<Vec<SweepRow>> {
    let clients = [1usize, 2, 4, 8, 16];
    let (prompt_len, new_tokens) = (32, 32);
    let text = "It was the best of times, it was the worst of times, it was the age of \
                wisdom, it was the age of foolishness, it was the epoch of belief, it was \
                the epoch of incredulity, it was the season of Light, it was the season of \
                Darkness, it was the spring of hope, it was the winter of despair.";
    let ids = tok.encode(text);
    // Request i starts i tokens into the text: distinct prompts, same length.
    let prompts =
        |n: usize| -> Vec<Vec<u32>> { (0..n).map(|i| ids[i..i + prompt_len].to_vec()).collect() };
    let mut lm = Llama::new(weights, prompt_len + new_tokens + 1, 16)?.with_sum_order(order);
    lm = measure(lm, tok.clone(), &prompts(1), 2, 256, None)?.1;
    let mut rows = Vec::new();
    for n in clients {
        let (row, m) = measure(lm, tok.clone(), &prompts(n), new_tokens, 256, None)?;
        lm = m;
        rows.push(row);
    }
    println!("// ANCHOR: {name}");
    println!(
        "SmolLM2 {label}, {} threads; prompts of {prompt_len} tokens, {new_tokens} new tokens each",
        engine::threads::num_threads()
    );
    print!("{}", table(&rows));
    println!("// ANCHOR_END: {name}");
    Ok(rows)
}

// ANCHOR: cores
/// Eight sequences decoding on one thread and then on two, `ROUNDS`
/// times, the two-thread run between two measurements of the pool's
/// hand-off time: how much the second core adds depends on what it costs
/// the two cores to pass work and data to each other.
fn cores(weights: LlamaWeights, tok: &Tokenizer) -> Result<()> {
    const ROUNDS: usize = 12;
    let (clients, prompt_len, new_tokens) = (8, 32, 64);
    let ids = tok
        .encode("The quick brown fox jumps over the lazy dog. ")
        .repeat(8);
    let prompts: Vec<Vec<u32>> = (0..clients)
        .map(|i| ids[i..i + prompt_len].to_vec())
        .collect();
    let mut lm =
        Llama::new(weights, prompt_len + new_tokens + 1, clients)?.with_sum_order(SumOrder::Block);
    println!("// ANCHOR: cores");
    println!("8 sequences, {prompt_len}-token prompts, {new_tokens} new tokens; decode tok/s");
    println!("round  1 thread  hand-off µs  2 threads  hand-off µs  2 ÷ 1");
    let run = |lm: Llama| -> Result<(f64, Llama)> {
        let (row, m) = measure(lm, tok.clone(), &prompts, new_tokens, 256, None)?;
        Ok((row.decode_tok_per_s, m))
    };
    for round in 1..=ROUNDS {
        engine::threads::set_num_threads(1)?;
        let (one, m) = run(lm)?;
        engine::threads::set_num_threads(2)?;
        let before = hand_off_micros();
        let (two, m) = run(m)?;
        let after = hand_off_micros();
        lm = m;
        println!(
            "{round:>5} {one:>9.1} {before:>12.2} {two:>10.1} {after:>12.2} {:>6.2}",
            two / one
        );
    }
    engine::threads::set_num_threads(0)?;
    println!("// ANCHOR_END: cores");
    Ok(())
}
// ANCHOR_END: cores

/// Microseconds of one empty hand-off to the pool, the mean of 20,000
/// ([`engine::threads::hand_off_seconds`]).
fn hand_off_micros() -> f64 {
    engine::threads::hand_off_seconds(20_000).map_or(0.0, |s| s * 1e6)
}

fn main() -> Result<()> {
    static_vs_continuous()?;
    let path = model::model_path::find_default_model()?;
    let gguf = GgufFile::open(&path)?;
    let tok = Tokenizer::from_gguf(&gguf)?;
    let q4 = LlamaWeights::from_gguf(&gguf, |_, _| {})?;
    let f32 = q4.to_dtype(engine::DType::F32)?;
    let rows = sweep(
        q4.clone(),
        SumOrder::Block,
        &tok,
        "sweep",
        "Q4_1 (as the file stores it), block sums",
    )?;
    write_svg(&rows)?;
    sweep(
        q4.clone(),
        SumOrder::Ggml,
        &tok,
        "sweep_ggml",
        "Q4_1, llama.cpp's order",
    )?;
    sweep(f32, SumOrder::Ggml, &tok, "sweep_f32", "widened to f32")?;
    cores(q4, &tok)?;
    Ok(())
}
