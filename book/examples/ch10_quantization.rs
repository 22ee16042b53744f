//! The quantization chapter on SmolLM2: the block formats byte by byte,
//! per-tensor against per-block scales, the integer dot product, memory,
//! the roofline on this machine, and quality against speed per format.
//!
//! `cargo run --release --example ch10_quantization`
//! (needs the model: `scripts/fetch-model.sh`). The perplexity text is
//! `book/data/kjv-ruth-jonah.txt`: the books of Ruth and Jonah in the King
//! James Version, public domain, taken from Debian's `bible-kjv` package by
//! `scripts/make_quality_text.sh`. The output carries `ANCHOR:` lines so the
//! chapter can include sections; its timings change from run to run.

use std::time::Instant;

use anyhow::{Result, anyhow};
use decode::LanguageModel;
use engine::quant::{self, act::Q8Acts, dot};
use engine::{DType, Tensor};
use model::gguf::GgufFile;
use model::gpt2::{Gpt2, Gpt2Layer, Gpt2Params, Gpt2Weights};
use model::kv_cache::CacheType;
use model::llama::{Llama, LlamaWeights};

const FORMATS: [DType; 3] = [DType::Q8_0, DType::Q4_0, DType::Q4_1];

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn formats() -> Result<()> {
    println!("ANCHOR: formats");
    let x: Vec<f32> = (0..32).map(|i| (i as f32 - 16.0) / 4.0).collect();
    println!("x[i] = (i - 16) / 4, i = 0..31  (-4.00 ... 3.75)");
    for dt in FORMATS {
        let b = quant::quantize(dt, &x)?;
        let mut back = vec![0f32; 32];
        quant::dequantize(dt, &b, &mut back)?;
        let err = x
            .iter()
            .zip(&back)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        let (head, codes) = match dt {
            DType::Q4_1 => b.split_at(4),
            _ => b.split_at(2),
        };
        println!(
            "{dt}: {} bytes = {:.2} bits per weight",
            b.len(),
            b.len() as f32 * 8.0 / 32.0
        );
        println!("  scale bytes  {}", hex(head));
        println!("  codes        {}", hex(codes));
        println!(
            "  decoded      {}",
            back.iter()
                .take(6)
                .map(|v| format!("{v:+.3}"))
                .collect::<Vec<_>>()
                .join(" ")
                + " ..."
        );
        println!("  max |error|  {err:.4}");
    }
    println!("ANCHOR_END: formats");
    Ok(())
}

/// RMS of `a − b` over RMS of `a`.
fn rel_rms(a: &[f32], b: &[f32]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
    let den: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum();
    (num / den).sqrt()
}

/// One scale for the whole tensor: `q = round(x / max|x| · levels)`.
fn per_tensor(x: &[f32], levels: f32) -> Vec<f32> {
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let d = amax / levels;
    x.iter()
        .map(|v| (v / d).round().clamp(-levels, levels) * d)
        .collect()
}

/// A weight-like matrix: most values small and bell-shaped, one in a
/// thousand an outlier twenty times larger (as in trained transformers).
fn weight_like(n: usize) -> Vec<f32> {
    let mut s = 0x2545_f491_4f6c_dd1du64;
    let mut uniform = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 24) as f32
    };
    (0..n)
        .map(|_| {
            // Sum of four uniforms: close to a normal distribution.
            let g = (0..4).map(|_| uniform()).sum::<f32>() - 2.0;
            let outlier = uniform() < 0.001;
            0.02 * g * if outlier { 20.0 } else { 1.0 }
        })
        .collect()
}

fn scales() -> Result<()> {
    println!("ANCHOR: scales");
    let x = weight_like(1 << 20);
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let rms = (x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / x.len() as f64).sqrt();
    println!(
        "a weight-like tensor: {} values, max |x| = {amax:.3}, rms = {rms:.4} (max/rms = {:.0})",
        x.len(),
        amax as f64 / rms
    );
    println!("{:<38} {:>14}", "scheme", "relative RMS error");
    println!(
        "{:<38} {:>14.4}",
        "int8, one scale per tensor",
        rel_rms(&x, &per_tensor(&x, 127.0))
    );
    let blocks = |dt: DType| -> Result<f64> {
        let t = Tensor::from_vec(x.clone(), &[x.len()])?.to_dtype(dt)?;
        Ok(rel_rms(&x, &t.to_vec_f32()?))
    };
    let rows = [
        ("int8, one scale per 32 (Q8_0)", Some(DType::Q8_0)),
        ("int4, one scale per tensor", None),
        ("int4, one scale per 32 (Q4_0)", Some(DType::Q4_0)),
        ("int4, scale + min per 32 (Q4_1)", Some(DType::Q4_1)),
        ("int5, one scale per 32 (Q5_0)", Some(DType::Q5_0)),
        ("int4, 6-bit scale + min per 32 (Q4_K)", Some(DType::Q4_K)),
        ("int6, 8-bit scale per 16 (Q6_K)", Some(DType::Q6_K)),
    ];
    for (name, dt) in rows {
        let e = match dt {
            Some(dt) => blocks(dt)?,
            None => rel_rms(&x, &per_tensor(&x, 7.0)),
        };
        println!("{name:<38} {e:>14.4}");
    }
    println!("ANCHOR_END: scales");
    Ok(())
}

/// One Q4_K super-block of weight-like values: its two f16 constants, the
/// eight six-bit (scale, minimum) pairs, and what they make of each
/// sub-block.
fn k_quants() -> Result<()> {
    println!("ANCHOR: kquants");
    let x = weight_like(256);
    let b = quant::quantize(DType::Q4_K, &x)?;
    let mut y = vec![0f32; 256];
    quant::dequantize(DType::Q4_K, &b, &mut y)?;
    let f16 = |i: usize| half::f16::from_le_bytes([b[i], b[i + 1]]).to_f32();
    let (d, dmin) = (f16(0), f16(2));
    println!(
        "one Q4_K super-block (256 weight-like values, 144 bytes): d = {d:.3e}, dmin = {dmin:.3e}"
    );
    println!(
        "{:<10} {:>4} {:>4} {:>11} {:>11} {:>11} {:>11}",
        "sub-block", "sc", "m", "step d·sc", "min −dmin·m", "x range lo", "hi"
    );
    for j in 0..8 {
        let (sc, m) = quant::q4_k::scale_min(j, &b[4..16]);
        let xs = &x[32 * j..32 * (j + 1)];
        let (lo, hi) = xs
            .iter()
            .fold((f32::MAX, f32::MIN), |(a, c), &v| (a.min(v), c.max(v)));
        println!(
            "{j:<10} {sc:>4} {m:>4} {:>11.5} {:>11.5} {lo:>11.5} {hi:>11.5}",
            d * f32::from(sc),
            -dmin * f32::from(m)
        );
    }
    println!(
        "relative RMS error of the super-block: {:.4}",
        rel_rms(&x, &y)
    );
    println!("ANCHOR_END: kquants");
    Ok(())
}

fn integer_dot() -> Result<()> {
    println!("ANCHOR: dot");
    let w: Vec<f32> = (0..32)
        .map(|i| ((i * 7 % 11) as f32 - 5.0) / 10.0)
        .collect();
    let x: Vec<f32> = (0..32).map(|i| ((i * 5 % 13) as f32 - 6.0) / 6.0).collect();
    let wb = quant::quantize(DType::Q4_1, &w)?;
    let mut acts = Q8Acts::default();
    acts.quantize(&x, 32);
    let a = acts.row(0);
    let d_w = half::f16::from_le_bytes([wb[0], wb[1]]).to_f32();
    let m_w = half::f16::from_le_bytes([wb[2], wb[3]]).to_f32();
    let mut codes = [0u8; 32];
    for j in 0..16 {
        codes[j] = wb[4 + j] & 0x0f;
        codes[j + 16] = wb[4 + j] >> 4;
    }
    let isum: i32 = codes
        .iter()
        .zip(a.qs)
        .map(|(&c, &q)| i32::from(c) * i32::from(q))
        .sum();
    println!(
        "weights: Q4_1 block, d_w = {d_w:.5}, m_w = {m_w:.5}, codes {:?}",
        &codes[..8]
    );
    println!(
        "activations: 8-bit block, d_a = {:.5}, q = {:?}, Σq = {}",
        a.d[0],
        &a.qs[..8],
        a.isum[0]
    );
    println!("Σ code·q over the block (integers)  = {isum}");
    println!(
        "d_w·d_a·Σ code·q + m_w·d_a·Σq       = {:.5}",
        dot::dot_scalar(DType::Q4_1, &wb, a)
    );
    let exact: f32 = w.iter().zip(&x).map(|(a, b)| a * b).sum();
    println!("the f32 dot product of w and x      = {exact:.5}");
    println!("ANCHOR_END: dot");
    Ok(())
}

fn memory(n_params: usize) {
    println!("ANCHOR: memory");
    let formats = [
        ("f32", 32.0),
        ("f16/bf16", 16.0),
        ("q8_0", 8.5),
        ("q6_k", 6.5625),
        ("q5_0", 5.5),
        ("q4_1", 5.0),
        ("q4_0", 4.5),
        ("q4_k", 4.5),
    ];
    println!(
        "{:<10} {:>8} {:>14} {:>10} {:>10}",
        "format", "bits/w", "SmolLM2 135M", "7B", "70B"
    );
    for (name, bits) in formats {
        let gb = |p: f64| p * bits / 8.0 / 1e9;
        println!(
            "{name:<10} {bits:>8.1} {:>11.0} MB {:>7.1} GB {:>7.1} GB",
            gb(n_params as f64) * 1e3,
            gb(7e9),
            gb(70e9)
        );
    }
    println!("ANCHOR_END: memory");
}

/// Bytes per second of a plain read of 256 MB, best of four.
fn stream_bandwidth() -> f64 {
    let x = vec![1.0f32; 64 << 20];
    let mut best = f64::MAX;
    for _ in 0..4 {
        let t = Instant::now();
        std::hint::black_box(engine::kernels::stream_sum(&x));
        best = best.min(t.elapsed().as_secs_f64());
    }
    (x.len() * 4) as f64 / best
}

fn decode_speed(lm: &mut Llama, steps: usize) -> Result<f64> {
    lm.clear(0);
    let mut logits = lm
        .forward(&[(0, &[1, 2, 3, 4])], model::batch::LogitsFor::Last)?
        .remove(0);
    let t = Instant::now();
    for _ in 0..steps {
        let tok = engine::kernels::argmax(&logits) as u32;
        logits = lm
            .forward(&[(0, &[tok])], model::batch::LogitsFor::Last)?
            .remove(0);
    }
    Ok(steps as f64 / t.elapsed().as_secs_f64())
}

fn quality_and_speed(file: &LlamaWeights) -> Result<()> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/kjv-ruth-jonah.txt");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| anyhow!("the perplexity text {}: {e}", path.display()))?;
    let tok = model::tokenizer::Tokenizer::from_gguf(&GgufFile::open(
        model::model_path::find_default_model()?,
    )?)?;
    let ids = tok.encode(&text);
    let (ctx, chunks) = (512, 8);
    let bw = stream_bandwidth();
    println!("ANCHOR: quality");
    println!(
        "perplexity: Ruth and Jonah (King James Version), {} tokens, first {chunks} chunks of {ctx} (llama-perplexity's scoring, run as prefill:\n  f32 activations against widened weight tiles, 8-bit ones for Q8_0, Q4_0, Q4_1 and Q5_0 rows);\ndecode: 64 steps with 8-bit activations, {} threads, f16 KV cache",
        ids.len(),
        engine::threads::num_threads()
    );
    println!("streaming read on this machine: {:.1} GB/s", bw / 1e9);
    println!(
        "{:<22} {:>9} {:>16} {:>11} {:>9} {:>9}",
        "weights", "MB/token", "perplexity", "decode t/s", "ceiling", "of it"
    );
    let f32w = file.to_dtype(DType::F32)?;
    let variants: Vec<(&str, LlamaWeights)> = vec![
        ("f32 (dequantized)", f32w.clone()),
        ("q8_0 (requantized)", f32w.to_dtype(DType::Q8_0)?),
        ("q4_1 + q8_0 (the file)", file.clone()),
        ("q4_0 (requantized)", f32w.to_dtype(DType::Q4_0)?),
        ("q6_k (+ q8_0 fallback)", f32w.to_dtype(DType::Q6_K)?),
        ("q4_k (+ q5_0 fallback)", f32w.to_dtype(DType::Q4_K)?),
    ];
    drop(f32w);
    for (name, w) in variants {
        let bytes = w.bytes_per_token() as f64;
        let mut lm = Llama::new(w, ctx, 1)?.with_cache_type(CacheType::F16)?;
        let p =
            decode::perplexity::perplexity(&mut lm, &ids[..ctx * chunks], ctx, None, |_, _| {})?;
        let tps = decode_speed(&mut lm, 64)?;
        let ceiling = bw / bytes;
        println!(
            "{name:<22} {:>9.1} {:>8.3} ± {:<5.3} {tps:>11.1} {ceiling:>9.0} {:>8.0}%",
            bytes / 1e6,
            p.ppl,
            p.plus_minus,
            100.0 * tps / ceiling
        );
    }
    println!("ANCHOR_END: quality");
    cache_types(file, &ids[..ctx * chunks], ctx)
}

/// The file's weights over the same chunks with each KV-cache type: what
/// the cache's rounding costs in perplexity, beside what it saves.
fn cache_types(file: &LlamaWeights, ids: &[u32], ctx: usize) -> Result<()> {
    let shape = file.config.kv_shape();
    println!("ANCHOR: cache_types");
    println!(
        "{:<8} {:>16} {:>16}",
        "cache", "KiB per position", "perplexity"
    );
    for ty in [CacheType::F32, CacheType::F16, CacheType::Q8_0] {
        let per_position = 2 * shape.n_layers * shape.n_kv_heads * ty.bytes_for(shape.head_dim);
        let mut lm = Llama::new(file.clone(), ctx, 1)?.with_cache_type(ty)?;
        let p = decode::perplexity::perplexity(&mut lm, ids, ctx, None, |_, _| {})?;
        println!(
            "{:<8} {:>16.1} {:>8.3} ± {:<5.3}",
            format!("{ty:?}").to_lowercase(),
            per_position as f64 / 1024.0,
            p.ppl,
            p.plus_minus
        );
    }
    println!("ANCHOR_END: cache_types");
    Ok(())
}

/// A GPT-2 with random weight-like matrices, 256 wide (whole super-blocks
/// for the K-quants), two blocks, a vocabulary of 1024.
fn random_gpt2() -> Result<Gpt2Weights> {
    let (d, v, n_pos) = (256, 1024, 64);
    let mut seed = 0;
    let mut matrix = |rows: usize, cols: usize| -> Result<Tensor> {
        seed += 1;
        // A different slice of the same stream for every matrix.
        let x = weight_like(rows * cols * seed + rows * cols);
        Ok(Tensor::from_vec(
            x[rows * cols * seed..].to_vec(),
            &[rows, cols],
        )?)
    };
    let vector = |n: usize, value: f32| Tensor::full(&[n], value);
    let mut layers = Vec::new();
    for _ in 0..2 {
        layers.push(Gpt2Layer {
            ln1: (vector(d, 1.0)?, vector(d, 0.0)?),
            w_qkv: matrix(3 * d, d)?,
            b_qkv: vector(3 * d, 0.0)?,
            w_o: matrix(d, d)?,
            b_o: vector(d, 0.0)?,
            ln2: (vector(d, 1.0)?, vector(d, 0.0)?),
            w_fc: matrix(4 * d, d)?,
            b_fc: vector(4 * d, 0.0)?,
            w_proj: matrix(d, 4 * d)?,
            b_proj: vector(d, 0.0)?,
        });
    }
    Ok(Gpt2Weights {
        params: Gpt2Params {
            n_layer: 2,
            n_embd: d,
            n_head: 4,
            vocab_size: v,
            n_positions: n_pos,
            layer_norm_epsilon: 1e-5,
        },
        wte: matrix(v, d)?,
        wpe: matrix(n_pos, d)?,
        layers,
        ln_f: (vector(d, 1.0)?, vector(d, 0.0)?),
    })
}

/// Each format's logits on a random GPT-2 against the f32 model's, for one
/// decode step after a 7-token prompt (integer dot products).
fn gpt2_logit_error() -> Result<()> {
    println!("ANCHOR: gpt2");
    let w = random_gpt2()?;
    let prompt: Vec<u32> = vec![5, 77, 300, 1001, 42, 7, 650];
    let logits = |w: Gpt2Weights| -> Result<Vec<f32>> {
        let mut m = Gpt2::new(w, 16, 1)?.with_cache_type(CacheType::F32)?;
        m.forward(&[(0, &prompt)], model::batch::LogitsFor::Last)?;
        Ok(m.forward(&[(0, &[9])], model::batch::LogitsFor::Last)?
            .remove(0))
    };
    let exact = logits(w.clone())?;
    let spread = (exact.iter().map(|x| x * x).sum::<f32>() / exact.len() as f32).sqrt();
    println!("random GPT-2 (256 wide, 2 blocks, vocabulary 1024): logits of one decode step");
    println!("against the f32 model's (rms of the f32 logits: {spread:.3})");
    println!(
        "{:<6} {:>8} {:>14} {:>14}",
        "format", "bits/w", "mean |error|", "max |error|"
    );
    for (dt, bits) in [
        (DType::F16, 16.0),
        (DType::BF16, 16.0),
        (DType::Q8_0, 8.5),
        (DType::Q6_K, 6.5625),
        (DType::Q5_0, 5.5),
        (DType::Q4_1, 5.0),
        (DType::Q4_K, 4.5),
        (DType::Q4_0, 4.5),
    ] {
        let got = logits(w.to_dtype(dt)?)?;
        let err: Vec<f32> = got.iter().zip(&exact).map(|(a, b)| (a - b).abs()).collect();
        let mean = err.iter().sum::<f32>() / err.len() as f32;
        let max = err.iter().fold(0f32, |m, e| m.max(*e));
        println!("{:<6} {bits:>8.2} {mean:>14.4} {max:>14.4}", dt.to_string());
    }
    println!("ANCHOR_END: gpt2");
    Ok(())
}

fn main() -> Result<()> {
    formats()?;
    integer_dot()?;
    let path = model::model_path::find_default_model()?;
    let w = LlamaWeights::from_gguf(&GgufFile::open(&path)?, |_, _| {})?;
    scales()?;
    k_quants()?;
    memory(w.n_params());
    gpt2_logit_error()?;
    quality_and_speed(&w)
}
