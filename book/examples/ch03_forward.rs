//! Chapter 3: the forward pass, written out plainly for one prompt, with the
//! shape of every intermediate; then checked against the crate's model.
//!
//! `cargo run --release --example ch03_forward`
//! GPT-2 uses the small random-weight fixture in the repository; the Llama
//! part needs SmolLM2 (`scripts/fetch-model.sh`). The output carries
//! `ANCHOR:` lines so the chapter can include sections.

use anyhow::Result;
use engine::kernels as k;
use engine::{DType, Tensor};
use model::batch::LogitsFor;
use model::gguf::GgufFile;
use model::gpt2::{Gpt2, Gpt2Weights};
use model::llama::{Llama, LlamaWeights};

/// Print one step: its name, shape and the first values of the last row.
fn show(name: &str, shape: &[usize], data: &[f32]) {
    let row = *shape.last().unwrap_or(&1);
    let last = &data[data.len() - row..];
    let head: Vec<String> = last.iter().take(3).map(|x| format!("{x:+.4}")).collect();
    println!(
        "  {name:<44} {:<16} [{} ...]",
        format!("{shape:?}"),
        head.join(", ")
    );
}

/// `y = x · wᵀ (+ b)` on `t` rows.
fn linear(x: &[f32], t: usize, w: &[f32], out_dim: usize, b: Option<&[f32]>) -> Vec<f32> {
    let in_dim = x.len() / t;
    let mut y = vec![0.0; t * out_dim];
    k::matmul_bt(x, w, t, in_dim, out_dim, &mut y);
    if let Some(b) = b {
        for row in y.chunks_exact_mut(out_dim) {
            k::add_inplace(row, b);
        }
    }
    y
}

/// Causal attention, plainly: for each head, scores = q·kᵀ/√d over the
/// positions up to the query's own, softmax, weighted sum of v. Query head
/// `h` reads KV head `h / group` (grouped-query attention; group 1 = GPT-2).
fn attention(
    q: &[f32],
    kk: &[f32],
    v: &[f32],
    t: usize,
    n_heads: usize,
    n_kv: usize,
    hd: usize,
) -> Vec<f32> {
    let group = n_heads / n_kv;
    let mut out = vec![0.0; t * n_heads * hd];
    for h in 0..n_heads {
        let kvh = h / group;
        for i in 0..t {
            let qi = &q[(i * n_heads + h) * hd..][..hd];
            let mut scores: Vec<f32> = (0..=i)
                .map(|j| k::dot(qi, &kk[(j * n_kv + kvh) * hd..][..hd]) / (hd as f32).sqrt())
                .collect();
            k::softmax_inplace(&mut scores);
            let o = &mut out[(i * n_heads + h) * hd..][..hd];
            for (j, p) in scores.iter().enumerate() {
                k::axpy(*p, &v[(j * n_kv + kvh) * hd..][..hd], o);
            }
        }
    }
    out
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn gpt2() -> Result<()> {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/gpt2-tiny-a");
    // The plain pass below works on f32 slices (`f`); the fixture is f32
    // already, and widening makes any file's matrices so.
    let w = Gpt2Weights::from_hf_dir(&dir)?.to_dtype(DType::F32)?;
    let p = w.params.clone();
    let (d, nh, hd) = (p.n_embd, p.n_head, p.head_dim());
    let ids = [11u32, 7, 250, 31, 999];
    let t = ids.len();
    println!("ANCHOR: gpt2");
    println!(
        "GPT-2 (random tiny): {} layers, d = {d}, {nh} heads of {hd}, vocab {}, {} positions; prompt of T = {t} tokens",
        p.n_layer, p.vocab_size, p.n_positions
    );
    let mut x = vec![0.0; t * d];
    for (i, &id) in ids.iter().enumerate() {
        let row = &mut x[i * d..(i + 1) * d];
        row.copy_from_slice(&f(&w.wte)[id as usize * d..][..d]);
        k::add_inplace(row, &f(&w.wpe)[i * d..][..d]);
    }
    show("x = wte[ids] + wpe[0..T]", &[t, d], &x);
    for (li, l) in w.layers.iter().enumerate() {
        let verbose = li == 0;
        if verbose {
            println!(" block 0:");
        }
        let mut xn = vec![0.0; t * d];
        for (r, o) in x.chunks_exact(d).zip(xn.chunks_exact_mut(d)) {
            k::layernorm(r, f(&l.ln1.0), f(&l.ln1.1), p.layer_norm_epsilon, o);
        }
        let ln1 = xn.clone();
        let qkv = linear(&xn, t, f(&l.w_qkv), 3 * d, Some(f(&l.b_qkv)));
        let (mut q, mut kk, mut v) = (Vec::new(), Vec::new(), Vec::new());
        for row in qkv.chunks_exact(3 * d) {
            q.extend_from_slice(&row[..d]);
            kk.extend_from_slice(&row[d..2 * d]);
            v.extend_from_slice(&row[2 * d..]);
        }
        let a = attention(&q, &kk, &v, t, nh, nh, hd);
        let o = linear(&a, t, f(&l.w_o), d, Some(f(&l.b_o)));
        k::add_inplace(&mut x, &o);
        let x_attn = x.clone();
        for (r, o) in x.chunks_exact(d).zip(xn.chunks_exact_mut(d)) {
            k::layernorm(r, f(&l.ln2.0), f(&l.ln2.1), p.layer_norm_epsilon, o);
        }
        let mut h = linear(&xn, t, f(&l.w_fc), 4 * d, Some(f(&l.b_fc)));
        let h_pre = h.clone();
        k::gelu_tanh_inplace(&mut h);
        let o2 = linear(&h, t, f(&l.w_proj), d, Some(f(&l.b_proj)));
        k::add_inplace(&mut x, &o2);
        if verbose {
            show("ln_1(x)", &[t, d], &ln1);
            show("qkv = ln_1(x)·W_attnᵀ + b  (fused)", &[t, 3 * d], &qkv);
            show("q, k, v: split in heads", &[t, nh, hd], &q);
            show("attention: softmax(q·kᵀ/√d, causal)·v", &[t, nh * hd], &a);
            show("x + attn·W_projᵀ + b", &[t, d], &x_attn);
            show("mlp: ln_2 → c_fc", &[t, 4 * d], &h_pre);
            show("gelu (tanh)", &[t, 4 * d], &h);
            show("x + c_proj(gelu(...))", &[t, d], &x);
        }
    }
    println!(" blocks 1..{}: the same shapes", p.n_layer - 1);
    let mut xn = vec![0.0; d];
    k::layernorm(
        &x[(t - 1) * d..],
        f(&w.ln_f.0),
        f(&w.ln_f.1),
        p.layer_norm_epsilon,
        &mut xn,
    );
    show("ln_f(x[T-1])", &[1, d], &xn);
    let mut logits = vec![0.0; p.vocab_size];
    k::matvec(f(&w.wte), p.vocab_size, d, &xn, &mut logits);
    show(
        "logits = wte · ln_f(x)  (tied head)",
        &[1, p.vocab_size],
        &logits,
    );
    let mut m = Gpt2::new(w, 64, 1)?;
    let model_logits = m.forward(&[(0, &ids)], LogitsFor::Last)?.remove(0);
    println!(
        " next token {} ; max |plain - model::gpt2| over the logits = {:e}",
        k::argmax(&logits),
        max_diff(&logits, &model_logits)
    );
    println!("ANCHOR_END: gpt2");
    Ok(())
}

/// A weight widened to f32 (see `gpt2` and `llama`) as a slice.
fn f(t: &Tensor) -> &[f32] {
    t.as_f32_slice().expect("widened to f32 above")
}

fn llama() -> Result<()> {
    let path = model::model_path::find_default_model()?;
    let tokenizer = model::tokenizer::Tokenizer::from_gguf(&GgufFile::open(&path)?)?;
    // The plain pass below works on f32 slices, so widen the file's
    // quantized weights once (the quantization chapter runs them as they are stored).
    let w = LlamaWeights::from_gguf(&GgufFile::open(&path)?, |_, _| {})?.to_dtype(DType::F32)?;
    let c = w.config.clone();
    let (d, nh, nkv, hd, ffn) = (c.d_model, c.n_heads, c.n_kv_heads, c.head_dim, c.ffn_dim);
    let (qd, kvd) = (nh * hd, nkv * hd);
    let ids = tokenizer.encode("The capital of France is");
    let t = ids.len();
    println!("ANCHOR: llama");
    println!(
        "SmolLM2: {} layers, d = {d}, {nh} query heads / {nkv} kv heads of {hd}, SwiGLU {ffn}, vocab {}, RoPE θ = {}; prompt {:?} = {t} tokens",
        c.n_layers, c.vocab_size, c.rope_theta, "The capital of France is"
    );
    let mut x = vec![0.0; t * d];
    for (i, &id) in ids.iter().enumerate() {
        x[i * d..(i + 1) * d].copy_from_slice(&f(&w.tok_embd)[id as usize * d..][..d]);
    }
    show("x = tok_embd[ids]  (no position embedding)", &[t, d], &x);
    for (li, l) in w.layers.iter().enumerate() {
        let verbose = li == 0;
        let mut xn = vec![0.0; t * d];
        for (r, o) in x.chunks_exact(d).zip(xn.chunks_exact_mut(d)) {
            k::rmsnorm(r, f(&l.attn_norm), c.rms_eps, o);
        }
        let norm1 = xn.clone();
        let mut q = linear(&xn, t, f(&l.wq), qd, None);
        let mut kk = linear(&xn, t, f(&l.wk), kvd, None);
        let v = linear(&xn, t, f(&l.wv), kvd, None);
        let (q_raw, k_raw) = (q.clone(), kk.clone());
        for i in 0..t {
            k::rope_inplace(&mut q[i * qd..(i + 1) * qd], nh, hd, i, c.rope_theta);
            k::rope_inplace(&mut kk[i * kvd..(i + 1) * kvd], nkv, hd, i, c.rope_theta);
        }
        let a = attention(&q, &kk, &v, t, nh, nkv, hd);
        let o = linear(&a, t, f(&l.wo), d, None);
        k::add_inplace(&mut x, &o);
        let x_attn = x.clone();
        for (r, o) in x.chunks_exact(d).zip(xn.chunks_exact_mut(d)) {
            k::rmsnorm(r, f(&l.ffn_norm), c.rms_eps, o);
        }
        let gate = linear(&xn, t, f(&l.w_gate), ffn, None);
        let up = linear(&xn, t, f(&l.w_up), ffn, None);
        let mut act = gate.clone();
        k::silu_inplace(&mut act);
        k::mul_inplace(&mut act, &up);
        let o2 = linear(&act, t, f(&l.w_down), d, None);
        k::add_inplace(&mut x, &o2);
        if verbose {
            println!(" block 0:");
            show("rmsnorm(x)", &[t, d], &norm1);
            show("q = W_q·x", &[t, nh, hd], &q_raw);
            show("k = W_k·x, v = W_v·x  (3 kv heads)", &[t, nkv, hd], &k_raw);
            show("q after RoPE (position i)", &[t, nh, hd], &q);
            show("attention (head h reads kv head h/3)", &[t, nh * hd], &a);
            show("x + attn·W_oᵀ", &[t, d], &x_attn);
            show("gate = W_gate·rmsnorm(x)", &[t, ffn], &gate);
            show("silu(gate) ⊙ up", &[t, ffn], &act);
            show("x + W_down·(...)", &[t, d], &x);
        }
    }
    println!(" blocks 1..{}: the same shapes", c.n_layers - 1);
    let mut xn = vec![0.0; d];
    k::rmsnorm(&x[(t - 1) * d..], f(&w.out_norm), c.rms_eps, &mut xn);
    let mut logits = vec![0.0; c.vocab_size];
    k::matvec(f(&w.tok_embd), c.vocab_size, d, &xn, &mut logits);
    show(
        "logits = tok_embd · rmsnorm(x[T-1])",
        &[1, c.vocab_size],
        &logits,
    );
    let next = k::argmax(&logits) as u32;
    let mut m = Llama::new(w, 64, 1)?;
    let model_logits = m.forward(&[(0, &ids)], LogitsFor::Last)?.remove(0);
    println!(
        " next token {next} = {:?}; max |plain - model::llama| over the logits = {:e}",
        tokenizer.decode(&[next]),
        max_diff(&logits, &model_logits)
    );
    println!("ANCHOR_END: llama");
    Ok(())
}

fn main() -> Result<()> {
    gpt2()?;
    llama()
}
