//! Chapter 5: what the KV cache holds, call by call, while SmolLM2 continues
//! a short prompt greedily: the prefill, then each decode step.
//!
//! `cargo run --release --example ch05_kv_trace`
//! (needs the model: `scripts/fetch-model.sh`). The output carries
//! `ANCHOR:` lines so the chapter can include sections.

use anyhow::Result;
use model::batch::LogitsFor;
use model::gguf::GgufFile;
use model::llama::{Llama, LlamaWeights};
use model::tokenizer::Tokenizer;

const PROMPT: &str = "The capital of France is";
const STEPS: usize = 6;
/// Positions shown per slot (the cache is allocated with this capacity).
const CAPACITY: usize = 16;

/// A row of the cache as one character per position: filled or free.
fn bar(len: usize) -> String {
    (0..CAPACITY)
        .map(|p| if p < len { '■' } else { '·' })
        .collect()
}

fn main() -> Result<()> {
    let path = model::model_path::find_default_model()?;
    let gguf = GgufFile::open(&path)?;
    let tok = Tokenizer::from_gguf(&gguf)?;
    let weights = LlamaWeights::from_gguf(&gguf, |_, _| {})?
        // Widened to f32, the model the transformers fixtures check.
        .to_dtype(engine::DType::F32)?;
    let c = weights.config.clone();
    let mut m = Llama::new(weights, CAPACITY, 1)?;
    let ids = tok.encode(PROMPT);
    let show = |id: u32| format!("{:?}", tok.decode(&[id]));

    println!("ANCHOR: trace");
    println!(
        "prompt {PROMPT:?} = {} tokens; a cache of {CAPACITY} positions, one slot",
        ids.len()
    );
    println!(
        "one position (■) = its key and value rows in each of the {} layers, {} kv heads × {} floats each",
        c.n_layers, c.n_kv_heads, c.head_dim
    );
    // Who wrote each cache row, and which token it holds.
    let mut rows: Vec<(u32, String)> = Vec::new();
    let logits = m.forward(&[(0, &ids)], LogitsFor::Last)?.remove(0);
    let mut next = engine::kernels::argmax(&logits) as u32;
    rows.extend(ids.iter().map(|&id| (id, "prefill".to_string())));
    println!(
        "{:<9} {:<14} {:<18} {:<7} {:<17} picks",
        "call", "feeds", "writes rows", "length", "cache"
    );
    println!(
        "{:<9} {:<14} {:<18} {:<7} {:<17} {}",
        "prefill",
        format!("{} tokens", ids.len()),
        format!("0..={} at once", ids.len() - 1),
        m.cache().len(0),
        bar(m.cache().len(0)),
        show(next)
    );
    for step in 1..=STEPS {
        let fed = next;
        let pos = m.cache().len(0);
        let logits = m.forward(&[(0, &[fed])], LogitsFor::Last)?.remove(0);
        next = engine::kernels::argmax(&logits) as u32;
        rows.push((fed, format!("decode {step}")));
        println!(
            "{:<9} {:<14} {:<18} {:<7} {:<17} {}",
            format!("decode {step}"),
            show(fed),
            format!("{pos} (reads 0..={pos})"),
            m.cache().len(0),
            bar(m.cache().len(0)),
            show(next)
        );
    }
    println!("the last pick is not in the cache yet: the next step feeds it and writes its row");
    println!("ANCHOR_END: trace");

    println!("ANCHOR: rows");
    println!("{:>4}  {:<12} written by", "row", "token");
    for (r, (id, by)) in rows.iter().enumerate() {
        println!("{r:>4}  {:<12} {by}", show(*id));
    }
    let held = m.cache().len(0);
    println!(
        "{held} positions held = {held} × 2 × {} × {} × {} floats = {} bytes in f32",
        c.n_layers,
        c.n_kv_heads,
        c.head_dim,
        model::kv_cache::kv_bytes(c.kv_shape(), held, 4)
    );
    println!("ANCHOR_END: rows");
    Ok(())
}
