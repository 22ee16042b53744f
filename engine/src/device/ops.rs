//! Operations on [`Buffer`]s, run on the device the buffers live on. Each
//! checks its shapes first (the same checks on every device, so a bad call
//! is the same error everywhere and never reaches a kernel), then runs the
//! CPU kernels of [`crate::kernels`] and [`crate::nn`] or launches the CUDA
//! kernels. Weights are [`Tensor`]s on the same device
//! ([`Tensor::to_device`]). A forward pass written with these runs on any
//! device.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{Buffer, Rows};
use crate::error::{EngineError, Result};
use crate::kernels::{self, AttnDims};
use crate::nn;
use crate::tensor::Tensor;
#[cfg(feature = "cuda")]
use {
    super::views::{gpu_of, in_view, out_view},
    crate::cuda::launch,
    crate::tensor::Storage,
};

/// Kernels launched, or that would be on a GPU, by the calls so far.
static LAUNCHES: AtomicU64 = AtomicU64::new(0);

/// How many GPU kernels the operations called so far amount to: one per
/// call, one per weight for [`linear_batch`]. It counts on every device, so
/// the CPU can say how many launches a forward pass will make on a GPU
/// (copies between host and device are not counted).
pub fn kernel_launches() -> u64 {
    LAUNCHES.load(Ordering::Relaxed)
}

fn count(kernels: usize) {
    LAUNCHES.fetch_add(kernels as u64, Ordering::Relaxed);
}

/// Count `kernels` launches for work done outside these ops that is that
/// many kernels on a GPU: the KV cache's host paths (an f16 or Q8_0 write,
/// the whole batch's attention in one pool hand-off) call this so that
/// [`kernel_launches`] says the same on every device.
pub fn count_launches(kernels: usize) {
    count(kernels);
}

fn check(ok: bool, op: &'static str, lhs: Vec<usize>, rhs: Vec<usize>) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(EngineError::ShapeMismatch { op, lhs, rhs })
    }
}

/// A weight on `gpu` as the launchers take it (contiguous, as
/// [`Tensor::to_device`] makes it).
#[cfg(feature = "cuda")]
fn gpu_weight<'a>(
    op: &'static str,
    w: &'a Tensor,
    gpu: &crate::cuda::Gpu,
) -> Result<launch::Weight<'a>> {
    let (rows, cols) = match *w.shape() {
        [r, c] => (r, c),
        [c] => (1, c),
        _ => {
            return Err(EngineError::BadShape {
                op,
                shape: w.shape().to_vec(),
                reason: "weight must be a vector or a matrix".into(),
            });
        }
    };
    match w.storage() {
        Storage::Cuda(s)
            if s.gpu().ordinal() == gpu.ordinal() && w.is_contiguous() && w.offset() == 0 =>
        {
            Ok(launch::Weight {
                bytes: s.bytes(),
                dtype: s.dtype(),
                rows,
                cols,
            })
        }
        _ => Err(super::views::elsewhere(
            op,
            &w.device(),
            &super::Device::Cuda(gpu.clone()),
        )),
    }
}

/// An f32 vector weight on `gpu` (norm weights and biases).
#[cfg(feature = "cuda")]
fn gpu_vector<'a>(
    op: &'static str,
    w: &'a Tensor,
    gpu: &crate::cuda::Gpu,
) -> Result<&'a cudarc::driver::CudaSlice<u8>> {
    let g = gpu_weight(op, w, gpu)?;
    if g.dtype != crate::DType::F32 {
        return Err(EngineError::UnsupportedDType { op, dtype: g.dtype });
    }
    Ok(g.bytes)
}

/// `x += y`.
///
/// # Errors
/// Different lengths or devices; a device error.
pub fn add_inplace(x: &mut Buffer, y: &Buffer) -> Result<()> {
    count(1);
    let op = "add_inplace";
    check(x.len() == y.len(), op, vec![x.len()], vec![y.len()])?;
    match (x, y) {
        (Buffer::Cpu(x), Buffer::Cpu(y)) => {
            kernels::add_inplace(x, y);
            Ok(())
        }
        #[cfg(feature = "cuda")]
        (x, y) => {
            let (gpu, mut xv) = out_view(op, x, None)?;
            launch::add_inplace(gpu, &mut xv, &in_view(op, y, gpu, None)?)
        }
    }
}

/// `x[r][i] += b[i]`: a layer's bias `b` (an f32 vector of `d` values)
/// added to every row of `x`.
///
/// # Errors
/// A length that is not a whole number of rows, a bias elsewhere.
pub fn add_bias_rows(x: &mut Buffer, b: &Tensor) -> Result<()> {
    count(1);
    let op = "add_bias_rows";
    let d = b.numel();
    check(
        d > 0 && x.len().is_multiple_of(d),
        op,
        vec![x.len()],
        b.shape().to_vec(),
    )?;
    match x {
        Buffer::Cpu(x) => {
            let b = b.as_f32_slice()?;
            for row in x.chunks_exact_mut(d) {
                kernels::add_inplace(row, b);
            }
            Ok(())
        }
        #[cfg(feature = "cuda")]
        x => {
            let (gpu, mut xv) = out_view(op, x, None)?;
            let bb = gpu_vector(op, b, gpu)?;
            launch::add_bias_rows(gpu, &mut xv, bb, d)
        }
    }
}

/// SwiGLU over rows of `[gate | up]` (`2·ffn` values each):
/// `out[r][i] = silu(gate[r][i]) · up[r][i]`. `gate_up` is scratch: the
/// CPU kernel may overwrite it.
///
/// # Errors
/// Lengths that are not `rows × 2·ffn` and `rows × ffn`; different devices.
pub fn swiglu_rows(gate_up: &mut Buffer, ffn: usize, out: &mut Buffer) -> Result<()> {
    count(1);
    let op = "swiglu_rows";
    let ok = ffn > 0 && out.len().is_multiple_of(ffn) && gate_up.len() == 2 * out.len();
    check(ok, op, vec![gate_up.len()], vec![out.len(), ffn])?;
    match (gate_up, out) {
        (Buffer::Cpu(g), Buffer::Cpu(o)) => {
            kernels::swiglu_rows(g, ffn, o);
            Ok(())
        }
        #[cfg(feature = "cuda")]
        (g, o) => {
            let (gpu, mut ov) = out_view(op, o, None)?;
            launch::swiglu_rows(gpu, &in_view(op, g, gpu, None)?, ffn, &mut ov)
        }
    }
}

/// GELU (tanh form, as GPT-2) in place.
///
/// # Errors
/// A device error.
pub fn gelu_tanh_inplace(x: &mut Buffer) -> Result<()> {
    count(1);
    match x {
        Buffer::Cpu(x) => {
            kernels::gelu_tanh_inplace(x);
            Ok(())
        }
        #[cfg(feature = "cuda")]
        x => {
            let (gpu, mut xv) = out_view("gelu", x, None)?;
            launch::gelu_tanh(gpu, &mut xv)
        }
    }
}

/// Softmax of each row of `n` values, in place.
///
/// # Errors
/// A length that is not a multiple of `n`; a device error.
pub fn softmax_rows(x: &mut Buffer, n: usize) -> Result<()> {
    count(1);
    let op = "softmax_rows";
    check(
        n > 0 && x.len().is_multiple_of(n),
        op,
        vec![x.len()],
        vec![n],
    )?;
    match x {
        Buffer::Cpu(x) => {
            x.chunks_exact_mut(n).for_each(kernels::softmax_inplace);
            Ok(())
        }
        #[cfg(feature = "cuda")]
        x => {
            let (gpu, mut xv) = out_view(op, x, None)?;
            launch::softmax_rows(gpu, &mut xv, n)
        }
    }
}

/// Greedy decoding's choice for each row of `n` logits, sent back instead
/// of the logits: the index of the largest value (the first on ties, NaN
/// skipped) and its log-probability under the row's softmax, `max − (max +
/// ln Σ exp(x − max))`. A row holding NaN or `+inf` gets a NaN
/// log-probability (the caller's logits check would have refused it).
///
/// # Errors
/// A length that is not a multiple of `n`; a device error.
pub fn greedy_rows(x: &Buffer, n: usize) -> Result<Vec<(u32, f32)>> {
    count(1);
    let op = "greedy_rows";
    check(
        n > 0 && x.len().is_multiple_of(n),
        op,
        vec![x.len()],
        vec![n],
    )?;
    match x {
        Buffer::Cpu(x) => Ok(x
            .chunks_exact(n)
            .map(|r| {
                let id = kernels::argmax(r);
                let m = r[id];
                let s: f32 = r.iter().map(|v| (v - m).exp()).sum();
                (id as u32, m - (m + s.ln()))
            })
            .collect()),
        #[cfg(feature = "cuda")]
        x => {
            let gpu = gpu_of(op, x)?;
            let (ids, logprobs) = launch::argmax_rows(gpu, &in_view(op, x, gpu, None)?, n)?;
            Ok(ids.into_iter().zip(logprobs).collect())
        }
    }
}

// ANCHOR: rmsnorm_op
/// RMSNorm of each row of `x` (rows of `w.numel()` values) into `out`.
///
/// # Errors
/// `w` not an f32 vector on the buffers' device, or lengths that disagree.
pub fn rmsnorm(x: &Buffer, w: &Tensor, eps: f32, out: &mut Buffer) -> Result<()> {
    count(1);
    let op = "rmsnorm";
    let d = w.numel();
    let ok = d > 0 && x.len().is_multiple_of(d) && x.len() == out.len();
    check(ok, op, vec![x.len(), out.len()], w.shape().to_vec())?;
    match (x, out) {
        (Buffer::Cpu(x), Buffer::Cpu(o)) => nn::rmsnorm(x, w, eps, o),
        #[cfg(feature = "cuda")]
        (x, o) => {
            let (gpu, mut ov) = out_view(op, o, None)?;
            let wb = gpu_vector(op, w, gpu)?;
            launch::rmsnorm(gpu, &in_view(op, x, gpu, None)?, wb, eps, d, &mut ov)
        }
    }
}
// ANCHOR_END: rmsnorm_op

/// LayerNorm of each row of `x` with weight `w` and bias `b` into `out`.
///
/// # Errors
/// `w` or `b` not f32 vectors of one length on the buffers' device, or
/// lengths that disagree.
pub fn layernorm(x: &Buffer, w: &Tensor, b: &Tensor, eps: f32, out: &mut Buffer) -> Result<()> {
    count(1);
    let op = "layernorm";
    let d = w.numel();
    let ok = d > 0 && b.numel() == d && x.len().is_multiple_of(d) && x.len() == out.len();
    check(ok, op, vec![x.len(), out.len()], w.shape().to_vec())?;
    match (x, out) {
        (Buffer::Cpu(x), Buffer::Cpu(o)) => nn::layernorm(x, w, b, eps, o),
        #[cfg(feature = "cuda")]
        (x, o) => {
            let (gpu, mut ov) = out_view(op, o, None)?;
            let (wb, bb) = (gpu_vector(op, w, gpu)?, gpu_vector(op, b, gpu)?);
            launch::layernorm(gpu, &in_view(op, x, gpu, None)?, wb, bb, eps, d, &mut ov)
        }
    }
}

/// Each row's RoPE angles for its position into `out` (`positions.len()
/// × head_dim`: cosines, then sines; see [`kernels::rope_angles`]).
///
/// # Errors
/// An odd `head_dim` or a wrong length; a device error.
pub fn rope_angles(positions: &[u32], head_dim: usize, theta: f32, out: &mut Buffer) -> Result<()> {
    count(1);
    let op = "rope_angles";
    let ok = head_dim > 0 && head_dim.is_multiple_of(2) && out.len() == positions.len() * head_dim;
    check(ok, op, vec![positions.len(), head_dim], vec![out.len()])?;
    match out {
        Buffer::Cpu(o) => {
            for (&p, row) in positions.iter().zip(o.chunks_exact_mut(head_dim)) {
                kernels::rope_angles(head_dim, p as usize, theta, row);
            }
            Ok(())
        }
        #[cfg(feature = "cuda")]
        o => {
            let (gpu, mut ov) = out_view(op, o, None)?;
            launch::rope_angles(gpu, positions, head_dim, theta, &mut ov)
        }
    }
}

/// Rotate the first `heads` heads (`head_dim` each) of each of the rows of
/// `x` (row `r` starts at `r · row_stride`) by row `r`'s angles from
/// [`rope_angles`].
///
/// # Errors
/// Heads that overrun a row, or buffers too short; different devices.
pub fn rope_rotate(
    x: &mut Buffer,
    row_stride: usize,
    heads: usize,
    head_dim: usize,
    angles: &Buffer,
) -> Result<()> {
    count(1);
    let op = "rope_rotate";
    let rows = angles.len() / head_dim.max(1);
    let ok = head_dim > 0
        && head_dim.is_multiple_of(2)
        && heads * head_dim <= row_stride
        && angles.len() == rows * head_dim
        && x.len() == rows * row_stride;
    check(
        ok,
        op,
        vec![x.len(), row_stride],
        vec![rows, heads, head_dim],
    )?;
    match (x, angles) {
        (Buffer::Cpu(x), Buffer::Cpu(a)) => {
            for (row, ang) in x.chunks_exact_mut(row_stride).zip(a.chunks_exact(head_dim)) {
                kernels::rope_rotate(&mut row[..heads * head_dim], heads, head_dim, ang);
            }
            Ok(())
        }
        #[cfg(feature = "cuda")]
        (x, a) => {
            let (gpu, mut xv) = out_view(op, x, None)?;
            let av = in_view(op, a, gpu, None)?;
            launch::rope_rotate(gpu, &mut xv, rows, row_stride, heads, head_dim, &av)
        }
    }
}

/// Rows `ids` of `table` (`vocab × d`, any dtype) into `out` as f32.
///
/// # Errors
/// An id past the table, `out` not `ids.len() × d`, a table elsewhere.
pub fn embed(table: &Tensor, ids: &[u32], out: &mut Buffer) -> Result<()> {
    count(1);
    match out {
        Buffer::Cpu(o) => nn::embed(table, ids, o),
        #[cfg(feature = "cuda")]
        o => {
            let op = "embed";
            let (gpu, mut ov) = out_view(op, o, None)?;
            let w = gpu_weight(op, table, gpu)?;
            check(
                ov.len() == ids.len() * w.cols,
                op,
                vec![ids.len(), w.cols],
                vec![ov.len()],
            )?;
            if let Some(&id) = ids.iter().find(|&&id| id as usize >= w.rows) {
                return Err(EngineError::OutOfRange {
                    op,
                    index: id as usize,
                    size: w.rows,
                });
            }
            launch::embed(gpu, w.bytes, w.dtype, w.cols, ids, &mut ov)
        }
    }
}

/// `out = x · Wᵀ` for `t` rows of `x` (`t × cols`) against `w` (`rows ×
/// cols`, any dtype): `out` is `t × rows`. See [`linear_batch`].
///
/// # Errors
/// As [`linear_batch`].
pub fn linear(x: &Buffer, t: usize, w: &Tensor, out: &mut Buffer) -> Result<()> {
    linear_batch(x, &[t], &[w], out)
}

/// `out[i] = x[i] · [W₁; W₂; …]ᵀ` for the rows of a batch of sequences
/// stacked in `x` (sequence `j` has `lens[j]` rows) against weights
/// stacked by rows: `out` is `Σ lens × Σ rows_j`. On the CPU this is
/// [`nn::linear_batch`] (8-bit activations against a quantized weight; a
/// row's result independent of the batch); on a GPU, f32 activations
/// against each weight value dequantized in registers, or cuBLAS's sgemm
/// for an f32 weight and 8 rows or more.
///
/// # Errors
/// Weights that are not matrices of one width, lengths that disagree,
/// operands elsewhere.
pub fn linear_batch(x: &Buffer, lens: &[usize], parts: &[&Tensor], out: &mut Buffer) -> Result<()> {
    count(product_launches(parts.len(), lens.iter().sum()));
    match (x, out) {
        (Buffer::Cpu(x), Buffer::Cpu(o)) => nn::linear_batch(x, lens, parts, o),
        #[cfg(feature = "cuda")]
        (x, o) => {
            let op = "linear";
            let t: usize = lens.iter().sum();
            let (gpu, mut ov) = out_view(op, o, None)?;
            let ws = parts
                .iter()
                .map(|w| gpu_weight(op, w, gpu))
                .collect::<Result<Vec<_>>>()?;
            let cols = ws.first().map_or(0, |w| w.cols);
            let total: usize = ws.iter().map(|w| w.rows).sum();
            let ok = !ws.is_empty()
                && ws.iter().all(|w| w.cols == cols)
                && x.len() == t * cols
                && ov.len() == t * total;
            check(ok, op, vec![t, cols, total], vec![x.len(), ov.len()])?;
            let xv = in_view(op, x, gpu, None)?;
            gpu_products(gpu, &ws, &xv, t, &mut ov, (total, false))
        }
    }
}

/// Whether a GPU multiplies `parts` weights on `t` rows in one launch (and
/// can fold the RMSNorm before them into it): fewer than
/// [`kernels::GPU_MANY_ROWS`] rows, at most [`kernels::GPU_MAX_PARTS`]
/// weights. Decided the same way on every device, so that
/// [`kernel_launches`] says on the CPU what a GPU would launch.
fn one_launch(parts: usize, t: usize) -> bool {
    t < kernels::GPU_MANY_ROWS && parts <= kernels::GPU_MAX_PARTS
}

/// The launches [`linear_batch`] makes for `parts` weights on `t` rows.
fn product_launches(parts: usize, t: usize) -> usize {
    if one_launch(parts, t) { 1 } else { parts }
}

/// Weights stacked by rows on a GPU, their products side by side in `out`:
/// one launch for a decode step's few rows; for a prompt's, one per
/// weight, cuBLAS for an f32 weight and the engine's kernel otherwise.
#[cfg(feature = "cuda")]
fn gpu_products(
    gpu: &crate::cuda::Gpu,
    ws: &[launch::Weight<'_>],
    x: &launch::In<'_>,
    t: usize,
    out: &mut launch::Out<'_>,
    stride_acc: (usize, bool),
) -> Result<()> {
    if one_launch(ws.len(), t) {
        return launch::linear(gpu, ws, x, t, out, stride_acc, None);
    }
    let mut col = 0;
    for w in ws {
        let mut part = out.slice_mut(col..);
        let by_blas =
            by_cublas(w.dtype, t) && launch::linear_cublas(gpu, w, x, t, &mut part, stride_acc)?;
        if !by_blas {
            launch::linear(
                gpu,
                std::slice::from_ref(w),
                x,
                t,
                &mut part,
                stride_acc,
                None,
            )?;
        }
        col += w.rows;
    }
    Ok(())
}

/// Whether `norm` is folded into the product after it: the product is one
/// launch (`one_product`) and the norm's rows fit a block's shared memory.
fn folds_norm(norm: &Tensor, one_product: bool) -> bool {
    one_product && norm.numel() <= kernels::GPU_NORM_MAX_COLS
}

/// One launch counted for a norm folded into its product, and the check
/// that the norm's width divides `x` into rows.
fn check_fused_norm(op: &'static str, x: &Buffer, norm: &Tensor) -> Result<()> {
    count(1);
    check_fused_norm_width(op, x.len(), norm)
}

/// The check that the norm's width divides `len` values into rows.
fn check_fused_norm_width(op: &'static str, len: usize, norm: &Tensor) -> Result<()> {
    let d = norm.numel();
    let ok = d > 0 && len.is_multiple_of(d);
    check(ok, op, vec![len], norm.shape().to_vec())
}

// ANCHOR: rmsnorm_linear_batch
/// [`rmsnorm`] of `x` by `norm` (weight, epsilon), then [`linear_batch`]
/// of the result: the norm that opens a Llama block and the Q, K and V
/// products it feeds. A GPU does both in one kernel for a decode step's
/// few rows, each warp normalizing the activations as it reads them; the
/// CPU, and a GPU for a prompt's rows, normalize into `xn` (scratch, sized
/// here; its contents afterwards are unspecified) and multiply that.
///
/// # Errors
/// As [`rmsnorm`] and [`linear_batch`].
pub fn rmsnorm_linear_batch(
    x: &Buffer,
    (norm, eps): (&Tensor, f32),
    xn: &mut Buffer,
    lens: &[usize],
    parts: &[&Tensor],
    out: &mut Buffer,
) -> Result<()> {
    let t: usize = lens.iter().sum();
    xn.fit(x.len())?;
    if !folds_norm(norm, one_launch(parts.len(), t)) {
        rmsnorm(x, norm, eps, xn)?;
        return linear_batch(xn, lens, parts, out);
    }
    let op = "rmsnorm_linear";
    check_fused_norm(op, x, norm)?;
    match (x, xn, out) {
        (Buffer::Cpu(x), Buffer::Cpu(xn), Buffer::Cpu(o)) => {
            nn::rmsnorm(x, norm, eps, xn)?;
            nn::linear_batch(xn, lens, parts, o)
        }
        #[cfg(feature = "cuda")]
        (x, _, o) => {
            let d = norm.numel();
            let (gpu, mut ov) = out_view(op, o, None)?;
            let ws = parts
                .iter()
                .map(|w| gpu_weight(op, w, gpu))
                .collect::<Result<Vec<_>>>()?;
            let total: usize = ws.iter().map(|w| w.rows).sum();
            let ok = !ws.is_empty()
                && ws.iter().all(|w| w.cols == d)
                && x.len() == t * d
                && ov.len() == t * total;
            check(ok, op, vec![t, d, total], vec![x.len(), ov.len()])?;
            let g = launch::Norm {
                weight: gpu_vector(op, norm, gpu)?,
                eps,
            };
            let xv = in_view(op, x, gpu, None)?;
            launch::linear(gpu, &ws, &xv, t, &mut ov, (total, false), Some(g))
        }
    }
}
// ANCHOR_END: rmsnorm_linear_batch

/// `out += x · Wᵀ`: a residual connection and the product that feeds it,
/// one kernel on a GPU (the product added as it is written). `x` holds
/// the rows of a batch of sequences (`lens`, as [`linear_batch`]), `out`
/// is `Σ lens × rows`.
///
/// # Errors
/// As [`linear_batch`].
pub fn linear_add(x: &Buffer, lens: &[usize], w: &Tensor, out: &mut Buffer) -> Result<()> {
    count(1);
    match (x, out) {
        (Buffer::Cpu(x), Buffer::Cpu(o)) => nn::linear_add(x, lens, w, o),
        #[cfg(feature = "cuda")]
        (x, o) => {
            let op = "linear_add";
            let t: usize = lens.iter().sum();
            let (gpu, mut ov) = out_view(op, o, None)?;
            let w = gpu_weight(op, w, gpu)?;
            let ok = x.len() == t * w.cols && ov.len() == t * w.rows;
            check(ok, op, vec![t, w.cols, w.rows], vec![x.len(), ov.len()])?;
            let xv = in_view(op, x, gpu, None)?;
            gpu_products(
                gpu,
                std::slice::from_ref(&w),
                &xv,
                t,
                &mut ov,
                (w.rows, true),
            )
        }
    }
}

/// Whether a GPU computes [`linear_swiglu`] in one kernel: gate and up of
/// one dtype and shape, and not rows that go to cuBLAS ([`by_cublas`]: two
/// products and the SwiGLU after).
fn swiglu_fused(gate: &Tensor, up: &Tensor, t: usize) -> bool {
    gate.dtype() == up.dtype() && gate.shape() == up.shape() && !by_cublas(gate.dtype(), t)
}

/// From this many activation rows on, a GPU hands an f32 weight's product
/// to cuBLAS's sgemm (a prompt's, or a big batch's); below it, to the
/// engine's kernel, which reads each weight once per row of activations.
pub(crate) const CUBLAS_MIN_TOKENS: usize = 8;

/// From this many rows on, a weight of any other type (f16, bf16, GGUF
/// blocks) goes to cuBLAS too, widened to f32 on the device first: a pass
/// over the matrix that only a prompt's many rows repay. SmolLM2's Q4_1 and
/// Q8_0 on an H200 (`infer bench --device cuda --quick`, five reps, a build
/// that took the threshold from the environment) read prompts of 16, 32,
/// 64, 128 and 512 tokens at 4,164, 7,135, 9,374, 12,072 and 11,850 tok/s
/// with the engine's kernels alone, and with cuBLAS from 32 rows at 4,090,
/// 5,135, 10,175, 23,510 and 27,937 (from 8 rows: 2,312 at 16 tokens).
pub(crate) const CUBLAS_MIN_TOKENS_WIDENED: usize = 64;

/// Whether a GPU multiplies `t` rows by a `dtype` weight with cuBLAS.
fn by_cublas(dtype: crate::DType, t: usize) -> bool {
    if dtype == crate::DType::F32 {
        t >= CUBLAS_MIN_TOKENS
    } else {
        t >= CUBLAS_MIN_TOKENS_WIDENED
    }
}

/// `out[i] = silu(x[i] · W_gateᵀ) ⊙ (x[i] · W_upᵀ)`: the SwiGLU half of a
/// Llama MLP, the two products and the gate in one call (one kernel on a
/// GPU; on the CPU [`nn::linear_swiglu`], which gives a batch's tasks the
/// gate as well as the products). `x` holds the rows of a batch of sequences
/// (`lens`), `out` is `Σ lens × ffn`.
///
/// # Errors
/// As [`linear_batch`].
pub fn linear_swiglu(
    x: &Buffer,
    lens: &[usize],
    (gate, up): (&Tensor, &Tensor),
    out: &mut Buffer,
) -> Result<()> {
    let t: usize = lens.iter().sum();
    count(swiglu_launches((gate, up), t));
    match (x, out) {
        (Buffer::Cpu(x), Buffer::Cpu(o)) => nn::linear_swiglu(x, lens, (gate, up), o),
        #[cfg(feature = "cuda")]
        (x, o) => {
            let op = "linear_swiglu";
            let (gpu, mut ov) = out_view(op, o, None)?;
            let (gw, uw) = (gpu_weight(op, gate, gpu)?, gpu_weight(op, up, gpu)?);
            let ok = gw.cols == uw.cols && x.len() == t * gw.cols && ov.len() == t * gw.rows;
            check(ok, op, vec![t, gw.cols, gw.rows], vec![x.len(), ov.len()])?;
            let xv = in_view(op, x, gpu, None)?;
            if swiglu_fused(gate, up, t) {
                return launch::linear_swiglu(gpu, (&gw, &uw), &xv, t, &mut ov, None);
            }
            let gpu = gpu.clone();
            let mut g = Buffer::zeros(&super::Device::Cuda(gpu.clone()), 2 * t * gw.rows)?;
            let (_, mut gv) = out_view(op, &mut g, None)?;
            for (w, col) in [(&gw, 0), (&uw, gw.rows)] {
                let mut part = gv.slice_mut(col..);
                gpu_products(
                    &gpu,
                    std::slice::from_ref(w),
                    &xv,
                    t,
                    &mut part,
                    (2 * gw.rows, false),
                )?;
            }
            launch::swiglu_rows(&gpu, &in_view(op, &g, &gpu, None)?, gw.rows, &mut ov)
        }
    }
}

/// [`rmsnorm`] of `x` by `norm` (weight, epsilon), then [`linear_swiglu`]
/// of the result: the second half of a Llama block. One kernel on a GPU
/// for a decode step's few rows (as [`rmsnorm_linear_batch`]); otherwise
/// the norm goes to `xn` (scratch, sized here) first.
///
/// # Errors
/// As [`rmsnorm`] and [`linear_swiglu`].
pub fn rmsnorm_linear_swiglu(
    x: &Buffer,
    (norm, eps): (&Tensor, f32),
    xn: &mut Buffer,
    lens: &[usize],
    (gate, up): (&Tensor, &Tensor),
    out: &mut Buffer,
) -> Result<()> {
    let t: usize = lens.iter().sum();
    xn.fit(x.len())?;
    if !norm_folds_into_swiglu(norm, (gate, up), t) {
        rmsnorm(x, norm, eps, xn)?;
        return linear_swiglu(xn, lens, (gate, up), out);
    }
    let op = "rmsnorm_linear_swiglu";
    check_fused_norm(op, x, norm)?;
    match (x, xn, out) {
        (Buffer::Cpu(x), Buffer::Cpu(xn), Buffer::Cpu(o)) => {
            nn::rmsnorm(x, norm, eps, xn)?;
            nn::linear_swiglu(xn, lens, (gate, up), o)
        }
        #[cfg(feature = "cuda")]
        (x, _, o) => {
            let d = norm.numel();
            let (gpu, mut ov) = out_view(op, o, None)?;
            let (gw, uw) = (gpu_weight(op, gate, gpu)?, gpu_weight(op, up, gpu)?);
            let ok = gw.cols == d && uw.cols == d && x.len() == t * d && ov.len() == t * gw.rows;
            check(ok, op, vec![t, d, gw.rows], vec![x.len(), ov.len()])?;
            let g = launch::Norm {
                weight: gpu_vector(op, norm, gpu)?,
                eps,
            };
            let xv = in_view(op, x, gpu, None)?;
            launch::linear_swiglu(gpu, (&gw, &uw), &xv, t, &mut ov, Some(g))
        }
    }
}

/// A Llama block's second half with its residual: `x += W_down ·
/// (silu(W_gate · norm(x)) ⊙ (W_up · norm(x)))`, the norm's rows left in
/// `xn` (sized here) and the SwiGLU rows in `act` (`Σ lens × ffn`). On the
/// host, [`nn::swiglu_down_add`]: a batch's tasks quantize the SwiGLU rows
/// they compute for the down product themselves. On a GPU,
/// [`rmsnorm_linear_swiglu`] and then [`linear_add`].
///
/// # Errors
/// As [`rmsnorm_linear_swiglu`] and [`linear_add`].
pub fn rmsnorm_mlp_add(
    x: &mut Buffer,
    (norm, eps): (&Tensor, f32),
    xn: &mut Buffer,
    lens: &[usize],
    (gate, up, down): (&Tensor, &Tensor, &Tensor),
    act: &mut Buffer,
) -> Result<()> {
    let t: usize = lens.iter().sum();
    xn.fit(x.len())?;
    match (&mut *x, &mut *xn, &mut *act) {
        (Buffer::Cpu(xc), Buffer::Cpu(nc), Buffer::Cpu(ac)) => {
            // The launches the two ops would count, as on a GPU.
            count(norm_swiglu_launches(norm, (gate, up), t) + 1);
            check_fused_norm_width("rmsnorm_mlp_add", xc.len(), norm)?;
            nn::rmsnorm(xc, norm, eps, nc)?;
            nn::swiglu_down_add(nc, lens, (gate, up, down), ac, xc)
        }
        #[cfg(feature = "cuda")]
        _ => {
            rmsnorm_linear_swiglu(x, (norm, eps), xn, lens, (gate, up), act)?;
            linear_add(act, lens, down, x)
        }
    }
}

/// Whether [`rmsnorm_linear_swiglu`] folds the norm into one fused
/// launch with gate and up on `t` rows (on a GPU; the host takes the same
/// branch and counts the same launches).
fn norm_folds_into_swiglu(norm: &Tensor, (gate, up): (&Tensor, &Tensor), t: usize) -> bool {
    folds_norm(norm, swiglu_fused(gate, up, t) && one_launch(1, t))
}

/// The launches [`linear_swiglu`] counts: one fused kernel, or the two
/// products and the gate.
fn swiglu_launches((gate, up): (&Tensor, &Tensor), t: usize) -> usize {
    if swiglu_fused(gate, up, t) { 1 } else { 3 }
}

/// The launches [`rmsnorm_linear_swiglu`] counts for gate and up on `t`
/// rows: one where the norm folds into the fused product, else the norm's
/// and [`linear_swiglu`]'s.
fn norm_swiglu_launches(norm: &Tensor, gu: (&Tensor, &Tensor), t: usize) -> usize {
    if norm_folds_into_swiglu(norm, gu, t) {
        1
    } else {
        1 + swiglu_launches(gu, t)
    }
}

/// Rows `rows` of `src` (rows of `d` values) into `dst`, stacked.
///
/// # Errors
/// A row past the end, `dst` not `rows.len() × d`, different devices.
pub fn gather_rows(src: &Buffer, d: usize, rows: &[usize], dst: &mut Buffer) -> Result<()> {
    count(1);
    let op = "gather_rows";
    let ok = d > 0
        && src.len().is_multiple_of(d)
        && dst.len() == rows.len() * d
        && rows.iter().all(|&r| r < src.len() / d);
    check(ok, op, vec![src.len(), d], vec![dst.len(), rows.len()])?;
    match (src, dst) {
        (Buffer::Cpu(s), Buffer::Cpu(o)) => {
            for (o, &r) in o.chunks_exact_mut(d).zip(rows) {
                o.copy_from_slice(&s[r * d..(r + 1) * d]);
            }
            Ok(())
        }
        #[cfg(feature = "cuda")]
        (s, o) => {
            let ids: Vec<u32> = rows.iter().map(|&r| r as u32).collect();
            let (gpu, mut ov) = out_view(op, o, None)?;
            launch::gather_rows(gpu, &in_view(op, s, gpu, None)?, d, &ids, &mut ov)
        }
    }
}

/// Values in one layer's block of a KV cache: `n_kv_heads × capacity ×
/// head_dim` (layout: [`AttnDims`]).
fn block_len(dims: AttnDims) -> usize {
    dims.n_kv_heads * dims.capacity * dims.head_dim
}

/// Causal attention for `q_rows.count` queries (`n_heads × head_dim`
/// values each) over one layer's cached keys and values, the blocks that
/// start at `cache_at` in `k` and `v` (layout: [`AttnDims`]). Query `r`
/// sees the first `start_len + r` positions; its result goes to row `r`
/// of `out_rows`.
///
/// # Errors
/// Sizes that disagree with `dims`, positions past the capacity, operands
/// on different devices.
#[allow(clippy::too_many_arguments)]
pub fn attention(
    q: &Buffer,
    q_rows: Rows,
    k: &Buffer,
    v: &Buffer,
    cache_at: usize,
    dims: AttnDims,
    start_len: usize,
    out: &mut Buffer,
    out_rows: Rows,
) -> Result<()> {
    count(1);
    let op = "attention";
    let row = dims.n_heads * dims.head_dim;
    let block = block_len(dims);
    let rows = q_rows.count;
    let ok = dims.n_kv_heads > 0
        && dims.n_heads.is_multiple_of(dims.n_kv_heads)
        && rows > 0
        && start_len > 0
        && start_len + rows - 1 <= dims.capacity
        && out_rows.count == rows
        && q_rows.fit(row, q.len())
        && out_rows.fit(row, out.len())
        && cache_at + block <= k.len()
        && cache_at + block <= v.len();
    check(
        ok,
        op,
        vec![q.len(), k.len(), v.len(), out.len()],
        vec![rows, start_len, row, block],
    )?;
    match (q, k, v, out) {
        (Buffer::Cpu(q), Buffer::Cpu(k), Buffer::Cpu(v), Buffer::Cpu(o)) => {
            let (k, v) = (
                &k[cache_at..cache_at + block],
                &v[cache_at..cache_at + block],
            );
            for r in 0..rows {
                let qr = &q[q_rows.at + r * q_rows.stride..][..row];
                let or = &mut o[out_rows.at + r * out_rows.stride..][..row];
                kernels::attention_decode(qr, k, v, dims, start_len + r, or);
            }
            Ok(())
        }
        #[cfg(feature = "cuda")]
        (q, k, v, o) => {
            let end = |r: Rows| r.at + (rows - 1) * r.stride + row;
            let (gpu, mut ov) = out_view(op, o, Some(out_rows.at..end(out_rows)))?;
            let qv = in_view(op, q, gpu, Some(q_rows.at..end(q_rows)))?;
            let kv = in_view(op, k, gpu, Some(cache_at..cache_at + block))?;
            let vv = in_view(op, v, gpu, Some(cache_at..cache_at + block))?;
            let (qs, os) = (q_rows.stride, out_rows.stride);
            launch::attention(gpu, &qv, qs, &kv, &vv, dims, start_len, rows, &mut ov, os)
        }
    }
}

/// Write the keys and values of `k_rows.count` new positions into the
/// layer blocks of `k_cache` and `v_cache` that start at `cache_at`
/// (layout: [`AttnDims`]), at positions `first_pos..`: row `r` of `k_rows`
/// in `src` holds that position's keys, KV heads side by side, and the
/// same row of `v_rows` its values (both inside the fused QKV rows of a
/// forward pass). One kernel on a GPU.
///
/// # Errors
/// Sizes that disagree with `dims`, positions past the capacity, operands
/// on different devices.
#[allow(clippy::too_many_arguments)]
pub fn kv_write(
    k_cache: &mut Buffer,
    v_cache: &mut Buffer,
    cache_at: usize,
    src: &Buffer,
    k_rows: Rows,
    v_rows: Rows,
    dims: AttnDims,
    first_pos: usize,
) -> Result<()> {
    count(1);
    let op = "kv_write";
    let (kv, hd, cap) = (dims.n_kv_heads, dims.head_dim, dims.capacity);
    let (block, rows) = (block_len(dims), k_rows.count);
    let ok = cache_at + block <= k_cache.len()
        && cache_at + block <= v_cache.len()
        && v_rows.count == rows
        && k_rows.stride == v_rows.stride
        && k_rows.fit(kv * hd, src.len())
        && v_rows.fit(kv * hd, src.len())
        && first_pos + rows <= cap;
    let lhs = vec![k_cache.len(), src.len(), k_rows.stride];
    check(ok, op, lhs, vec![first_pos, rows, cap])?;
    match (k_cache, v_cache, src) {
        (Buffer::Cpu(kc), Buffer::Cpu(vc), Buffer::Cpu(s)) => {
            for r in 0..rows {
                for g in 0..kv {
                    let to = cache_at + (g * cap + first_pos + r) * hd;
                    let (kf, vf) = (
                        k_rows.at + r * k_rows.stride + g * hd,
                        v_rows.at + r * v_rows.stride + g * hd,
                    );
                    kc[to..to + hd].copy_from_slice(&s[kf..kf + hd]);
                    vc[to..to + hd].copy_from_slice(&s[vf..vf + hd]);
                }
            }
            Ok(())
        }
        #[cfg(feature = "cuda")]
        (kc, vc, s) => {
            if rows == 0 {
                return Ok(());
            }
            let (gpu, mut kv_) = out_view(op, kc, Some(cache_at..cache_at + block))?;
            let gpu = gpu.clone();
            let (_, mut vv) = out_view(op, vc, Some(cache_at..cache_at + block))?;
            let sv = in_view(op, s, &gpu, None)?;
            let ats = (k_rows.at, v_rows.at);
            launch::kv_write(
                &gpu,
                &mut kv_,
                &mut vv,
                &sv,
                ats,
                k_rows.stride,
                dims,
                first_pos,
                rows,
            )
        }
    }
}
