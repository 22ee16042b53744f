//! Shared helpers for the integration tests: fixture paths, the real model,
//! and the `infer` commands run in-process.

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use model::llama::LlamaWeights;

#[path = "serve_client.rs"]
pub mod serve_client;

/// Directory of a committed fixture, e.g. `fixture_dir("gpt2-tiny-a")`.
pub fn fixture_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// Parse a JSON fixture file.
pub fn read_json(path: &std::path::Path) -> serde_json::Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// A JSON array of numbers as f32.
pub fn f32s(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number") as f32)
        .collect()
}

/// A JSON array of numbers as token ids.
pub fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_u64().expect("id") as u32)
        .collect()
}

/// Largest `|a[i] - b[i]|` and its index.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> (f32, usize) {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .enumerate()
        .map(|(i, (x, y))| ((x - y).abs(), i))
        .fold((0.0, 0), |m, d| if d.0 > m.0 { d } else { m })
}

/// Assert `max |a - b| <= tol`, naming what is compared, the index and the gap.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    let (d, i) = max_abs_diff(got, want);
    assert!(
        d <= tol,
        "{what}: max abs diff {d:e} at index {i} (got {}, want {}) exceeds {tol:e}",
        got[i],
        want[i]
    );
    eprintln!("{what}: OK, max abs diff {d:e} (tolerance {tol:e})");
}

/// SmolLM2's last-position `logits` for one prompt of the `transformers`
/// fixture (`p`, an entry of tests/fixtures/smollm2/reference.json's
/// `logits`): the same argmax, and the top-20 and the sampled logits
/// (`sample_idx`) within `tol`. `label` names the prompt, `device` (if
/// any) where the logits came from.
pub fn assert_smollm2_reference(
    label: &str,
    device: Option<&str>,
    logits: &[f32],
    p: &serde_json::Value,
    sample_idx: &[u32],
    tol: f32,
) {
    assert_eq!(
        engine::kernels::argmax(logits) as u64,
        p["argmax"].as_u64().unwrap(),
        "{label} argmax"
    );
    let on = device.map(|d| format!(" on {d}")).unwrap_or_default();
    let pick = |idx: &[u32]| -> Vec<f32> { idx.iter().map(|&t| logits[t as usize]).collect() };
    assert_close(
        &format!("{label} top-20 logits{on}"),
        &pick(&ids(&p["top_ids"])),
        &f32s(&p["top_logits"]),
        tol,
    );
    assert_close(
        &format!("{label} 256 sampled logits"),
        &pick(sample_idx),
        &f32s(&p["sample_logits"]),
        tol,
    );
}

/// Path of the real SmolLM2 model. Panics, naming the fetch command, if it
/// is missing (CI fetches it before the tests run).
pub fn smollm2_path() -> PathBuf {
    model::model_path::find_default_model().unwrap_or_else(|e| {
        panic!("SmolLM2 is needed for this test: {e} (run scripts/fetch-model.sh)")
    })
}

/// SmolLM2's weights as the file stores them (Q4_1 blocks, Q8_0
/// embeddings), loaded once per test binary and shared: what `infer` runs.
pub fn smollm2_weights() -> &'static LlamaWeights {
    static W: OnceLock<LlamaWeights> = OnceLock::new();
    W.get_or_init(|| {
        let g = model::gguf::GgufFile::open(smollm2_path()).expect("open SmolLM2 GGUF");
        LlamaWeights::from_gguf(&g, |_, _| {}).expect("load SmolLM2 weights")
    })
}

/// SmolLM2's weights dequantized to f32 (`--dtype f32`): what the
/// `transformers` fixtures were computed from.
pub fn smollm2_weights_f32() -> &'static LlamaWeights {
    static W: OnceLock<LlamaWeights> = OnceLock::new();
    W.get_or_init(|| {
        smollm2_weights()
            .to_dtype(engine::DType::F32)
            .expect("widen SmolLM2 weights")
    })
}

/// Serialises the tests of one binary that run a model: so that two of
/// them do not fight over the two cores (each still uses the whole thread
/// pool), and because `infer bench --profile` reads process-wide counters
/// (time by op and by weight, hand-offs to the pool) that a model run by a
/// concurrent test would add to.
pub fn heavy_lock() -> std::sync::MutexGuard<'static, ()> {
    static L: Mutex<()> = Mutex::new(());
    L.lock().unwrap_or_else(|e| e.into_inner())
}

/// Run `infer ARGS…` in this process, through the same entry point as the
/// binary, and return what it printed (the tests cannot run the built
/// binary itself).
///
/// # Errors
/// A usage error from the argument parser, or the command's own error.
pub fn try_infer(args: &[&str]) -> anyhow::Result<String> {
    use clap::Parser;
    let cli = infer::Cli::try_parse_from(std::iter::once("infer").chain(args.iter().copied()))?;
    let mut out = Vec::new();
    infer::run(cli, &mut out)?;
    Ok(String::from_utf8(out)?)
}

/// [`try_infer`] for a command that must succeed: panics with the
/// arguments and the error otherwise.
pub fn infer(args: &[&str]) -> String {
    try_infer(args).unwrap_or_else(|e| panic!("infer {args:?}: {e:#}"))
}

/// [`infer()`] for a command that prints JSON (`--json`), parsed.
pub fn infer_json(args: &[&str]) -> serde_json::Value {
    let text = infer(args);
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("infer {args:?} printed non-JSON ({e}): {text}"))
}

/// `(Σ b, Σ b·(i + 1))` over the bytes, wrapping: the fingerprint the
/// fixture scripts keep of a tensor's or a whole file's bytes.
pub fn byte_fingerprint(bytes: &[u8]) -> (u64, u64) {
    bytes
        .iter()
        .zip(1u64..)
        .fold((0u64, 0u64), |(s, w), (&b, i)| {
            (
                s.wrapping_add(u64::from(b)),
                w.wrapping_add(u64::from(b).wrapping_mul(i)),
            )
        })
}

/// GPU 0, or `None` after printing why there is none.
pub fn gpu() -> Option<engine::Device> {
    match engine::Device::cuda(0) {
        Ok(d) => Some(d),
        Err(e) => {
            eprintln!("skipped: {e}");
            None
        }
    }
}

/// A random Llama-family model (grouped-query attention 4/2, SwiGLU) in
/// `dtype`, small enough to build in the test: the Llama path on a GPU
/// without the 98 MB model file.
pub fn random_llama(dtype: engine::DType) -> LlamaWeights {
    let c = model::llama::LlamaConfig {
        n_layers: 3,
        d_model: 64,
        n_heads: 4,
        n_kv_heads: 2,
        head_dim: 16,
        ffn_dim: 160,
        vocab_size: 320,
        rope_theta: 10_000.0,
        rms_eps: 1e-5,
        max_positions: 256,
    };
    let mut seed = 0x2545_f491_u64;
    let mut r = |n: usize, scale: f32| -> Vec<f32> {
        (0..n)
            .map(|_| {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                ((seed >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
            })
            .collect()
    };
    let d = c.d_model;
    let mut m = |rows: usize, cols: usize| {
        engine::Tensor::from_vec(r(rows * cols, 0.25), &[rows, cols])
            .and_then(|t| t.to_dtype(dtype))
            .unwrap()
    };
    let (q, kv) = (c.n_heads * c.head_dim, c.n_kv_heads * c.head_dim);
    let mut layers: Vec<model::llama::LlamaLayer> = (0..c.n_layers)
        .map(|_| model::llama::LlamaLayer {
            attn_norm: engine::Tensor::zeros(&[d]).unwrap(),
            wq: m(q, d),
            wk: m(kv, d),
            wv: m(kv, d),
            wo: m(d, q),
            ffn_norm: engine::Tensor::zeros(&[d]).unwrap(),
            w_gate: m(c.ffn_dim, d),
            w_up: m(c.ffn_dim, d),
            w_down: m(d, c.ffn_dim),
        })
        .collect();
    let tok_embd = m(c.vocab_size, d);
    let mut norm = || {
        let v: Vec<f32> = r(d, 1.0).iter().map(|x| 1.0 + 0.2 * x).collect();
        engine::Tensor::from_vec(v, &[d]).unwrap()
    };
    for l in &mut layers {
        l.attn_norm = norm();
        l.ffn_norm = norm();
    }
    LlamaWeights {
        out_norm: norm(),
        tok_embd,
        lm_head: None,
        layers,
        config: c,
    }
}
