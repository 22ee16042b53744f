//! The SwiGLU half of a Llama MLP on the host, `silu(x·W_gateᵀ) ⊙
//! (x·W_upᵀ)`, for a batch of sequences.
//!
//! A batch that the many-token integer kernel multiplies (decode steps
//! summed by block, a prompt's Q4 tiles) runs it in one pass: each task
//! takes the same run of gate and up rows, multiplies both into its own
//! scratch, and writes the gate's SiLU times up into each token's row of
//! the output, so the elementwise work is shared by the pool instead of
//! waiting for it on one thread. Any other batch takes the two products
//! ([`super::linear_batch`]) and then [`kernels::swiglu_rows`]. Both give
//! the same bits: a task's run of rows starts a multiple of eight values
//! into the row, so the SIMD SiLU meets every value as it does in the
//! whole row.

use super::linear::{
    BY_ROW, BY_ROW_KEEP, Kernel, batch_chunk, dtype_names, keep_acts, linear_add_with,
    linear_batch, one_pass, rows_by_token, take_acts, token_pieces, weight_matrices,
};
use crate::error::{EngineError, Result};
use crate::kernels;
use crate::quant::QK;
use crate::quant::act::Q8Acts;
use crate::tensor::Tensor;
use crate::threads;

thread_local! {
    /// The gate and up products of a batch that takes the two-step path,
    /// kept for their allocation.
    static GATE_UP: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `out[i] = silu(x[i] · W_gateᵀ) ⊙ (x[i] · W_upᵀ)` for the rows of a
/// batch of sequences stacked in `x` (sequence `j` has `lens[j]` rows);
/// `out` is `Σ lens × ffn` for gate and up of `ffn` rows each. Each row
/// gets the bits it gets alone.
///
/// # Errors
/// As [`linear_batch`]; also gate and up of different shapes, or of no
/// rows.
pub fn linear_swiglu(
    x: &[f32],
    lens: &[usize],
    (gate, up): (&Tensor, &Tensor),
    out: &mut [f32],
) -> Result<()> {
    swiglu_rows(x, lens, (gate, up), out, None).map(|_| ())
}

/// The shortest run of values a task quantizes for the down product
/// itself ([`swiglu_down_add`]).
const RUN_MIN: usize = 16 * QK;

// ANCHOR: swiglu_down_add
/// A Llama MLP after its norm, `x[i] += W_down · (silu(xn[i] · W_gateᵀ) ⊙
/// (xn[i] · W_upᵀ))`, for the rows of a batch of sequences stacked in `xn`
/// and `x` (sequence `j` has `lens[j]` rows); `act` (`Σ lens × ffn`) is
/// left holding the SwiGLU rows. The same bits as [`linear_swiglu`] and
/// then the down product added to `x`.
///
/// Where the SwiGLU half runs in one pass, each task also quantizes the
/// values it has just written, while they are in its cache, for the down
/// product. Otherwise the calling thread would quantize all of `act`
/// alone before that product, reading back the half the other threads
/// wrote, from their caches, while they wait.
///
/// # Errors
/// As [`linear_swiglu`] and [`super::linear_batch`]; also `down` not
/// `cols × ffn`, or `x` not as long as `xn`.
pub fn swiglu_down_add(
    xn: &[f32],
    lens: &[usize],
    (gate, up, down): (&Tensor, &Tensor, &Tensor),
    act: &mut [f32],
    x: &mut [f32],
) -> Result<()> {
    if x.len() != xn.len() {
        return Err(EngineError::ShapeMismatch {
            op: "swiglu_down_add",
            lhs: vec![xn.len()],
            rhs: vec![x.len()],
        });
    }
    let mut quantized = take_acts(act.len());
    let filled = swiglu_rows(xn, lens, (gate, up), act, Some(&mut quantized))?;
    let done = linear_add_with(act, lens, down, x, filled.then_some(&quantized));
    keep_acts(quantized);
    done
}
// ANCHOR_END: swiglu_down_add

/// [`linear_swiglu`]; where it runs in one pass and `into` is given, its
/// tasks also quantize the rows of `out` into `into` (returns whether
/// they did).
fn swiglu_rows(
    x: &[f32],
    lens: &[usize],
    (gate, up): (&Tensor, &Tensor),
    out: &mut [f32],
    into: Option<&mut Q8Acts>,
) -> Result<bool> {
    let op = "linear_swiglu";
    let (mats, cols, _) = weight_matrices(&[gate, up], op)?;
    let ffn = mats[0].rows;
    let t: usize = lens.iter().sum();
    if ffn == 0 || mats[1].rows != ffn {
        return Err(EngineError::ShapeMismatch {
            op,
            lhs: gate.shape().to_vec(),
            rhs: up.shape().to_vec(),
        });
    }
    if t.checked_mul(cols) != Some(x.len()) || t.checked_mul(ffn) != Some(out.len()) {
        return Err(EngineError::ShapeMismatch {
            op,
            lhs: vec![t, cols, x.len()],
            rhs: vec![ffn, cols, out.len()],
        });
    }
    let fused = t > 1
        && one_pass(&mats, lens).is_some_and(|k| {
            mats.iter()
                .all(|m| m.prompt_kernel_runs(k == Kernel::Tiles))
        });
    if !fused {
        return GATE_UP.with(|g| {
            let mut g = g.borrow_mut();
            g.resize(2 * out.len(), 0.0);
            linear_batch(x, lens, &[gate, up], &mut g)?;
            kernels::swiglu_rows(&mut g, ffn, out);
            Ok(false)
        });
    }
    let _t = crate::profile::timer(crate::profile::Op::Linear);
    let _p = crate::profile::product_timer(2 * ffn, cols, || dtype_names(&[gate, up]));
    let mut qx = take_acts(x.len());
    qx.quantize(x, cols);
    let acts: Vec<_> = (0..t).map(|i| qx.row(i)).collect();
    let chunk = batch_chunk(ffn, t, 2 * ffn * cols * t);
    let pieces = token_pieces(out, ffn, chunk);
    // Each task's runs of `into` (the same values as its pieces of `out`),
    // when its pieces are whole blocks of 32 and long ones: a decode
    // batch's, one run of each row per thread. The AVX-512 quantizer
    // takes sixteen blocks at once and any rest one by one; a prompt's
    // runs of six blocks (a chunk per thread and a quarter) took the slow
    // path only, and its prefill lost 6-8 % (128 tokens, two threads).
    let runs = into
        .filter(|_| chunk.is_multiple_of(QK) && ffn.is_multiple_of(QK) && chunk >= RUN_MIN)
        .map(|q| q.runs(t, ffn, chunk));
    let filled = runs.is_some();
    let runs = runs
        .into_iter()
        .flatten()
        .chain(std::iter::repeat_with(Vec::new));
    let mut tasks: Vec<_> = pieces.into_iter().zip(runs).collect();
    threads::for_each_chunk_mut(&mut tasks, 1, |c, task| {
        let (dst, runs) = &mut task[0];
        let n = dst.first().map_or(0, |d| d.len());
        let mut scratch = BY_ROW.take();
        if scratch.len() < 2 * n * t {
            scratch.resize(2 * n * t, 0.0);
        }
        let (g, u) = scratch[..2 * n * t].split_at_mut(n * t);
        // Gate rows c·chunk.. into `g`, up's into `u`, each token's side
        // by side.
        for (m, buf) in mats.iter().zip([&mut *g, &mut *u]) {
            let mut rows: Vec<&mut [f32]> = buf.chunks_exact_mut(n).collect();
            rows_by_token(m, (c * chunk, n), &acts, &mut rows, 0);
        }
        for (i, d) in dst.iter_mut().enumerate() {
            kernels::swiglu_run(&mut g[i * n..(i + 1) * n], &u[i * n..(i + 1) * n], d);
            if let Some(run) = runs.get_mut(i) {
                run.quantize(d);
            }
        }
        if scratch.capacity() <= BY_ROW_KEEP {
            BY_ROW.set(scratch);
        }
    });
    keep_acts(qx);
    Ok(filled)
}
