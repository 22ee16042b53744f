//! Chapter 3: one attention head over three tokens, step by step, on small
//! fixed numbers, computed with the engine's own kernels (RoPE, dot,
//! softmax, axpy); then the engine's fused attention on the same inputs.
//!
//! `cargo run --release --example ch03_attention`
//! The output carries `ANCHOR:` lines so the chapter can include sections.
//! Every number is printed with three decimals, few enough that the plain
//! loops and the SIMD kernels print the same digits.

use engine::kernels::{self as k, AttnDims};

/// Tokens, and elements per head.
const T: usize = 3;
const D: usize = 4;
/// RoPE base of the original Llama (SmolLM2 uses 100 000).
const THETA: f32 = 10_000.0;

/// One row of numbers with three decimals; `None` prints as `-inf`.
fn row(xs: &[Option<f32>]) -> String {
    let cells: Vec<String> = xs
        .iter()
        .map(|x| match x {
            Some(v) => format!("{v:>7.3}"),
            None => format!("{:>7}", "-inf"),
        })
        .collect();
    format!("[{} ]", cells.join(""))
}

fn show(name: &str, m: &[f32], cols: usize) {
    println!("{name}");
    for (i, r) in m.chunks_exact(cols).enumerate() {
        let r: Vec<Option<f32>> = r.iter().map(|&v| Some(v)).collect();
        println!("  t{i} {}", row(&r));
    }
}

fn main() {
    // What W_q·x, W_k·x and W_v·x might give for three tokens: fixed numbers,
    // so that the arithmetic below can be followed by hand.
    let mut q: Vec<f32> = vec![
        1.0, 0.0, 0.5, -0.5, //
        0.0, 1.0, -1.0, 0.5, //
        1.0, 1.0, 0.0, 0.0,
    ];
    let mut kk: Vec<f32> = vec![
        1.0, 0.0, 0.0, 1.0, //
        0.5, 0.5, 0.5, -0.5, //
        -1.0, 0.0, 1.0, 0.0,
    ];
    let v: Vec<f32> = vec![
        1.0, 0.0, 0.0, 0.0, //
        0.0, 2.0, 0.0, 0.0, //
        0.0, 0.0, 3.0, 3.0,
    ];

    println!("ANCHOR: inputs");
    println!("one head, head_dim d = {D}, T = {T} tokens (rows t0, t1, t2)");
    show("q (queries)", &q, D);
    show("k (keys)", &kk, D);
    show("v (values)", &v, D);
    println!("ANCHOR_END: inputs");

    println!("ANCHOR: rope");
    println!(
        "RoPE, base {THETA}: element i pairs with i + d/2 and turns by pos·θ_i, θ_i = base^(-2i/d)"
    );
    let angles: Vec<String> = (0..D / 2)
        .map(|i| format!("θ_{i} = {:.3}", THETA.powf(-2.0 * i as f32 / D as f32)))
        .collect();
    println!("  {}", angles.join(", "));
    for i in 0..T {
        k::rope_inplace(&mut q[i * D..(i + 1) * D], 1, D, i, THETA);
        k::rope_inplace(&mut kk[i * D..(i + 1) * D], 1, D, i, THETA);
    }
    show("q after RoPE (t_i at position i; t0 is not turned)", &q, D);
    show("k after RoPE", &kk, D);
    // The dot product of a rotated query and key depends on the distance.
    let (q0, k0) = ([1.0f32, 0.0, 0.5, -0.5], [1.0f32, 0.0, 0.0, 1.0]);
    let rotated_dot = |m: usize, n: usize| {
        let (mut a, mut b) = (q0, k0);
        k::rope_inplace(&mut a, 1, D, m, THETA);
        k::rope_inplace(&mut b, 1, D, n, THETA);
        k::dot(&a, &b)
    };
    let pairs: Vec<String> = [(2, 0), (7, 5), (50, 48), (2, 1), (7, 6)]
        .iter()
        .map(|&(m, n)| format!("({m},{n}) {:.3}", rotated_dot(m, n)))
        .collect();
    println!(
        "  q0·k0 rotated to positions (m, n): {}  (same m - n, same score)",
        pairs.join("  ")
    );
    println!("ANCHOR_END: rope");

    println!("ANCHOR: scores");
    let scale = 1.0 / (D as f32).sqrt();
    let mut scores = vec![0.0f32; T * T];
    for i in 0..T {
        for j in 0..T {
            scores[i * T + j] = k::dot(&q[i * D..(i + 1) * D], &kk[j * D..(j + 1) * D]);
        }
    }
    show(
        "scores S[i][j] = q_i · k_j  (row i: how much t_i matches each key)",
        &scores,
        T,
    );
    let scaled: Vec<f32> = scores.iter().map(|s| s * scale).collect();
    show(&format!("scaled S / √d = S × {scale:.3}"), &scaled, T);
    println!("causal mask: t_i may not look at t_j for j > i (set to -inf)");
    for i in 0..T {
        let r: Vec<Option<f32>> = (0..T)
            .map(|j| (j <= i).then_some(scaled[i * T + j]))
            .collect();
        println!("  t{i} {}", row(&r));
    }
    println!("ANCHOR_END: scores");

    println!("ANCHOR: softmax");
    // Softmax over the visible positions only: exp(-inf) = 0 for the rest.
    let mut probs = vec![0.0f32; T * T];
    for i in 0..T {
        let mut visible = scaled[i * T..i * T + i + 1].to_vec();
        k::softmax_inplace(&mut visible);
        probs[i * T..i * T + i + 1].copy_from_slice(&visible);
    }
    show("P = softmax of each row (each row sums to 1)", &probs, T);
    let mut out = vec![0.0f32; T * D];
    for i in 0..T {
        for j in 0..=i {
            k::axpy(
                probs[i * T + j],
                &v[j * D..(j + 1) * D],
                &mut out[i * D..(i + 1) * D],
            );
        }
    }
    show("output o_i = Σ_j P[i][j] · v_j", &out, D);
    // The engine's fused kernel: keys and values as a one-head cache of
    // capacity T, all three queries at once.
    let dims = AttnDims {
        n_heads: 1,
        n_kv_heads: 1,
        head_dim: D,
        capacity: T,
    };
    let mut fused = vec![0.0f32; T * D];
    k::attention_prefill(&q, &kk, &v, dims, 0, T, &mut fused);
    let diff = out
        .iter()
        .zip(&fused)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    println!(
        "engine::kernels::attention_prefill on the same q, k, v: same output to 1e-6: {}",
        diff < 1e-6
    );
    println!("ANCHOR_END: softmax");
}
