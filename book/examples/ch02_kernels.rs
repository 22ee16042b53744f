//! Chapter 2: fast CPU kernels — scalar vs SIMD vs threaded, measured on
//! the machine that runs this program.
//!
//! `cargo run --release --example ch02_kernels`
//! (The chapter includes this program's output, pasted by
//! `scripts/paste-chapter-output.sh ch02_kernels`. Figures are the best of
//! several runs; on a busy machine they move, the ratios less so.)

use std::hint::black_box;
use std::time::Instant;

use anyhow::Result;
use engine::kernels::{self, AttnDims, scalar};
use engine::{DType, Tensor, threads};

/// Best wall time in seconds of `reps` runs of `f` (after one warm-up).
fn best(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn random(n: usize, seed: u32) -> Vec<f32> {
    // A small xorshift: reproducible values in [-1, 1) without extra crates.
    let mut s = seed.wrapping_mul(2_654_435_761).max(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s as f32 / u32::MAX as f32) * 2.0 - 1.0
        })
        .collect()
}

/// One table row: what, unit, then scalar / SIMD 1 thread / SIMD all threads.
fn row(what: &str, unit: &str, figs: [Option<f64>; 3]) {
    let cell = |f: Option<f64>| f.map_or("-".to_string(), |v| format!("{v:.1}"));
    let speedup = match (figs[0], figs[2].or(figs[1])) {
        (Some(s), Some(f)) => format!("{:.1}x", f / s),
        _ => "-".into(),
    };
    println!(
        "| {what:<34} | {unit:<9} | {:>8} | {:>8} | {:>8} | {speedup:>7} |",
        cell(figs[0]),
        cell(figs[1]),
        cell(figs[2])
    );
}

fn main() -> Result<()> {
    let all = threads::default_num_threads();
    println!(
        "kernel level: {} (best this CPU offers: {})",
        kernels::level(),
        kernels::dispatch::detect()
    );
    println!("threads: {all} (physical cores)\n");
    println!(
        "| {:<34} | {:<9} | {:>8} | {:>8} | {:>8} | {:>7} |",
        "kernel",
        "unit",
        "scalar",
        "SIMD x1",
        &format!("SIMD x{all}"),
        "speedup"
    );
    println!(
        "|{:-<36}|{:-<11}|{:->10}|{:->10}|{:->10}|{:->9}|",
        "", "", "", "", "", ""
    );

    // Dot product over 1M floats (fits in L2/L3: compute-bound-ish).
    let n = 1 << 20;
    let (a, b) = (random(n, 1), random(n, 2));
    let flops = 2.0 * n as f64;
    let s = best(20, || {
        black_box(scalar::dot(black_box(&a), &b));
    });
    let v = best(20, || {
        black_box(kernels::dot(black_box(&a), &b));
    });
    row(
        "dot, 1M floats",
        "GFLOP/s",
        [Some(flops / s / 1e9), Some(flops / v / 1e9), None],
    );

    // Softmax and RMSNorm over a vocabulary-sized row.
    let n = 49152;
    let x = random(n, 3);
    let w = random(n, 4);
    let mut y = x.clone();
    let mut out = vec![0.0; n];
    let s = best(50, || {
        y.copy_from_slice(&x);
        scalar::softmax_inplace(&mut y);
    });
    let v = best(50, || {
        y.copy_from_slice(&x);
        kernels::softmax_inplace(&mut y);
    });
    row(
        "softmax, 49152",
        "Melem/s",
        [Some(n as f64 / s / 1e6), Some(n as f64 / v / 1e6), None],
    );
    let s = best(50, || scalar::rmsnorm(&x, &w, 1e-5, &mut out));
    let v = best(50, || kernels::rmsnorm(&x, &w, 1e-5, &mut out));
    row(
        "rmsnorm, 49152",
        "Melem/s",
        [Some(n as f64 / s / 1e6), Some(n as f64 / v / 1e6), None],
    );

    // The LM head of SmolLM2: 49152 x 576, read once per token.
    let (rows, cols) = (49152, 576);
    let wm = random(rows * cols, 5);
    let xv = random(cols, 6);
    let mut o = vec![0.0; rows];
    let bytes = (rows * cols * 4) as f64;
    let s = best(5, || scalar::matvec(&wm, rows, cols, &xv, &mut o));
    threads::set_num_threads(1)?;
    let r1 = best(10, || {
        black_box(kernels::stream_sum(black_box(&wm)));
    });
    let v1 = best(10, || kernels::matvec(&wm, rows, cols, &xv, &mut o));
    threads::set_num_threads(all)?;
    let rn = best(10, || {
        black_box(kernels::stream_sum(black_box(&wm)));
    });
    let vn = best(10, || kernels::matvec(&wm, rows, cols, &xv, &mut o));
    row(
        "stream read (yardstick), 113 MB",
        "GB/s",
        [None, Some(bytes / r1 / 1e9), Some(bytes / rn / 1e9)],
    );
    row(
        "matvec f32 49152x576",
        "GB/s",
        [
            Some(bytes / s / 1e9),
            Some(bytes / v1 / 1e9),
            Some(bytes / vn / 1e9),
        ],
    );
    let ratio = rn / vn;
    let wt = Tensor::from_vec(wm, &[rows, cols])?.to_dtype(DType::F16)?;
    let xt = Tensor::from_vec(xv, &[cols])?;
    let h = best(10, || {
        black_box(wt.matvec(&xt).ok());
    });
    row(
        "matvec f16 49152x576",
        "GB/s",
        [None, None, Some(bytes / 2.0 / h / 1e9)],
    );

    // Matrix-matrix: naive twin vs blocked sgemm.
    let n = 512;
    let (a, b) = (random(n * n, 7), random(n * n, 8));
    let mut c = vec![0.0; n * n];
    let flops = 2.0 * (n * n * n) as f64;
    let s = best(1, || scalar::matmul_bt(&a, &b, n, n, n, &mut c));
    let v = best(5, || kernels::matmul_bt(&a, &b, n, n, n, &mut c));
    row(
        "matmul 512^3 (sgemm threads)",
        "GFLOP/s",
        [Some(flops / s / 1e9), None, Some(flops / v / 1e9)],
    );

    // One decode step of attention over 1024 cached positions.
    let dims = AttnDims {
        n_heads: 9,
        n_kv_heads: 3,
        head_dim: 64,
        capacity: 1024,
    };
    let cache = 3 * 1024 * 64;
    let (k, vv, q) = (random(cache, 9), random(cache, 10), random(9 * 64, 11));
    let mut out = vec![0.0; 9 * 64];
    let s = best(20, || {
        scalar::attention_decode(&q, &k, &vv, dims, 1024, &mut out)
    });
    threads::set_num_threads(1)?;
    let v1 = best(20, || {
        kernels::attention_decode(&q, &k, &vv, dims, 1024, &mut out)
    });
    threads::set_num_threads(all)?;
    let vn = best(20, || {
        kernels::attention_decode(&q, &k, &vv, dims, 1024, &mut out)
    });
    let us = |t: f64| Some(1.0 / t / 1e3);
    row(
        "attention decode, 1024 positions",
        "k-steps/s",
        [us(s), us(v1), us(vn)],
    );

    println!(
        "\nmatvec f32 bandwidth / stream read bandwidth, {all} threads: {:.0}%",
        100.0 * ratio
    );
    Ok(())
}
