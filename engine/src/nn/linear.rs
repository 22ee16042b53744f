//! `out = x · Wᵀ` for a batch of activation rows against one weight, or
//! several weights stacked by rows (Q, K and V; gate and up), in one
//! hand-off to the thread pool.

use super::matrix::Matrix;
use crate::error::{EngineError, Result};
use crate::kernels;
use crate::quant::act::Q8Acts;
use crate::tensor::Tensor;
use crate::threads;

/// From this many rows of one sequence on, a product is a prompt's: a
/// regrouped Q4_0/Q4_1 weight takes the many-token integer kernel
/// ([`crate::quant::x8_prompt`], an integer sum per block), any other an
/// f32 matrix product on weight tiles widened in cache. Below it, every
/// weight row is read once per block and dotted with each activation row
/// (integer dot products for a quantized weight; the regrouped kernel
/// gives the same bits per row as llama.cpp's), so short prompts continue
/// as llama.cpp's do.
pub const SGEMM_MIN_TOKENS: usize = 32;

thread_local! {
    /// Activations quantized by this thread's last `linear` call, kept for
    /// their allocations.
    static ACTS: std::cell::Cell<Q8Acts> = std::cell::Cell::new(Q8Acts::default());
    /// The products of this thread's last batched `linear` call, by weight
    /// row, kept for their allocation.
    static BY_ROW: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Call `f(matrix, first_row_in_matrix, rows, first_row_in_chunk)` for each
/// piece of the stacked rows `g0..g0 + len` that falls in one matrix.
fn segments(
    mats: &[Matrix<'_>],
    g0: usize,
    len: usize,
    mut f: impl FnMut(&Matrix<'_>, usize, usize, usize),
) {
    let (mut base, end) = (0, g0 + len);
    for m in mats {
        let (lo, hi) = (g0.max(base), end.min(base + m.rows));
        if lo < hi {
            f(m, lo - base, hi - lo, lo - g0);
        }
        base += m.rows;
    }
}

/// The most products (f32) the by-row buffer keeps between calls.
const BY_ROW_KEEP: usize = 1 << 20;

/// Rows of weights a task takes at a time when several activation rows
/// pass over them: small enough to stay in cache while every row passes,
/// a multiple of 4 so the four-row kernels group rows as a single row's
/// pass does.
const ROW_BLOCK: usize = 64;

/// `out[i][·] = x[i] · [W₁; W₂; …]ᵀ` for `t` rows of `x` (`t × cols`,
/// row-major) against the weights `parts`, each `rows_j × cols`, stacked
/// by rows: `out` is `t × Σ rows_j`. The engine picks the kernel from the
/// weights' dtypes and the batch size; the caller never does.
///
/// # Errors
/// [`EngineError::BadShape`] if a weight is not a contiguous matrix or
/// there are none, [`EngineError::ShapeMismatch`] if the widths or the
/// buffer lengths disagree.
pub fn linear(x: &[f32], t: usize, parts: &[&Tensor], out: &mut [f32]) -> Result<()> {
    linear_batch(x, &[t], parts, out)
}

// ANCHOR: linear
/// [`linear`] for a batch of sequences whose rows are stacked in `x`:
/// sequence `j` has `lens[j]` rows. Each sequence's rows get the kernel
/// its own length calls for (an f32 matrix product on widened weight tiles from
/// [`SGEMM_MIN_TOKENS`] rows on, integer dot products below), so a row's
/// result does not depend on what else is in the batch: a request decodes
/// the same tokens alone or beside others.
///
/// # Errors
/// As [`linear`]; also a mismatch between `Σ lens` and the buffers.
pub fn linear_batch(x: &[f32], lens: &[usize], parts: &[&Tensor], out: &mut [f32]) -> Result<()> {
    let _t = crate::profile::timer(crate::profile::Op::Linear);
    let op = "linear";
    let t: usize = lens.iter().sum();
    let mats = parts
        .iter()
        .map(|p| Matrix::new(p, op))
        .collect::<Result<Vec<_>>>()?;
    let Some(cols) = mats.first().map(|m| m.cols) else {
        return Err(EngineError::BadShape {
            op,
            shape: vec![],
            reason: "no weights given".into(),
        });
    };
    let rows: usize = mats.iter().map(|m| m.rows).sum();
    if let Some(m) = mats.iter().find(|m| m.cols != cols) {
        return Err(EngineError::ShapeMismatch {
            op,
            lhs: vec![mats[0].rows, cols],
            rhs: vec![m.rows, m.cols],
        });
    }
    if t.checked_mul(cols) != Some(x.len()) || t.checked_mul(rows) != Some(out.len()) {
        return Err(EngineError::ShapeMismatch {
            op,
            lhs: vec![t, cols, x.len()],
            rhs: vec![rows, cols, out.len()],
        });
    }
    if mats.iter().any(Matrix::is_quantized) && !cols.is_multiple_of(crate::quant::QK) {
        return Err(EngineError::BadShape {
            op,
            shape: vec![rows, cols],
            reason: "quantized weight rows must be whole blocks".into(),
        });
    }
    if t == 0 || rows == 0 {
        return Ok(());
    }
    // Each sequence's kernel, from its own length only.
    let kind = |n: usize| match n {
        1 => Kernel::Rows,
        n if n < SGEMM_MIN_TOKENS => Kernel::Dots,
        _ => Kernel::Tiles,
    };
    let run = |k: Kernel, x: &[f32], t: usize, out: &mut [f32]| match k {
        Kernel::Tiles if !mats.iter().all(Matrix::takes_prompt_kernel) => {
            by_tiles(&mats, x, t, cols, rows, out)
        }
        k => by_rows(&mats, x, t, cols, rows, out, k),
    };
    if let Some(&n) = lens.first()
        && lens.iter().all(|&m| kind(m) == kind(n))
    {
        run(kind(n), x, t, out);
        return Ok(());
    }
    // A mixed batch (prompts beside decode steps): gather each kind's rows,
    // run each kernel once, and put the results back in order.
    for k in [Kernel::Rows, Kernel::Dots, Kernel::Tiles] {
        let picked: Vec<(usize, usize)> = lens
            .iter()
            .scan(0, |at, &n| {
                *at += n;
                Some((*at - n, n))
            })
            .filter(|&(_, n)| kind(n) == k)
            .collect();
        let tk: usize = picked.iter().map(|p| p.1).sum();
        if tk == 0 {
            continue;
        }
        let mut xk = Vec::with_capacity(tk * cols);
        for &(at, n) in &picked {
            xk.extend_from_slice(&x[at * cols..(at + n) * cols]);
        }
        let mut ok = vec![0f32; tk * rows];
        run(k, &xk, tk, &mut ok);
        let mut i = 0;
        for &(at, n) in &picked {
            out[at * rows..(at + n) * rows].copy_from_slice(&ok[i * rows..(i + n) * rows]);
            i += n;
        }
    }
    Ok(())
}
// ANCHOR_END: linear

/// Which kernel a sequence's rows take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    /// One row (a decode step): the four-row kernels, several sequences'
    /// rows sharing each unpacked weight block.
    Rows,
    /// A short prompt: one dot product per weight row and token (a
    /// regrouped matrix: its kernel, eight rows and every token at once).
    Dots,
    /// A prompt of `SGEMM_MIN_TOKENS` rows or more: regrouped Q4_0/Q4_1
    /// weights take the many-token integer kernel
    /// ([`crate::quant::x8_prompt`]), every other dtype an f32 matrix
    /// product on widened tiles.
    Tiles,
}

/// Every row of `x` times the weights as one f32 matrix product on weight
/// tiles widened in cache (`x` packed once, each tile once).
fn by_tiles(mats: &[Matrix<'_>], x: &[f32], t: usize, cols: usize, rows: usize, out: &mut [f32]) {
    let tile = rows
        .div_ceil(threads::num_threads() * 4)
        .next_multiple_of(kernels::TILE_ROWS)
        .min(128);
    kernels::matmul_bt_tiles(x, (t, cols, rows), tile, out, |r, buf| {
        segments(mats, r.start, r.len(), |m, r0, n, at| {
            m.rows_f32(r0, &mut buf[at * cols..(at + n) * cols]);
        });
    });
}

// ANCHOR: by_rows
/// Every weight row read once per block of rows and dotted with each row
/// of `x` (integer dot products for a quantized weight). For `Rows` and
/// `Dots` each product is computed exactly as for a single row of `x`: by
/// the four-row or regrouped kernels, or, for `Dots` on a matrix in the
/// file's layout, one weight row at a time (the order a short prompt has
/// always used, which keeps its continuations closest to llama.cpp's).
/// `Tiles` (only for matrices that [`Matrix::takes_prompt_kernel`]) runs
/// the many-token integer kernel.
fn by_rows(
    mats: &[Matrix<'_>],
    x: &[f32],
    t: usize,
    cols: usize,
    rows: usize,
    out: &mut [f32],
    kernel: Kernel,
) {
    // The quantized activations live in a per-thread buffer that is taken
    // out and put back, so a decode step allocates nothing here.
    let mut qx = ACTS.take();
    if mats.iter().any(Matrix::is_quantized) {
        qx.quantize(x, cols);
    }
    // Each task owns a run of weight rows and writes, for every activation
    // row, its products there: `by_row[r][i]` (the batch transposed).
    let run = |g0: usize, o: &mut [f32]| {
        let n = o.len() / t;
        segments(mats, g0, n, |m, r0, len, at| {
            if t == 1 {
                m.matvec_rows(r0, x, &qx, 0, &mut o[at..at + len]);
                return;
            }
            if kernel == Kernel::Dots && !m.is_regrouped() {
                for j in 0..len {
                    for i in 0..t {
                        let xi = &x[i * cols..(i + 1) * cols];
                        let v = &mut o[(at + j) * t + i];
                        m.matvec_rows(r0 + j, xi, &qx, i, std::slice::from_mut(v));
                    }
                }
                return;
            }
            for b in (0..len).step_by(ROW_BLOCK) {
                let nb = ROW_BLOCK.min(len - b);
                let o = &mut o[(at + b) * t..(at + b + nb) * t];
                if kernel == Kernel::Tiles {
                    m.prompt_rows(r0 + b, &qx, t, o);
                } else {
                    m.matmul_rows(r0 + b, x, &qx, t, o);
                }
            }
        });
    };
    // Every element is written by the tasks before it is read, so the
    // buffer is reused as it is, zeroed only where it first grows.
    let mut by_row = BY_ROW.take();
    let n = if t == 1 { 0 } else { rows * t };
    if by_row.len() < n {
        by_row.resize(n, 0.0);
    }
    let dst: &mut [f32] = if t == 1 { out } else { &mut by_row[..n] };
    let threads = threads::num_threads();
    if kernels::go_parallel(rows * cols * t) && rows >= 16 {
        // A decode step streams each thread's share of the weights as one
        // run (the prefetchers follow it, and each task start costs); a
        // batch of rows, which does more arithmetic per byte, takes a few
        // chunks per thread for balance.
        let per_thread = if t == 1 { 1 } else { 4 };
        let chunk = rows.div_ceil(threads * per_thread).next_multiple_of(8);
        threads::for_each_chunk_mut(dst, chunk * t, |c, o| run(c * chunk, o));
    } else {
        run(0, dst);
    }
    if t > 1 {
        transpose(&by_row[..n], t, rows, out);
    }
    // Kept for the next call if it is a decode batch's size (the head at
    // sixteen tokens is 3 MB), freed after a long prompt's.
    if by_row.capacity() <= BY_ROW_KEEP {
        BY_ROW.set(by_row);
    }
    ACTS.set(qx);
}

/// `out[i · rows + r] = by_row[r · t + i]`, sixteen rows at a time (each
/// write a whole cache line of `out`), and split by tokens across the pool
/// when it is large (a prompt's).
fn transpose(by_row: &[f32], t: usize, rows: usize, out: &mut [f32]) {
    let one = |i0: usize, o: &mut [f32]| {
        for r0 in (0..rows).step_by(16) {
            let n = 16.min(rows - r0);
            for (k, row) in o.chunks_exact_mut(rows).enumerate() {
                for (j, v) in row[r0..r0 + n].iter_mut().enumerate() {
                    *v = by_row[(r0 + j) * t + i0 + k];
                }
            }
        }
    };
    if kernels::go_parallel(rows * t * 8) {
        let per = t.div_ceil(threads::num_threads() * 2);
        threads::for_each_chunk_mut(out, per * rows, |c, o| one(c * per, o));
    } else {
        one(0, out);
    }
}
// ANCHOR_END: by_rows
