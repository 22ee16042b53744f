//! Chapter 5: the KV cache on SmolLM2 — that what it holds never changes,
//! what it saves in time, when one pass without it is faster, and what beam
//! search asks of it. (The memory formula is `ch05_kv_memory`, the trace of
//! what it holds `ch05_kv_trace`.)
//!
//! `cargo run --release --example ch05_kv_cache`
//! (needs the model: `scripts/fetch-model.sh`). The output carries
//! `ANCHOR:` lines so the chapter can include sections.

use std::time::Instant;

use anyhow::Result;
use decode::LanguageModel;
use model::batch::LogitsFor;
use model::gguf::GgufFile;
use model::llama::{Llama, LlamaWeights};
use model::no_cache::Recompute;

/// A fixed pseudo-random prompt (the cost does not depend on the ids).
fn prompt(n: usize, vocab: usize) -> Vec<u32> {
    (0..n).map(|i| ((i * 7919 + 13) % vocab) as u32).collect()
}

/// Seconds per decode step at `pos` cached positions, over `steps` steps.
fn per_token(lm: &mut dyn LanguageModel, pos: usize, steps: usize) -> Result<f64> {
    lm.clear(0);
    let p = prompt(pos, lm.vocab_size());
    let mut logits = lm
        .forward(&[(0, &p)])
        .map_err(|e| anyhow::anyhow!(e))?
        .remove(0);
    let t = Instant::now();
    for _ in 0..steps {
        let tok = engine::kernels::argmax(&logits) as u32;
        logits = lm
            .forward(&[(0, &[tok])])
            .map_err(|e| anyhow::anyhow!(e))?
            .remove(0);
    }
    Ok(t.elapsed().as_secs_f64() / steps as f64)
}

fn main() -> Result<()> {
    let path = model::model_path::find_default_model()?;
    let weights = LlamaWeights::from_gguf(&GgufFile::open(&path)?, |_, _| {})?
        // Widened to f32, the model the transformers fixtures check (chapter
        // 10 runs the file's 4-bit blocks as they are).
        .to_dtype(engine::DType::F32)?;
    let c = weights.config.clone();

    println!("ANCHOR: oneshot");
    // Scoring a text whose every token is known (perplexity, ranking answers):
    // one pass over all of it, against feeding it token by token through the
    // cache as generation would.
    let n = 256;
    let text = prompt(n, c.vocab_size);
    let mut m = Llama::new(weights.clone(), n, 1)?;
    m.forward(&[(0, &text[..8])], LogitsFor::Last)?; // warm-up
    m.cache_mut().clear(0);
    let t = Instant::now();
    let all = m.forward(&[(0, &text)], LogitsFor::All)?.remove(0);
    let one_pass = t.elapsed().as_secs_f64();
    m.cache_mut().clear(0);
    let t = Instant::now();
    let mut stepped = Vec::with_capacity(all.len());
    for tok in &text {
        stepped.extend(m.forward(&[(0, &[*tok])], LogitsFor::Last)?.remove(0));
    }
    let by_step = t.elapsed().as_secs_f64();
    let diff = all
        .iter()
        .zip(&stepped)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    println!(
        "logits of all {n} positions of a {n}-token text (threads: {})",
        engine::threads::num_threads()
    );
    println!("  one pass over the whole text:         {one_pass:>7.2} s");
    println!("  token by token through the KV cache:  {by_step:>7.2} s");
    println!(
        "  one pass is {:.1}× faster; same logits to 1e-3: {}",
        by_step / one_pass,
        diff < 1e-3
    );
    println!("ANCHOR_END: oneshot");

    println!("ANCHOR: frozen");
    let mut m = Llama::new(weights.clone(), 64, 1)?;
    let toks = prompt(24, c.vocab_size);
    m.forward(&[(0, &toks[..8])], LogitsFor::Last)?;
    let before: Vec<f32> = m.cache().key_row(0, 10, 1, 3).unwrap_or_default().to_vec();
    m.forward(&[(0, &toks[8..])], LogitsFor::Last)?;
    let after = m.cache().key_row(0, 10, 1, 3).unwrap_or_default();
    let mut fresh = Llama::new(weights.clone(), 64, 1)?;
    fresh.forward(&[(0, &toks)], LogitsFor::Last)?;
    let recomputed = fresh.cache().key_row(0, 10, 1, 3).unwrap_or_default();
    let diff = after
        .iter()
        .zip(&recomputed)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    println!(
        "key of token 3, layer 10, kv head 1, first 4 of {} values:",
        c.head_dim
    );
    println!("  after  8 tokens:             {:?}", &before[..4]);
    println!("  after 24 tokens (cached):    {:?}", &after[..4]);
    println!("  recomputed from all 24:      {:?}", &recomputed[..4]);
    println!(
        "  cached == before: {}; max |cached - recomputed| = {diff:e}",
        before == after
    );
    println!("ANCHOR_END: frozen");

    println!("ANCHOR: speed");
    println!(
        "threads: {}; seconds per generated token at a given context length",
        engine::threads::num_threads()
    );
    println!(
        "{:>10} {:>14} {:>14} {:>9}",
        "positions", "with cache", "recompute", "speedup"
    );
    let mut cached: Box<dyn LanguageModel> = Box::new(Llama::new(weights.clone(), 1100, 1)?);
    per_token(cached.as_mut(), 8, 2)?; // warm-up
    for pos in [32, 128, 512, 1024] {
        let with = per_token(cached.as_mut(), pos, 8)?;
        let mut rc = Recompute::new(cached);
        let without = per_token(&mut rc, pos, if pos > 256 { 2 } else { 4 })?;
        cached = rc.into_inner();
        println!(
            "{pos:>10} {:>12.1}ms {:>12.1}ms {:>8.1}×",
            with * 1e3,
            without * 1e3,
            without / with
        );
    }
    println!("ANCHOR_END: speed");

    println!("ANCHOR: beam");
    let mut m = Llama::new(weights, 64, 3)?;
    let p = prompt(6, c.vocab_size);
    m.forward(&[(0, &p)], LogitsFor::Last)?;
    m.cache_mut().reorder(&[0, 0, 0])?; // fork: three beams share the prompt
    m.forward(&[(0, &[10]), (1, &[20]), (2, &[30])], LogitsFor::Last)?;
    println!(
        "after the prompt and one step on 3 beams: lengths {:?}",
        (0..3).map(|s| m.cache().len(s)).collect::<Vec<_>>()
    );
    let last = |m: &Llama, s: usize| m.cache().key_row(s, 0, 0, 6).map(|k| k[0]);
    println!(
        "layer-0 key of the last token per slot: {:?}",
        (0..3).map(|s| last(&m, s)).collect::<Vec<_>>()
    );
    m.cache_mut().reorder(&[2, 2, 0])?; // beam 2 survived twice, beam 0 once
    println!(
        "after reorder([2, 2, 0]):             {:?}",
        (0..3).map(|s| last(&m, s)).collect::<Vec<_>>()
    );
    m.cache_mut().truncate(2, 6)?;
    println!(
        "after truncate(slot 2, 6): lengths {:?}",
        (0..3).map(|s| m.cache().len(s)).collect::<Vec<_>>()
    );
    println!("ANCHOR_END: beam");
    Ok(())
}
