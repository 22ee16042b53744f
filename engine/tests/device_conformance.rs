//! One conformance suite for every device: each test runs an operation of
//! `engine::device::ops` on the device, with random shapes and values, and
//! compares it with the plain twins of `engine::kernels::scalar` (or an f64
//! sum) within a stated tolerance. The `conformance!` macro generates the
//! suite once per device: `cpu` always runs; `cuda` runs where a GPU is
//! present (build with `--features cuda`) and otherwise prints why it skips.

use engine::device::{Buffer, Rows, ops};
use engine::kernels::{AttnDims, scalar};
use engine::{DType, Device, EngineError, Result, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Random cases per test.
const CASES: usize = 12;

fn rng(test: &str) -> ChaCha8Rng {
    let seed = test
        .bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    ChaCha8Rng::seed_from_u64(seed)
}

fn values(r: &mut ChaCha8Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| r.gen_range(-scale..scale)).collect()
}

fn put(dev: &Device, v: &[f32]) -> Result<Buffer> {
    Buffer::from_host(dev, v)
}

/// `|got − want| ≤ abs + rel·|want|` everywhere.
fn close(what: &str, got: &[f32], want: &[f32], abs: f32, rel: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= abs + rel * w.abs(),
            "{what}[{i}]: got {g}, want {w} (abs {abs}, rel {rel})"
        );
    }
}

pub fn add_inplace(dev: &Device) -> Result<()> {
    let mut r = rng("add");
    for _ in 0..CASES {
        let n = r.gen_range(1..3000);
        let (x, y) = (values(&mut r, n, 10.0), values(&mut r, n, 10.0));
        let mut b = put(dev, &x)?;
        ops::add_inplace(&mut b, &put(dev, &y)?)?;
        let mut want = x.clone();
        scalar::add_inplace(&mut want, &y);
        // One rounded addition per element on every device: exact.
        assert_eq!(b.to_host()?, want);
    }
    Ok(())
}

pub fn add_bias_rows(dev: &Device) -> Result<()> {
    let mut r = rng("bias");
    for _ in 0..CASES {
        let (rows, d) = (r.gen_range(0..5), r.gen_range(1..300));
        let (x, b) = (values(&mut r, rows * d, 5.0), values(&mut r, d, 5.0));
        let mut xb = put(dev, &x)?;
        ops::add_bias_rows(&mut xb, &Tensor::from_vec(b.clone(), &[d])?.to_device(dev)?)?;
        let mut want = x.clone();
        for row in want.chunks_exact_mut(d) {
            scalar::add_inplace(row, &b);
        }
        assert_eq!(xb.to_host()?, want);
    }
    Ok(())
}

pub fn swiglu_rows(dev: &Device) -> Result<()> {
    let mut r = rng("swiglu");
    for _ in 0..CASES {
        let (rows, ffn) = (r.gen_range(1..5), r.gen_range(1..700));
        let gu = values(&mut r, rows * 2 * ffn, 8.0);
        let mut out = Buffer::zeros(dev, rows * ffn)?;
        ops::swiglu_rows(&mut put(dev, &gu)?, ffn, &mut out)?;
        let mut want = vec![0.0; rows * ffn];
        for (g, w) in gu.chunks_exact(2 * ffn).zip(want.chunks_exact_mut(ffn)) {
            let mut gate = g[..ffn].to_vec();
            scalar::silu_inplace(&mut gate);
            scalar::mul_to(w, &gate, &g[ffn..]);
        }
        // Two libm exps differ by a few ulp.
        close("swiglu", &out.to_host()?, &want, 1e-6, 1e-5);
    }
    Ok(())
}

pub fn gelu(dev: &Device) -> Result<()> {
    let mut r = rng("gelu");
    for _ in 0..CASES {
        let n = r.gen_range(1..2000);
        let x = values(&mut r, n, 6.0);
        let mut b = put(dev, &x)?;
        ops::gelu_tanh_inplace(&mut b)?;
        let mut want = x.clone();
        scalar::gelu_tanh_inplace(&mut want);
        close("gelu", &b.to_host()?, &want, 1e-6, 1e-5);
    }
    Ok(())
}

pub fn softmax_and_argmax(dev: &Device) -> Result<()> {
    let mut r = rng("softmax");
    for _ in 0..CASES {
        let (rows, n) = (r.gen_range(1..5), r.gen_range(1..5000));
        let mut x = values(&mut r, rows * n, 20.0);
        // A tie in the first row: the first index wins.
        if n > 3 {
            x[1] = 100.0;
            x[3] = 100.0;
        }
        let b = put(dev, &x)?;
        let chosen = ops::greedy_rows(&b, n)?;
        for (row, &(id, logprob)) in x.chunks_exact(n).zip(&chosen) {
            assert_eq!(id, scalar::argmax(row) as u32, "greedy id");
            // The chosen token's log-probability against an f64 softmax.
            let m = f64::from(row[id as usize]);
            let lse = m + row
                .iter()
                .map(|&v| (f64::from(v) - m).exp())
                .sum::<f64>()
                .ln();
            let want = m - lse;
            assert!(
                (f64::from(logprob) - want).abs() <= 1e-5 * want.abs().max(1.0),
                "greedy log-probability: got {logprob}, want {want}"
            );
        }
        // A row holding NaN: NaN log-probability, so the caller refuses it.
        let mut bad = x[..n].to_vec();
        bad[n / 2] = f32::NAN;
        let (_, logprob) = ops::greedy_rows(&put(dev, &bad)?, n)?[0];
        assert!(logprob.is_nan(), "NaN logits give a NaN log-probability");
        let mut b = b;
        ops::softmax_rows(&mut b, n)?;
        let mut want = x.clone();
        want.chunks_exact_mut(n).for_each(scalar::softmax_inplace);
        close("softmax", &b.to_host()?, &want, 1e-7, 1e-5);
    }
    Ok(())
}

pub fn norms(dev: &Device) -> Result<()> {
    let mut r = rng("norms");
    for _ in 0..CASES {
        let (rows, d) = (r.gen_range(1..5), r.gen_range(1..1100));
        let x = values(&mut r, rows * d, 3.0);
        let (w, bias) = (values(&mut r, d, 2.0), values(&mut r, d, 1.0));
        let wt = Tensor::from_vec(w.clone(), &[d])?.to_device(dev)?;
        let bt = Tensor::from_vec(bias.clone(), &[d])?.to_device(dev)?;
        let xb = put(dev, &x)?;
        let mut out = Buffer::zeros(dev, rows * d)?;
        ops::rmsnorm(&xb, &wt, 1e-5, &mut out)?;
        let mut want = vec![0.0; rows * d];
        for (xr, o) in x.chunks_exact(d).zip(want.chunks_exact_mut(d)) {
            scalar::rmsnorm(xr, &w, 1e-5, o);
        }
        // The sum of squares in another order: a few ulp of the scale.
        close("rmsnorm", &out.to_host()?, &want, 1e-5, 1e-5);
        ops::layernorm(&xb, &wt, &bt, 1e-5, &mut out)?;
        for (xr, o) in x.chunks_exact(d).zip(want.chunks_exact_mut(d)) {
            scalar::layernorm(xr, &w, &bias, 1e-5, o);
        }
        close("layernorm", &out.to_host()?, &want, 1e-5, 1e-5);
    }
    Ok(())
}

pub fn rope(dev: &Device) -> Result<()> {
    let mut r = rng("rope");
    for _ in 0..CASES {
        let (rows, hd, heads) = (
            r.gen_range(1..6),
            2 * r.gen_range(1..65),
            r.gen_range(1..10),
        );
        let stride = heads * hd + r.gen_range(0..40);
        let positions: Vec<u32> = (0..rows).map(|_| r.gen_range(0..4096)).collect();
        let mut angles = Buffer::zeros(dev, rows * hd)?;
        ops::rope_angles(&positions, hd, 10_000.0, &mut angles)?;
        let mut want_angles = vec![0.0; rows * hd];
        for (&p, a) in positions.iter().zip(want_angles.chunks_exact_mut(hd)) {
            scalar::rope_angles(hd, p as usize, 10_000.0, a);
        }
        // An ulp of θ^(−2i/d) from another powf, times the position,
        // moves the angle by up to 4096 · 6e-8 rad.
        let got_angles = angles.to_host()?;
        close("rope_angles", &got_angles, &want_angles, 5e-4, 0.0);
        let x = values(&mut r, rows * stride, 2.0);
        let mut b = put(dev, &x)?;
        ops::rope_rotate(&mut b, stride, heads, hd, &put(dev, &want_angles)?)?;
        let mut want = x.clone();
        for (row, a) in want
            .chunks_exact_mut(stride)
            .zip(want_angles.chunks_exact(hd))
        {
            scalar::rope_rotate(&mut row[..heads * hd], heads, hd, a);
        }
        close("rope_rotate", &b.to_host()?, &want, 1e-6, 1e-6);
    }
    Ok(())
}

fn weight(r: &mut ChaCha8Rng, dtype: DType, rows: usize, cols: usize) -> Result<Tensor> {
    Tensor::from_vec(values(r, rows * cols, 1.0), &[rows, cols])?.to_dtype(dtype)
}

pub fn embed(dev: &Device) -> Result<()> {
    let mut r = rng("embed");
    for dtype in DType::ALL {
        let (rows, cols) = (
            r.gen_range(1..30),
            dtype.block_len().max(32) * r.gen_range(1..4),
        );
        let w = weight(&mut r, dtype, rows, cols)?;
        let table = w.to_vec_f32()?;
        let ids: Vec<u32> = (0..r.gen_range(1..6))
            .map(|_| r.gen_range(0..rows as u32))
            .collect();
        let mut out = Buffer::zeros(dev, ids.len() * cols)?;
        ops::embed(&w.to_device(dev)?, &ids, &mut out)?;
        let want: Vec<f32> = ids
            .iter()
            .flat_map(|&i| table[i as usize * cols..(i as usize + 1) * cols].to_vec())
            .collect();
        // The same block arithmetic; a fused multiply-add may round once
        // instead of twice.
        close(
            &format!("embed {dtype}"),
            &out.to_host()?,
            &want,
            1e-6,
            1e-6,
        );
        let bad = [rows as u32];
        assert!(matches!(
            ops::embed(&w.to_device(dev)?, &bad, &mut Buffer::zeros(dev, cols)?),
            Err(EngineError::OutOfRange { .. })
        ));
    }
    Ok(())
}

pub fn linear(dev: &Device) -> Result<()> {
    let mut r = rng("linear");
    for dtype in DType::ALL {
        for case in 0..5 {
            let block = dtype.block_len().max(32);
            // Up to 4 rows (a decode batch); in the third case 8 to 40 (a
            // prompt: cuBLAS's sgemm for an f32 weight on a GPU), in the
            // fifth 64 to 100 (sgemm for every weight, widened to f32 on the
            // GPU first). The fourth is one row too wide for a GPU to stage
            // in shared memory.
            let t = match case {
                2 => r.gen_range(8..41),
                4 => r.gen_range(64..101),
                _ => r.gen_range(1..5),
            };
            let (rows, cols) = if case == 3 {
                (r.gen_range(1..6), 12_288 + block)
            } else {
                (r.gen_range(1..40), block * r.gen_range(1..4))
            };
            let w = weight(&mut r, dtype, rows, cols)?;
            let wf = w.to_vec_f32()?;
            let x = values(&mut r, t * cols, 2.0);
            let mut out = Buffer::zeros(dev, t * rows)?;
            ops::linear(&put(dev, &x)?, t, &w.to_device(dev)?, &mut out)?;
            let got = out.to_host()?;
            // The CPU multiplies a quantized weight by 8-bit activations:
            // each activation is off by at most 0.6 of its block's step
            // (amax/127, stored as f16). Elsewhere the activations are
            // exact and only the f32 sums' order differs.
            let act_error = dev.is_cpu() && dtype.is_quantized();
            for ti in 0..t {
                let xt = &x[ti * cols..(ti + 1) * cols];
                let steps: Vec<f32> = xt
                    .chunks(dtype.block_len().max(1))
                    .flat_map(|b| {
                        let amax = b.iter().fold(0f32, |m, v| m.max(v.abs()));
                        std::iter::repeat_n(amax / 127.0, b.len())
                    })
                    .collect();
                for ri in 0..rows {
                    let wr = &wf[ri * cols..(ri + 1) * cols];
                    let exact: f64 = wr
                        .iter()
                        .zip(xt)
                        .map(|(a, b)| f64::from(*a) * f64::from(*b))
                        .sum();
                    let magnitude: f64 = wr
                        .iter()
                        .zip(xt)
                        .map(|(a, b)| f64::from((a * b).abs()))
                        .sum();
                    let quant: f64 = if act_error {
                        wr.iter()
                            .zip(&steps)
                            .map(|(a, s)| f64::from(a.abs() * 0.6 * s))
                            .sum()
                    } else {
                        0.0
                    };
                    let bound = quant + 1e-5 * magnitude + 1e-5;
                    let g = f64::from(got[ti * rows + ri]);
                    assert!(
                        (g - exact).abs() <= bound,
                        "linear {dtype} [{ti}][{ri}] ({rows}×{cols}, t {t}): got {g}, want {exact} ± {bound}"
                    );
                }
            }
        }
    }
    Ok(())
}

pub fn attention_and_kv_write(dev: &Device) -> Result<()> {
    let mut r = rng("attention");
    for _ in 0..CASES {
        let n_kv = r.gen_range(1..4);
        let dims = AttnDims {
            n_heads: n_kv * r.gen_range(1..4),
            n_kv_heads: n_kv,
            head_dim: r.gen_range(1..80),
            capacity: r.gen_range(8..300),
        };
        let (hd, cap) = (dims.head_dim, dims.capacity);
        let rows = r.gen_range(1..5).min(cap);
        let start = r.gen_range(1..=cap - rows + 1);
        // Two layers' blocks; this layer's is the second.
        let block = n_kv * cap * hd;
        let at = block;
        let (k0, v0) = (
            values(&mut r, 2 * block, 1.5),
            values(&mut r, 2 * block, 1.5),
        );
        // The new rows' keys and values sit inside wider rows (as in the
        // fused QKV rows), past a few leading rows.
        let stride = n_kv * hd + r.gen_range(0..5);
        let lead = r.gen_range(0..3);
        let src = Rows {
            at: lead * stride + r.gen_range(0..=stride - n_kv * hd),
            stride,
            count: rows,
        };
        // Keys and values in one source buffer, the values' rows after the keys'.
        let half = (lead + rows) * stride;
        let both = values(&mut r, 2 * half, 1.5);
        let (kn, vn) = both.split_at(half);
        let vsrc = Rows {
            at: half + src.at,
            ..src
        };
        let (mut k, mut v) = (put(dev, &k0)?, put(dev, &v0)?);
        let first = start - 1;
        ops::kv_write(
            &mut k,
            &mut v,
            at,
            &put(dev, &both)?,
            src,
            vsrc,
            dims,
            first,
        )?;
        let (mut kw, mut vw) = (k0.clone(), v0.clone());
        for ri in 0..rows {
            for g in 0..n_kv {
                let to = at + (g * cap + first + ri) * hd;
                let from = src.at + ri * stride + g * hd;
                kw[to..to + hd].copy_from_slice(&kn[from..from + hd]);
                vw[to..to + hd].copy_from_slice(&vn[from..from + hd]);
            }
        }
        assert_eq!(k.to_host()?, kw, "kv_write keys");
        assert_eq!(v.to_host()?, vw, "kv_write values");

        let row = dims.n_heads * hd;
        let qr = Rows {
            at: r.gen_range(0..9),
            stride: row + r.gen_range(0..7),
            count: rows,
        };
        let or = Rows {
            at: r.gen_range(0..9),
            stride: row + r.gen_range(0..7),
            count: rows,
        };
        let q = values(&mut r, qr.at + rows * qr.stride, 1.5);
        let mut out = put(dev, &vec![0.0; or.at + rows * or.stride])?;
        ops::attention(&put(dev, &q)?, qr, &k, &v, at, dims, start, &mut out, or)?;
        let got = out.to_host()?;
        for ri in 0..rows {
            let mut want = vec![0.0; row];
            let qrow = &q[qr.at + ri * qr.stride..][..row];
            scalar::attention_decode(qrow, &kw[at..], &vw[at..], dims, start + ri, &mut want);
            close(
                "attention",
                &got[or.at + ri * or.stride..][..row],
                &want,
                1e-5,
                1e-4,
            );
        }
        // A position past the capacity is an error, not a read out of bounds.
        let err = ops::attention(&put(dev, &q)?, qr, &k, &v, at, dims, cap + 1, &mut out, or);
        assert!(matches!(err, Err(EngineError::ShapeMismatch { .. })));
    }
    Ok(())
}

/// Rows gathered by index.
pub fn gather(dev: &Device) -> Result<()> {
    let mut r = rng("copy");
    for _ in 0..CASES {
        let width = r.gen_range(1..50);
        let n = r.gen_range(1..8);
        let table = values(&mut r, n * width, 4.0);
        let picks: Vec<usize> = (0..r.gen_range(0..6)).map(|_| r.gen_range(0..n)).collect();
        let mut g = Buffer::zeros(dev, picks.len() * width)?;
        ops::gather_rows(&put(dev, &table)?, width, &picks, &mut g)?;
        let want: Vec<f32> = picks
            .iter()
            .flat_map(|&p| table[p * width..(p + 1) * width].to_vec())
            .collect();
        assert_eq!(g.to_host()?, want, "gather_rows");
        let bad = ops::gather_rows(
            &put(dev, &table)?,
            width,
            &[n],
            &mut Buffer::zeros(dev, width)?,
        );
        assert!(bad.is_err(), "a row past the end");
    }
    Ok(())
}

/// A buffer's own operations: fit keeps values, read/write/copy move the
/// runs asked for, and ranges past the end are errors.
pub fn buffer_moves(dev: &Device) -> Result<()> {
    let mut r = rng("buffer");
    for _ in 0..CASES {
        let n = r.gen_range(1..200);
        let x = values(&mut r, n, 4.0);
        let mut b = put(dev, &x)?;
        let m = r.gen_range(0..n);
        b.fit(m)?;
        assert_eq!(b.to_host()?, x[..m].to_vec());
        b.fit(n)?;
        assert_eq!(b.len(), n);
        // Growing past the allocation keeps what was there.
        b.fit(2 * n + 7)?;
        assert_eq!(
            b.read(0..m)?,
            x[..m].to_vec(),
            "fit keeps the values it had"
        );
        b.fit(n)?;
        b.write(0, &x)?;
        let (from, at) = (r.gen_range(0..n), r.gen_range(0..n));
        let len = r.gen_range(0..=n - from.max(at));
        b.copy_within(from, at, len)?;
        let mut want = x.clone();
        want.copy_within(from..from + len, at);
        assert_eq!(b.to_host()?, want, "copy_within");
        assert_eq!(b.read(at..at + len)?, want[at..at + len].to_vec());
        let other = put(dev, &values(&mut r, n, 4.0))?;
        b.copy_from(from, &other, at, len)?;
        want[from..from + len].copy_from_slice(&other.to_host()?[at..at + len]);
        assert_eq!(b.to_host()?, want, "copy_from");
        assert!(b.read(0..n + 1).is_err());
        assert!(b.write(n, &[1.0]).is_err());
        let mut taken = b.clone();
        assert_eq!(taken.take_host()?, want);
        assert!(taken.is_empty(), "take_host leaves the buffer empty");
    }
    Ok(())
}

/// Several weights stacked by rows in one product, as Q, K and V are.
pub fn linear_stacked(dev: &Device) -> Result<()> {
    let mut r = rng("stacked");
    let dtypes = [DType::F32, DType::Q8_0, DType::Q4_1];
    for _ in 0..4 {
        let (cols, lens) = (
            32 * r.gen_range(1..4),
            vec![r.gen_range(1..4), r.gen_range(1..4)],
        );
        let t: usize = lens.iter().sum();
        let parts: Vec<Tensor> = dtypes
            .iter()
            .map(|&d| {
                let rows = r.gen_range(1..20);
                weight(&mut r, d, rows, cols)
            })
            .collect::<Result<_>>()?;
        let x = values(&mut r, t * cols, 2.0);
        let on_dev: Vec<Tensor> = parts
            .iter()
            .map(|p| p.to_device(dev))
            .collect::<Result<_>>()?;
        let refs: Vec<&Tensor> = on_dev.iter().collect();
        let total: usize = parts.iter().map(|p| p.shape()[0]).sum();
        let mut out = Buffer::zeros(dev, t * total)?;
        ops::linear_batch(&put(dev, &x)?, &lens, &refs, &mut out)?;
        let got = out.to_host()?;
        // Each part alone, through the single-weight product.
        let mut col = 0;
        for p in &on_dev {
            let rows = p.shape()[0];
            let mut one = Buffer::zeros(dev, t * rows)?;
            ops::linear_batch(&put(dev, &x)?, &lens, &[p], &mut one)?;
            let one = one.to_host()?;
            for ti in 0..t {
                assert_eq!(
                    got[ti * total + col..][..rows],
                    one[ti * rows..][..rows],
                    "part at column {col}, token {ti}"
                );
            }
            col += rows;
        }
    }
    Ok(())
}

/// `out += x · Wᵀ` equals the product added afterwards.
pub fn linear_add(dev: &Device) -> Result<()> {
    let mut r = rng("linear_add");
    let dtypes = [
        DType::F32,
        DType::Q8_0,
        DType::Q4_1,
        DType::F32,
        DType::Q4_1,
    ];
    for (case, dtype) in dtypes.into_iter().enumerate() {
        let lens = if case >= 3 {
            vec![40, 29]
        } else {
            vec![r.gen_range(1..4), r.gen_range(1..3)]
        };
        let t: usize = lens.iter().sum();
        let (rows, cols) = (r.gen_range(1..40), 32 * r.gen_range(1..4));
        let w = weight(&mut r, dtype, rows, cols)?.to_device(dev)?;
        let (x, out0) = (values(&mut r, t * cols, 2.0), values(&mut r, t * rows, 3.0));
        let mut out = put(dev, &out0)?;
        ops::linear_add(&put(dev, &x)?, &lens, &w, &mut out)?;
        let mut want = put(dev, &out0)?;
        let mut product = Buffer::zeros(dev, t * rows)?;
        ops::linear_batch(&put(dev, &x)?, &lens, &[&w], &mut product)?;
        ops::add_inplace(&mut want, &product)?;
        close(
            &format!("linear_add {dtype}"),
            &out.to_host()?,
            &want.to_host()?,
            1e-5,
            1e-5,
        );
    }
    Ok(())
}

/// SwiGLU fused with its two products equals the products, then SwiGLU.
pub fn linear_swiglu(dev: &Device) -> Result<()> {
    let mut r = rng("linear_swiglu");
    // A prompt's rows too (12): a GPU keeps quantized weights in the fused
    // kernel for any row count, and sends f32 ones to cuBLAS from 8 rows.
    let cases = [
        (DType::Q4_1, 3),
        (DType::Q8_0, 2),
        (DType::Q4_1, 12),
        (DType::F32, 3),
        (DType::F32, 20),
        (DType::Q4_1, 70),
        (DType::Q8_0, 64),
    ];
    for (dtype, t) in cases {
        let (ffn, cols) = (r.gen_range(1..70), 32 * r.gen_range(1..4));
        let gate = weight(&mut r, dtype, ffn, cols)?.to_device(dev)?;
        let up = weight(&mut r, dtype, ffn, cols)?.to_device(dev)?;
        let x = put(dev, &values(&mut r, t * cols, 2.0))?;
        let lens = [t];
        let mut out = Buffer::zeros(dev, t * ffn)?;
        ops::linear_swiglu(&x, &lens, (&gate, &up), &mut out)?;
        let mut gu = Buffer::zeros(dev, t * 2 * ffn)?;
        ops::linear_batch(&x, &lens, &[&gate, &up], &mut gu)?;
        let mut want = Buffer::zeros(dev, t * ffn)?;
        ops::swiglu_rows(&mut gu, ffn, &mut want)?;
        close(
            &format!("linear_swiglu {dtype} t {t}"),
            &out.to_host()?,
            &want.to_host()?,
            1e-5,
            1e-5,
        );
    }
    Ok(())
}

/// RMSNorm folded into the products it feeds (Q, K and V stacked; the
/// SwiGLU pair) equals the norm, then the products: decode steps' few rows
/// (one kernel on a GPU) and a prompt's (two steps everywhere).
pub fn rmsnorm_fused(dev: &Device) -> Result<()> {
    let mut r = rng("rmsnorm_fused");
    // (row lengths, dtype, width: 0 for a random one). The last case is
    // wider than a GPU normalizes inside a product: norm, then product.
    let cases = [
        (vec![1], DType::Q4_1, 0),
        (vec![2, 1], DType::Q8_0, 0),
        (vec![3], DType::F32, 0),
        (vec![1, 1, 1, 1], DType::Q4_K, 0),
        (vec![9, 3], DType::Q4_1, 0),
        (
            vec![1],
            DType::Q8_0,
            engine::kernels::GPU_NORM_MAX_COLS + 32,
        ),
    ];
    for (lens, dtype, width) in cases {
        let t: usize = lens.iter().sum();
        let cols = if width > 0 {
            width
        } else {
            dtype.block_len().max(32) * r.gen_range(1..4)
        };
        let x = put(dev, &values(&mut r, t * cols, 3.0))?;
        let g = Tensor::from_vec(values(&mut r, cols, 2.0), &[cols])?.to_device(dev)?;
        let eps = 1e-5;
        let mut xn = Buffer::zeros(dev, t * cols)?;
        ops::rmsnorm(&x, &g, eps, &mut xn)?;
        let parts: Vec<Tensor> = [dtype, DType::Q8_0, dtype]
            .into_iter()
            .map(|d| {
                let rows = r.gen_range(1..30);
                weight(&mut r, d, rows, cols)?.to_device(dev)
            })
            .collect::<Result<_>>()?;
        let refs: Vec<&Tensor> = parts.iter().collect();
        let total: usize = parts.iter().map(|p| p.shape()[0]).sum();
        let (mut got, mut want) = (
            Buffer::zeros(dev, t * total)?,
            Buffer::zeros(dev, t * total)?,
        );
        let mut scratch = Buffer::zeros(dev, 0)?;
        ops::rmsnorm_linear_batch(&x, (&g, eps), &mut scratch, &lens, &refs, &mut got)?;
        ops::linear_batch(&xn, &lens, &refs, &mut want)?;
        close(
            &format!("rmsnorm_linear_batch {dtype} t {t}"),
            &got.to_host()?,
            &want.to_host()?,
            1e-4,
            1e-4,
        );
        let ffn = r.gen_range(1..40);
        let gate = weight(&mut r, dtype, ffn, cols)?.to_device(dev)?;
        let up = weight(&mut r, dtype, ffn, cols)?.to_device(dev)?;
        let (mut got, mut want) = (Buffer::zeros(dev, t * ffn)?, Buffer::zeros(dev, t * ffn)?);
        ops::rmsnorm_linear_swiglu(&x, (&g, eps), &mut scratch, &lens, (&gate, &up), &mut got)?;
        ops::linear_swiglu(&xn, &lens, (&gate, &up), &mut want)?;
        close(
            &format!("rmsnorm_linear_swiglu {dtype} t {t}"),
            &got.to_host()?,
            &want.to_host()?,
            1e-4,
            1e-4,
        );
        // The whole MLP with its residual: the op above, then the down
        // product added (down takes whole blocks of the SwiGLU rows).
        let ffn = dtype.block_len().max(32) * r.gen_range(1..3);
        let gate = weight(&mut r, dtype, ffn, cols)?.to_device(dev)?;
        let up = weight(&mut r, dtype, ffn, cols)?.to_device(dev)?;
        let down = weight(&mut r, dtype, cols, ffn)?.to_device(dev)?;
        let (mut act, mut act_want) = (Buffer::zeros(dev, t * ffn)?, Buffer::zeros(dev, t * ffn)?);
        let xh = x.to_host()?;
        let (mut got, mut want) = (put(dev, &xh)?, put(dev, &xh)?);
        let mlp = (&gate, &up, &down);
        ops::rmsnorm_mlp_add(&mut got, (&g, eps), &mut scratch, &lens, mlp, &mut act)?;
        ops::linear_swiglu(&xn, &lens, (&gate, &up), &mut act_want)?;
        ops::linear_add(&act_want, &lens, &down, &mut want)?;
        let name = format!("rmsnorm_mlp_add {dtype} t {t}");
        close(&name, &act.to_host()?, &act_want.to_host()?, 1e-4, 1e-4);
        close(&name, &got.to_host()?, &want.to_host()?, 1e-4, 1e-4);
        // A norm that does not match the weights' width is an error.
        let short = Tensor::from_vec(vec![1.0; cols - 1], &[cols - 1])?.to_device(dev)?;
        let bad =
            ops::rmsnorm_linear_batch(&x, (&short, eps), &mut scratch, &lens, &refs, &mut got);
        assert!(bad.is_err(), "a norm of the wrong width");
    }
    Ok(())
}

/// A tensor goes to the device and back unchanged, in every dtype.
pub fn round_trip(dev: &Device) -> Result<()> {
    let mut r = rng("round trip");
    for dtype in DType::ALL {
        let w = weight(&mut r, dtype, 3, dtype.block_len().max(32))?;
        let back = w.to_device(dev)?.to_device(&Device::Cpu)?;
        assert_eq!(back.dtype(), dtype);
        assert_eq!(back.storage(), w.storage(), "{dtype}");
    }
    Ok(())
}

/// Generate the suite for one device; `$device` is an
/// `Option<Device>` (None: skip, having said why).
macro_rules! conformance {
    ($name:ident, $device:expr) => {
        mod $name {
            use super::*;

            fn run(test: fn(&Device) -> Result<()>) {
                if let Some(dev) = $device {
                    if let Err(e) = test(&dev) {
                        panic!("{e}");
                    }
                }
            }

            #[test]
            fn rmsnorm_fused() {
                run(super::rmsnorm_fused);
            }
            #[test]
            fn add_inplace() {
                run(super::add_inplace);
            }
            #[test]
            fn add_bias_rows() {
                run(super::add_bias_rows);
            }
            #[test]
            fn swiglu_rows() {
                run(super::swiglu_rows);
            }
            #[test]
            fn gelu() {
                run(super::gelu);
            }
            #[test]
            fn softmax_and_argmax() {
                run(super::softmax_and_argmax);
            }
            #[test]
            fn norms() {
                run(super::norms);
            }
            #[test]
            fn rope() {
                run(super::rope);
            }
            #[test]
            fn embed() {
                run(super::embed);
            }
            #[test]
            fn linear() {
                run(super::linear);
            }
            #[test]
            fn attention_and_kv_write() {
                run(super::attention_and_kv_write);
            }
            #[test]
            fn gather() {
                run(super::gather);
            }
            #[test]
            fn buffer_moves() {
                run(super::buffer_moves);
            }
            #[test]
            fn linear_stacked() {
                run(super::linear_stacked);
            }
            #[test]
            fn linear_add() {
                run(super::linear_add);
            }
            #[test]
            fn linear_swiglu() {
                run(super::linear_swiglu);
            }
            #[test]
            fn round_trip() {
                run(super::round_trip);
            }
        }
    };
}

/// GPU 0, or `None` after printing why there is none.
fn cuda() -> Option<Device> {
    match Device::cuda(0) {
        Ok(d) => Some(d),
        Err(e) => {
            eprintln!("skipped on cuda: {e}");
            None
        }
    }
}

conformance!(cpu, Some(Device::Cpu));
conformance!(cuda, cuda());
