//! Chapter 5: the KV-cache memory formula, worked out for SmolLM2 (its
//! config read from the GGUF file) and extrapolated to 7B/8B/70B Llama
//! models at a 128K context, in f32, f16 and Q8_0.
//!
//! `cargo run --release --example ch05_kv_memory`
//! (needs the model: `scripts/fetch-model.sh`). Fast: it reads the file's
//! config and tensor sizes and runs nothing. The output carries `ANCHOR:`
//! lines so the chapter can include sections.

use anyhow::Result;
use model::gguf::GgufFile;
use model::kv_cache::{CacheType, KvShape, kv_bytes};
use model::llama::LlamaWeights;

const KIB: f64 = 1024.0;
const MIB: f64 = 1024.0 * 1024.0;
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Bytes of the K and V of `positions` tokens in an element type: the
/// formula `2 × layers × positions × kv_heads × head_dim × bytes/element`,
/// with the element size of each cache type (Q8_0: 34 bytes per 32 values).
fn cache_bytes(shape: KvShape, positions: usize, ty: CacheType) -> usize {
    2 * shape.n_layers * positions * shape.n_kv_heads * ty.bytes_for(shape.head_dim)
}

const TYPES: [CacheType; 3] = [CacheType::F32, CacheType::F16, CacheType::Q8_0];

/// Published configurations (the models' `config.json` on their model
/// cards) and parameter counts.
struct Published {
    name: &'static str,
    shape: KvShape,
    n_heads: usize,
    params: f64,
}

fn main() -> Result<()> {
    let path = model::model_path::find_default_model()?;
    let w = LlamaWeights::from_gguf(&GgufFile::open(&path)?, |_, _| {})?;
    let c = w.config.clone();
    let shape = c.kv_shape();

    println!("ANCHOR: memory");
    println!(
        "SmolLM2: {} layers × {} kv heads × head_dim {} (the {} query heads share them in groups of {})",
        c.n_layers,
        c.n_kv_heads,
        c.head_dim,
        c.n_heads,
        c.n_heads / c.n_kv_heads
    );
    println!(
        "per token: 2 × {} × {} × {} × 4 bytes = {} bytes = {:.0} KiB (f32)",
        c.n_layers,
        c.n_kv_heads,
        c.head_dim,
        kv_bytes(shape, 1, 4),
        kv_bytes(shape, 1, 4) as f64 / KIB
    );
    println!(
        "{:>10} {:>12} {:>12} {:>12}",
        "positions", "f32 MiB", "f16 MiB", "q8_0 MiB"
    );
    for pos in [1, 1024, 2048, c.max_positions] {
        let cells: Vec<String> = TYPES
            .iter()
            .map(|&ty| format!("{:>12.2}", cache_bytes(shape, pos, ty) as f64 / MIB))
            .collect();
        println!("{pos:>10} {}", cells.join(" "));
    }
    let weights_f32 = w.n_params() * 4;
    let weights_file = w.n_bytes();
    println!(
        "weights: {} parameters = {:.0} MiB as f32, {:.0} MiB as stored in the file",
        w.n_params(),
        weights_f32 as f64 / MIB,
        weights_file as f64 / MIB
    );
    let full = cache_bytes(shape, c.max_positions, CacheType::F32);
    println!(
        "one sequence at the full {} positions, f32 cache: {:.0} MiB; 4 beams: {:.0} MiB",
        c.max_positions,
        full as f64 / MIB,
        4.0 * full as f64 / MIB
    );
    // From how many positions does one sequence's cache outweigh the weights?
    let per_tok = cache_bytes(shape, 1, CacheType::F32);
    println!(
        "the f32 cache of one sequence outweighs the f32 weights from {} positions, the file's weights from {}",
        weights_f32.div_ceil(per_tok),
        weights_file.div_ceil(per_tok)
    );
    let no_gqa = KvShape {
        n_kv_heads: c.n_heads,
        ..shape
    };
    println!(
        "with {} separate K/V heads (no GQA) the cache would be {}× larger: {:.0} MiB at {} positions (f32)",
        c.n_heads,
        c.n_heads / c.n_kv_heads,
        cache_bytes(no_gqa, c.max_positions, CacheType::F32) as f64 / MIB,
        c.max_positions
    );
    println!("ANCHOR_END: memory");

    println!("ANCHOR: extrapolate");
    let ctx = 128 * 1024;
    let models = [
        Published {
            name: "SmolLM2-135M",
            shape,
            n_heads: c.n_heads,
            params: w.n_params() as f64,
        },
        Published {
            name: "Llama-2-7B",
            shape: KvShape {
                n_layers: 32,
                n_kv_heads: 32,
                head_dim: 128,
            },
            n_heads: 32,
            params: 6.74e9,
        },
        Published {
            name: "Llama-3-8B",
            shape: KvShape {
                n_layers: 32,
                n_kv_heads: 8,
                head_dim: 128,
            },
            n_heads: 32,
            params: 8.03e9,
        },
        Published {
            name: "Llama-3-70B",
            shape: KvShape {
                n_layers: 80,
                n_kv_heads: 8,
                head_dim: 128,
            },
            n_heads: 64,
            params: 70.6e9,
        },
    ];
    println!("one sequence of {ctx} positions (128K); weights in f16 for comparison");
    println!(
        "{:<13} {:>6} {:>10} {:>8} {:>13} {:>10} {:>10} {:>10} {:>12}",
        "model",
        "layers",
        "kv/q heads",
        "head_dim",
        "KiB/token f16",
        "f32 GiB",
        "f16 GiB",
        "q8_0 GiB",
        "weights GiB"
    );
    for m in &models {
        let gib: Vec<String> = TYPES
            .iter()
            .map(|&ty| format!("{:>10.1}", cache_bytes(m.shape, ctx, ty) as f64 / GIB))
            .collect();
        println!(
            "{:<13} {:>6} {:>10} {:>8} {:>13.0} {} {:>12.1}",
            m.name,
            m.shape.n_layers,
            format!("{}/{}", m.shape.n_kv_heads, m.n_heads),
            m.shape.head_dim,
            cache_bytes(m.shape, 1, CacheType::F16) as f64 / KIB,
            gib.join(" "),
            m.params * 2.0 / GIB
        );
    }
    for m in &models[1..] {
        let f16 = cache_bytes(m.shape, ctx, CacheType::F16) as f64;
        println!(
            "{}: at 128K the f16 cache of one sequence is {:.1}× the f16 weights",
            m.name,
            f16 / (m.params * 2.0)
        );
    }
    println!("ANCHOR_END: extrapolate");
    Ok(())
}
