//! Chapter 11: the GPU. What this machine offers (`Device::parse`), how many
//! kernel launches one SmolLM2 decode step makes on a GPU (counted by
//! `engine::device::ops` as the forward pass runs, here on the CPU), how
//! many weight bytes it reads, and the two limits that follow. With a GPU
//! (a build with `--features cuda` and the NVIDIA driver) it also runs the
//! model there, with its decode steps replayed as CUDA graphs and then
//! launched kernel by kernel, compares it with the CPU, and times what one
//! launch of a tiny kernel costs.
//!
//! `cargo run --release --example ch11_gpu` (needs the model:
//! `scripts/fetch-model.sh`); on a GPU machine,
//! `cargo run --release --features engine/cuda --example ch11_gpu`.
//! The output carries `ANCHOR:` lines so the chapter can include sections.

use std::time::Instant;

use anyhow::Result;
use engine::Device;
use engine::device::ops;
use model::batch::LogitsFor;
use model::gguf::GgufFile;
use model::kv_cache::CacheType;
use model::llama::{Llama, LlamaWeights};

/// The prompt length before the counted decode step.
const PROMPT: usize = 16;

fn main() -> Result<()> {
    println!("ANCHOR: devices");
    for name in ["cpu", "cuda"] {
        match Device::parse(name) {
            Ok(d) => println!("--device {name}: {}", d.name()),
            Err(e) => println!("--device {name}: {e}"),
        }
    }
    println!("ANCHOR_END: devices");

    let path = model::model_path::find_default_model()?;
    let w = LlamaWeights::from_gguf(&GgufFile::open(&path)?, |_, _| {})?;
    let c = w.config.clone();
    let bytes = w.bytes_per_token();
    let mut cpu = Llama::new(w.clone(), 256, 1)?.with_cache_type(CacheType::F32)?;
    let prompt: Vec<u32> = (0..PROMPT as u32).map(|i| 100 + i).collect();
    cpu.forward(&[(0, &prompt)], LogitsFor::Last)?;
    let before = ops::kernel_launches();
    cpu.forward(&[(0, &[42])], LogitsFor::Last)?;
    let launches = ops::kernel_launches() - before;

    println!("ANCHOR: launches");
    println!(
        "one decode step of SmolLM2 ({} blocks): {launches} kernel launches, {:.1} per block",
        c.n_layers,
        launches as f64 / c.n_layers as f64
    );
    println!(
        "weights read per step: {:.1} MB (every matrix once, the tied head included)",
        bytes as f64 / 1e6
    );
    println!(
        "each microsecond a launch costs adds {:.2} ms per token: {:.0} tok/s at most at 1 µs, {:.0} at 5 µs",
        launches as f64 / 1e3,
        1e6 / launches as f64,
        1e6 / (5.0 * launches as f64)
    );
    for (gpu, tb_s) in [("a GPU reading 2 TB/s", 2.0), ("one reading 4.8 TB/s", 4.8)] {
        let us = bytes as f64 / (tb_s * 1e12) * 1e6;
        println!(
            "{gpu} streams them in {us:.0} µs: {:.0} tok/s if bandwidth were the only limit",
            1e6 / us
        );
    }
    println!("ANCHOR_END: launches");

    println!("ANCHOR: measured");
    match Device::cuda(0) {
        Err(e) => println!("not measured here: {e}"),
        Ok(dev) => {
            let gpu = Llama::new(w, 256, 1)?
                .with_cache_type(CacheType::F32)?
                .to_device(&dev)?;
            time("cpu", &mut cpu, &prompt)?;
            // Decode steps replayed as CUDA graphs (the default), then
            // every kernel launched one by one.
            let mut gpu = gpu.with_graphs(true);
            time("gpu, CUDA graphs", &mut gpu, &prompt)?;
            let g = gpu.graph_stats();
            println!(
                "  {} steps replayed, each {:.0} µs on the host before its graph was launched",
                g.replayed,
                g.replay_host.as_secs_f64() * 1e6 / g.replayed.max(1) as f64
            );
            let mut gpu = gpu.with_graphs(false);
            time("gpu, kernel by kernel", &mut gpu, &prompt)?;
            // What one launch costs: a one-value addition, queued 10,000
            // times, then one copy back that waits for them all.
            let one = engine::device::Buffer::from_host(&dev, &[1.0])?;
            let mut acc = engine::device::Buffer::from_host(&dev, &[0.0])?;
            ops::add_inplace(&mut acc, &one)?;
            acc.to_host()?;
            let t = Instant::now();
            for _ in 0..10_000 {
                ops::add_inplace(&mut acc, &one)?;
            }
            acc.to_host()?;
            let us = t.elapsed().as_secs_f64() * 1e6 / 10_000.0;
            println!(
                "one tiny kernel: {us:.2} µs a launch back to back, so {launches} launches take {:.2} ms a step",
                us * launches as f64 / 1e3
            );
            println!("on {}", dev.name());
        }
    }
    println!("ANCHOR_END: measured");
    Ok(())
}

/// Prefill `prompt`, then 64 greedy decode steps by logits; print both.
fn time(name: &str, m: &mut Llama, prompt: &[u32]) -> Result<()> {
    m.cache_mut().clear(0);
    let t = Instant::now();
    let mut logits = m.forward(&[(0, prompt)], LogitsFor::Last)?.remove(0);
    let prefill = t.elapsed().as_secs_f64();
    let t = Instant::now();
    for _ in 0..64 {
        let next = engine::kernels::argmax(&logits) as u32;
        logits = m.forward(&[(0, &[next])], LogitsFor::Last)?.remove(0);
    }
    let decode = 64.0 / t.elapsed().as_secs_f64();
    println!(
        "{name}: prefill of {PROMPT} tokens {:.1} ms, decode {decode:.0} tok/s",
        prefill * 1e3
    );
    Ok(())
}
