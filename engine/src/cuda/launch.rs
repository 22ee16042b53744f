//! The launchers: one function per kernel in `kernels/*.cu`, taking views
//! of device buffers and sizes. Shapes are checked by the callers
//! ([`crate::device::ops`]); here sizes become the kernels' `int`s and each
//! kernel gets its grid. Every launch is queued on the GPU's one stream, so
//! launches run in the order they are made.

use cudarc::driver::{CudaSlice, CudaView, CudaViewMut, LaunchArgs, LaunchConfig, PushKernelArg};

use super::gpu::{Gpu, driver};
use super::graph::Staged;
use crate::dtype::DType;
use crate::error::{EngineError, Result};
use crate::kernels::{AttnDims, GPU_MANY_ROWS as MANY_ROWS, GPU_MAX_PARTS as MAX_PARTS};

/// Values a kernel reads.
pub(crate) type In<'a> = CudaView<'a, f32>;
/// Values a kernel writes.
pub(crate) type Out<'a> = CudaViewMut<'a, f32>;

/// Threads per block of the row-wise kernels (`ROW_THREADS` in common.cuh).
const ROW_THREADS: u32 = 256;
/// Threads per block of the elementwise kernels.
const ELEM_THREADS: u32 = 256;
/// Warps per block of the products that read their activations from
/// global memory: a prompt's rows, and a row too wide to stage (one weight
/// row per warp). Measured before the single-row products staged their
/// rows, when it held for all of them: small blocks spread a 576-row product over more of the GPU's multiprocessors:
/// on an H200, SmolLM2 decoded at 441 tok/s with 1 warp, 435–443 with 2,
/// 430–432 with 4, 403–409 with 8 and 336–340 with 16, and read a
/// 128-token prompt at 11,753, 11,913–11,945, 12,045–12,065,
/// 11,353–11,414 and 7,740–7,753 (`infer bench --device cuda --quick`, a
/// build that took the count from the environment; two or three runs
/// each, one for 1 warp). Every GPU test passed with 2.
const LINEAR_WARPS: u32 = 2;
/// Warps per block of the single-row products, which stage their
/// activation row in shared memory first: the block's threads share that
/// work, so a block of more warps pays for it over more weight rows. Not
/// swept as [`LINEAR_WARPS`] was; on an H200 (Nsight Compute, one decode
/// step) a 576-row product took 7.5–7.7 µs staged in blocks of four warps
/// and 7.9 µs reading global memory in blocks of two, and decode ran at
/// 601–609 tok/s against 585.
const STAGED_WARPS: u32 = 4;
/// Threads per block of the attention kernels (eight warps).
const ATTN_THREADS: u32 = 256;
/// The longest head the attention kernels take (`ATTN_MAX_HEAD_DIM` in
/// attention.cu: each lane keeps head_dim / 32 output sums in registers).
const ATTN_MAX_HEAD_DIM: usize = 256;
/// Shared memory a block may use without opting in (scores of one head).
const SHARED_LIMIT: usize = 48 * 1024;

/// A size as the kernels' `int`.
fn int(n: usize, what: &str) -> Result<i32> {
    i32::try_from(n)
        .map_err(|_| EngineError::Device(format!("{what} = {n} is too large for a CUDA kernel")))
}

/// A grid-stride launch over `n` elements.
fn elementwise(n: usize) -> LaunchConfig {
    let blocks = (n as u64)
        .div_ceil(u64::from(ELEM_THREADS))
        .clamp(1, 65_535) as u32;
    LaunchConfig {
        grid_dim: (blocks, 1, 1),
        block_dim: (ELEM_THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// One block of [`ROW_THREADS`] per row.
fn per_row(rows: usize) -> Result<LaunchConfig> {
    Ok(LaunchConfig {
        grid_dim: (int(rows, "rows")? as u32, 1, 1),
        block_dim: (ROW_THREADS, 1, 1),
        shared_mem_bytes: 0,
    })
}

/// Queue kernel `name` with the arguments in `b` on the GPU's stream; or,
/// while a decode step replays a CUDA graph ([`Gpu::launch_now`]), only
/// check that it is the launch the graph holds next (its arguments were
/// staged already).
///
/// # Safety
/// As [`LaunchArgs::launch`]: the arguments must match the kernel's
/// parameters and every index it computes must stay inside its buffers.
unsafe fn go(
    gpu: &Gpu,
    name: &'static str,
    mut b: LaunchArgs<'_>,
    cfg: LaunchConfig,
) -> Result<()> {
    if !gpu.launch_now(name, &cfg)? {
        return Ok(());
    }
    // SAFETY: the caller's.
    unsafe { b.launch(cfg) }
        .map(drop)
        .map_err(|e| driver(&format!("launch of {name}"), e))
}

/// `x += y` (same length).
pub(crate) fn add_inplace(gpu: &Gpu, x: &mut Out<'_>, y: &In<'_>) -> Result<()> {
    let n = int(x.len(), "elements")?;
    let f = gpu.function("add_inplace_f32")?;
    let mut b = gpu.stream().launch_builder(f);
    b.arg(x).arg(y).arg(&n);
    // SAFETY: the kernel reads and writes `n` floats of views that hold at
    // least that many (the caller checked `y.len() == x.len()`).
    unsafe { go(gpu, "add_inplace_f32", b, elementwise(n as usize)) }
}

/// `x[r][i] += b[i]` for rows of `d` values (`b`: `d` f32 on the device).
pub(crate) fn add_bias_rows(gpu: &Gpu, x: &mut Out<'_>, b: &CudaSlice<u8>, d: usize) -> Result<()> {
    let (n, d_i) = (int(x.len(), "elements")?, int(d, "width")?);
    let f = gpu.function("add_bias_rows_f32")?;
    let mut a = gpu.stream().launch_builder(f);
    a.arg(x).arg(b).arg(&d_i).arg(&n);
    // SAFETY: the caller checked d > 0 divides the view's length and the
    // bias holds d floats.
    unsafe { go(gpu, "add_bias_rows_f32", a, elementwise(n as usize)) }
}

/// `out[r][i] = silu(gate_up[r][i]) · gate_up[r][ffn + i]`.
pub(crate) fn swiglu_rows(
    gpu: &Gpu,
    gate_up: &In<'_>,
    ffn: usize,
    out: &mut Out<'_>,
) -> Result<()> {
    let rows = int(out.len() / ffn.max(1), "rows")?;
    let ffn_i = int(ffn, "ffn")?;
    let n = out.len();
    let f = gpu.function("swiglu_rows_f32")?;
    let mut b = gpu.stream().launch_builder(f);
    b.arg(gate_up).arg(&ffn_i).arg(&rows).arg(out);
    // SAFETY: reads rows·2·ffn and writes rows·ffn floats; checked by the caller.
    unsafe { go(gpu, "swiglu_rows_f32", b, elementwise(n)) }
}

/// GELU (tanh form) in place.
pub(crate) fn gelu_tanh(gpu: &Gpu, x: &mut Out<'_>) -> Result<()> {
    let n = int(x.len(), "elements")?;
    let f = gpu.function("gelu_tanh_f32")?;
    let mut b = gpu.stream().launch_builder(f);
    b.arg(x).arg(&n);
    // SAFETY: `n` is the view's length.
    unsafe { go(gpu, "gelu_tanh_f32", b, elementwise(n as usize)) }
}

/// `dst[i] = src[rows[i]]` for rows of `d` values.
pub(crate) fn gather_rows(
    gpu: &Gpu,
    src: &In<'_>,
    d: usize,
    rows: &[u32],
    dst: &mut Out<'_>,
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let ids = gpu.stage(rows)?;
    let d_i = int(d, "width")?;
    let f = gpu.function("gather_rows_f32")?;
    let mut b = gpu.stream().launch_builder(f);
    b.arg(src).arg(&d_i).arg(&ids.ptr).arg(dst);
    // SAFETY: the caller checked every row index and the lengths.
    unsafe { go(gpu, "gather_rows_f32", b, per_row(rows.len())?) }
}

/// RMSNorm of each row of `d` values of `x` into `out`.
pub(crate) fn rmsnorm(
    gpu: &Gpu,
    x: &In<'_>,
    w: &CudaSlice<u8>,
    eps: f32,
    d: usize,
    out: &mut Out<'_>,
) -> Result<()> {
    let d_i = int(d, "width")?;
    let rows = x.len() / d.max(1);
    let f = gpu.function("rmsnorm_f32")?;
    let mut b = gpu.stream().launch_builder(f);
    b.arg(x).arg(w).arg(&eps).arg(&d_i).arg(out);
    // SAFETY: rows·d floats in and out, d f32 weights (checked by the caller).
    unsafe { go(gpu, "rmsnorm_f32", b, per_row(rows)?) }
}

/// LayerNorm of each row of `d` values of `x` into `out`.
pub(crate) fn layernorm(
    gpu: &Gpu,
    x: &In<'_>,
    w: &CudaSlice<u8>,
    bias: &CudaSlice<u8>,
    eps: f32,
    d: usize,
    out: &mut Out<'_>,
) -> Result<()> {
    let d_i = int(d, "width")?;
    let rows = x.len() / d.max(1);
    let f = gpu.function("layernorm_f32")?;
    let mut b = gpu.stream().launch_builder(f);
    b.arg(x).arg(w).arg(bias).arg(&eps).arg(&d_i).arg(out);
    // SAFETY: as rmsnorm, plus d f32 biases.
    unsafe { go(gpu, "layernorm_f32", b, per_row(rows)?) }
}

/// Softmax of each row of `n` values, in place.
pub(crate) fn softmax_rows(gpu: &Gpu, x: &mut Out<'_>, n: usize) -> Result<()> {
    let rows = x.len() / n.max(1);
    let n_i = int(n, "row length")?;
    let f = gpu.function("softmax_rows_f32")?;
    let mut b = gpu.stream().launch_builder(f);
    b.arg(x).arg(&n_i);
    // SAFETY: rows·n floats, one block per row.
    unsafe { go(gpu, "softmax_rows_f32", b, per_row(rows)?) }
}

/// The index of each row's largest value and its log-probability (NaN
/// for a row holding NaN or +inf).
pub(crate) fn argmax_rows(gpu: &Gpu, x: &In<'_>, n: usize) -> Result<(Vec<u32>, Vec<f32>)> {
    let rows = x.len() / n.max(1);
    let n_i = int(n, "row length")?;
    let mut ids = gpu.zeros::<u32>(rows.max(1))?;
    let mut logprobs = gpu.zeros::<f32>(rows.max(1))?;
    let f = gpu.function("argmax_rows_f32")?;
    let mut b = gpu.stream().launch_builder(f);
    b.arg(x).arg(&n_i).arg(&mut ids).arg(&mut logprobs);
    // Up to 1024 threads, whole warps, never more than the row has values.
    let threads = (n.div_ceil(32) * 32).clamp(32, 1024) as u32;
    let cfg = LaunchConfig {
        block_dim: (threads, 1, 1),
        ..per_row(rows)?
    };
    // SAFETY: rows·n floats in, one u32 and one f32 out per row.
    unsafe { go(gpu, "argmax_rows_f32", b, cfg) }?;
    let (mut ids, mut logprobs) = (gpu.download(&ids)?, gpu.download(&logprobs)?);
    ids.truncate(rows);
    logprobs.truncate(rows);
    Ok((ids, logprobs))
}

/// Each row's RoPE angles for its position (`positions.len() × head_dim`).
pub(crate) fn rope_angles(
    gpu: &Gpu,
    positions: &[u32],
    head_dim: usize,
    theta: f32,
    out: &mut Out<'_>,
) -> Result<()> {
    if positions.is_empty() {
        return Ok(());
    }
    let pos = gpu.stage(positions)?;
    let (rows, hd) = (int(positions.len(), "rows")?, int(head_dim, "head_dim")?);
    let f = gpu.function("rope_angles_f32")?;
    let mut b = gpu.stream().launch_builder(f);
    b.arg(&pos.ptr).arg(&rows).arg(&hd).arg(&theta).arg(out);
    // SAFETY: rows positions in, rows·head_dim floats out.
    let cfg = elementwise(positions.len() * head_dim / 2);
    unsafe { go(gpu, "rope_angles_f32", b, cfg) }
}

/// Rotate the first `heads` heads of each of `rows` rows of `x` (row `r`
/// at `r · row_stride`) by that row's angles.
pub(crate) fn rope_rotate(
    gpu: &Gpu,
    x: &mut Out<'_>,
    rows: usize,
    row_stride: usize,
    heads: usize,
    head_dim: usize,
    angles: &In<'_>,
) -> Result<()> {
    let a = (
        int(rows, "rows")?,
        int(row_stride, "row stride")?,
        int(heads, "heads")?,
        int(head_dim, "head_dim")?,
    );
    let f = gpu.function("rope_rotate_f32")?;
    let mut b = gpu.stream().launch_builder(f);
    b.arg(x).arg(&a.0).arg(&a.1).arg(&a.2).arg(&a.3).arg(angles);
    // SAFETY: every index stays below rows·row_stride (heads·head_dim ≤
    // row_stride) and rows·head_dim angles, checked by the caller.
    let cfg = elementwise(rows * heads * head_dim / 2);
    unsafe { go(gpu, "rope_rotate_f32", b, cfg) }
}

/// A weight matrix on the device: `rows × cols` values stored as `dtype`.
pub(crate) struct Weight<'a> {
    pub bytes: &'a CudaSlice<u8>,
    pub dtype: DType,
    pub rows: usize,
    pub cols: usize,
}

/// The RMSNorm folded into a product: its f32 weight (one value per
/// column) and epsilon.
pub(crate) struct Norm<'a> {
    pub weight: &'a CudaSlice<u8>,
    pub eps: f32,
}

/// How a single-row product reads its activation row (`X_GLOBAL`,
/// `X_STAGED`, `X_NORMED` in quant.cu): as it lies in global memory,
/// staged by each block in shared memory, or normalized into it.
const X_GLOBAL: i32 = 0;
const X_STAGED: i32 = 1;
const X_NORMED: i32 = 2;

/// One warp per weight row, and a grid row per activation row (or per
/// `MANY_ROWS` of them when there are that many): the launch of the
/// products of `rows` weight rows as wide as `w`'s, whether it takes the
/// many-rows kernels, and how the single-row kernels read x. Those stage
/// each activation row in shared memory (`staged_row` in quant.cu: the
/// row and a pad word per 32 values), normalizing it when `norm`, unless it
/// does not fit; a block of [`STAGED_WARPS`] shares it.
fn per_weight_row(
    w: &Weight<'_>,
    rows: usize,
    t: usize,
    norm: bool,
) -> Result<(LaunchConfig, bool, i32)> {
    let many = t >= MANY_ROWS;
    let grid_rows = if many { t.div_ceil(MANY_ROWS) } else { t };
    let staged = (w.cols + w.cols / 32 + 1) * 4;
    if norm && (many || staged > SHARED_LIMIT) {
        return Err(EngineError::Device(format!(
            "a CUDA product normalizes fewer than {MANY_ROWS} rows of at most {} values \
             ({t} rows of {} asked)",
            SHARED_LIMIT / 4 * 32 / 33 - 1,
            w.cols
        )));
    }
    let x_mode = match (many, norm) {
        (true, _) => X_GLOBAL,
        (false, true) => X_NORMED,
        (false, false) if staged <= SHARED_LIMIT => X_STAGED,
        (false, false) => X_GLOBAL,
    };
    let (warps, shared) = if x_mode == X_GLOBAL {
        (LINEAR_WARPS, 0)
    } else {
        (STAGED_WARPS, staged)
    };
    let cfg = LaunchConfig {
        grid_dim: (
            rows.div_ceil(warps as usize) as u32,
            int(grid_rows, "tokens")? as u32,
            1,
        ),
        block_dim: (warps * 32, 1, 1),
        shared_mem_bytes: shared as u32,
    };
    Ok((cfg, many, x_mode))
}

/// Bytes of one of `w`'s rows.
fn row_bytes(w: &Weight<'_>) -> i64 {
    ((w.cols / w.dtype.block_len()) * w.dtype.unit_bytes()) as i64
}

/// `out[t·out_stride + c] = x[t] · W[c]` (or `+=` when `accumulate`) for
/// `t` activation rows of `cols` floats and `W` the `parts` stacked by
/// rows (their rows side by side in `out`). Below `MANY_ROWS` rows it is
/// one launch for up to [`MAX_PARTS`] weights, and `norm`, when given,
/// normalizes `x` inside it; a prompt's rows take one weight and no norm
/// (the caller splits the work).
pub(crate) fn linear(
    gpu: &Gpu,
    parts: &[Weight<'_>],
    x: &In<'_>,
    t: usize,
    out: &mut Out<'_>,
    (out_stride, accumulate): (usize, bool),
    norm: Option<Norm<'_>>,
) -> Result<()> {
    let total: usize = parts.iter().map(|w| w.rows).sum();
    let Some(w) = parts.first() else {
        return Ok(());
    };
    if t == 0 || total == 0 {
        return Ok(());
    }
    let (cfg, many, x_mode) = per_weight_row(w, total, t, norm.is_some())?;
    if parts.len() > MAX_PARTS || (many && (parts.len() > 1 || norm.is_some())) {
        return Err(EngineError::Device(format!(
            "one CUDA product takes at most {MAX_PARTS} weights, and for {MANY_ROWS} rows or \
             more one weight and no norm (asked: {} weights, {t} rows)",
            parts.len()
        )));
    }
    let (stride, acc) = (int(out_stride, "out stride")?, i32::from(accumulate));
    let (rows, cols, t_i) = (int(total, "rows")?, int(w.cols, "cols")?, int(t, "tokens")?);
    if many {
        let f = gpu.function("linear_rows_many")?;
        let (code, rb) = (super::source::dtype_code(w.dtype), row_bytes(w));
        let mut b = gpu.stream().launch_builder(f);
        b.arg(w.bytes).arg(&code).arg(&rb).arg(&rows).arg(&cols);
        b.arg(x).arg(&t_i).arg(out).arg(&stride).arg(&acc);
        // SAFETY: the weight holds rows·row_bytes bytes, x t·cols floats,
        // out (t−1)·out_stride + rows floats (checked by the caller); the
        // kernel gets t and skips the rows past it.
        return unsafe { go(gpu, "linear_rows_many", b, cfg) };
    }
    // Missing parts repeat the last one with no rows of its own.
    let part = |i: usize| parts.get(i).unwrap_or(&parts[parts.len() - 1]);
    let codes = [0, 1, 2].map(|i| super::source::dtype_code(part(i).dtype));
    let rbs = [0, 1, 2].map(|i| row_bytes(part(i)));
    let end0 = int(w.rows, "rows")?;
    let end1 = int(w.rows + parts.get(1).map_or(0, |p| p.rows), "rows")?;
    let (g, eps) = match &norm {
        Some(n) => (n.weight, n.eps),
        None => (w.bytes, 0.0f32),
    };
    let f = gpu.function("linear_rows")?;
    let mut b = gpu.stream().launch_builder(f);
    b.arg(part(0).bytes).arg(part(1).bytes).arg(part(2).bytes);
    b.arg(&codes[0]).arg(&codes[1]).arg(&codes[2]);
    b.arg(&rbs[0]).arg(&rbs[1]).arg(&rbs[2]);
    b.arg(&end0).arg(&end1).arg(&rows).arg(&cols);
    b.arg(x).arg(g).arg(&eps).arg(&x_mode);
    b.arg(out).arg(&stride).arg(&acc);
    // SAFETY: each part holds its rows·row_bytes bytes (one width, checked
    // by the caller), a warp reads part i only for rows in its range; x
    // holds t·cols floats, g cols f32 when normalizing (checked by the
    // caller), out (t−1)·out_stride + rows floats.
    unsafe { go(gpu, "linear_rows", b, cfg) }
}

/// `out[t][r] = silu(x[t] · gate[r]) · (x[t] · up[r])` for `t` activation
/// rows, `gate` and `up` of one dtype and shape; `norm`, below `MANY_ROWS`
/// rows, normalizes `x` first in the same kernel.
pub(crate) fn linear_swiglu(
    gpu: &Gpu,
    (gate, up): (&Weight<'_>, &Weight<'_>),
    x: &In<'_>,
    t: usize,
    out: &mut Out<'_>,
    norm: Option<Norm<'_>>,
) -> Result<()> {
    if t == 0 || gate.rows == 0 {
        return Ok(());
    }
    let (cfg, many, x_mode) = per_weight_row(gate, gate.rows, t, norm.is_some())?;
    let a = (
        super::source::dtype_code(gate.dtype),
        row_bytes(gate),
        int(gate.rows, "rows")?,
        int(gate.cols, "cols")?,
        int(t, "tokens")?,
    );
    let name = if many {
        "linear_swiglu_rows_many"
    } else {
        "linear_swiglu_rows"
    };
    let f = gpu.function(name)?;
    let mut b = gpu.stream().launch_builder(f);
    b.arg(gate.bytes)
        .arg(up.bytes)
        .arg(&a.0)
        .arg(&a.1)
        .arg(&a.2)
        .arg(&a.3);
    b.arg(x);
    let (g, eps) = match &norm {
        Some(n) => (n.weight, n.eps),
        None => (gate.bytes, 0.0f32),
    };
    if many {
        b.arg(&a.4);
    } else {
        b.arg(g).arg(&eps).arg(&x_mode);
    }
    b.arg(out);
    // SAFETY: both weights hold rows·row_bytes bytes (same dtype and shape,
    // checked by the caller), x t·cols floats, g cols f32 when normalizing,
    // out t·rows floats; the many-rows kernel gets t and skips the rows
    // past it.
    unsafe { go(gpu, name, b, cfg) }
}

/// `out[t·out_stride + r] = x[t] · w[r]` (or `+=` when `accumulate`) by
/// cuBLAS's sgemm. A weight in any other type is first widened to f32 on
/// the device (one pass over it, into a buffer the GPU keeps for the next):
/// the activations stay f32, as in the engine's own kernels.
/// Returns `false`, having done nothing, when cuBLAS is not loaded.
pub(crate) fn linear_cublas(
    gpu: &Gpu,
    w: &Weight<'_>,
    x: &In<'_>,
    t: usize,
    out: &mut Out<'_>,
    (out_stride, accumulate): (usize, bool),
) -> Result<bool> {
    use cudarc::cublas::sys::cublasOperation_t::{CUBLAS_OP_N, CUBLAS_OP_T};
    use cudarc::cublas::{Gemm, GemmConfig};
    let Some(blas) = gpu.blas() else {
        return Ok(false);
    };
    if t == 0 || w.rows == 0 {
        return Ok(false);
    }
    gpu.eager_only("a cuBLAS product")?;
    let n = w.rows * w.cols;
    let mut widened = gpu.widened();
    let a = if w.dtype == DType::F32 {
        // SAFETY: an f32 weight's bytes are rows·cols little-endian f32s,
        // and device allocations are aligned far beyond 4 bytes.
        unsafe { w.bytes.transmute::<f32>(n) }
            .ok_or_else(|| EngineError::Device("an f32 weight shorter than its shape".into()))?
    } else {
        if widened.as_ref().is_none_or(|b| b.len() < n) {
            *widened = Some(gpu.zeros::<f32>(n)?);
        }
        let Some(buf) = widened.as_mut() else {
            return Ok(false);
        };
        let (code, rb, cols) = (
            super::source::dtype_code(w.dtype),
            row_bytes(w),
            int(w.cols, "cols")?,
        );
        let mut dst = buf.slice_mut(..n);
        let f = gpu.function("dequant_rows")?;
        let mut b = gpu.stream().launch_builder(f);
        b.arg(w.bytes).arg(&code).arg(&rb).arg(&cols).arg(&mut dst);
        // SAFETY: the weight holds rows·row_bytes bytes (checked by the
        // caller), dst rows·cols floats, one block per row.
        unsafe { go(gpu, "dequant_rows", b, per_row(w.rows)?) }?;
        buf.slice(..n)
    };
    // Column-major, as cuBLAS sees it: the row-major weight is a cols×rows
    // matrix (transposed by CUBLAS_OP_T), the activations a cols×t one,
    // and the result a rows×t one whose columns lie out_stride apart, which
    // is the row-major [t][out_stride] output.
    let cfg = GemmConfig {
        transa: CUBLAS_OP_T,
        transb: CUBLAS_OP_N,
        m: int(w.rows, "rows")?,
        n: int(t, "tokens")?,
        k: int(w.cols, "cols")?,
        alpha: 1.0f32,
        lda: int(w.cols, "cols")?,
        ldb: int(w.cols, "cols")?,
        beta: if accumulate { 1.0f32 } else { 0.0 },
        ldc: int(out_stride, "out stride")?,
    };
    // SAFETY: a holds rows·cols floats, x t·cols, and out (t−1)·out_stride
    // + rows (checked by the caller).
    unsafe { blas.gemm(cfg, &a, x, out) }
        .map_err(|e| EngineError::Device(format!("cuBLAS sgemm: {e:?}")))?;
    Ok(true)
}

/// Rows `ids` of a `dtype` table of `cols` values per row, as f32.
pub(crate) fn embed(
    gpu: &Gpu,
    table: &CudaSlice<u8>,
    dtype: DType,
    cols: usize,
    ids: &[u32],
    out: &mut Out<'_>,
) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let row_bytes = ((cols / dtype.block_len()) * dtype.unit_bytes()) as i64;
    let dev_ids = gpu.stage(ids)?;
    let (code, cols_i) = (super::source::dtype_code(dtype), int(cols, "cols")?);
    let f = gpu.function("embed_rows")?;
    let mut b = gpu.stream().launch_builder(f);
    b.arg(table)
        .arg(&code)
        .arg(&row_bytes)
        .arg(&cols_i)
        .arg(&dev_ids.ptr)
        .arg(out);
    // SAFETY: every id was checked against the table's rows by the caller;
    // out holds ids·cols floats.
    unsafe { go(gpu, "embed_rows", b, per_row(ids.len())?) }
}

/// A per-step value (a position, a length) for a kernel that reads it
/// through a pointer in a CUDA graph's step and by value otherwise: its
/// staged address, or a null pointer.
fn step_value(gpu: &Gpu, graphing: bool, v: i32) -> Result<Staged> {
    if graphing {
        gpu.stage(&[v as u32])
    } else {
        Ok(Staged::null())
    }
}

/// Causal attention for `rows` queries (row `r` of `q` at `r · q_stride`)
/// over f32 caches (views that start at the layer's block); query `r`
/// sees the first `start_len + r` positions.
#[allow(clippy::too_many_arguments)]
pub(crate) fn attention(
    gpu: &Gpu,
    q: &In<'_>,
    q_stride: usize,
    k: &In<'_>,
    v: &In<'_>,
    dims: AttnDims,
    start_len: usize,
    rows: usize,
    out: &mut Out<'_>,
    out_stride: usize,
) -> Result<()> {
    if dims.head_dim > ATTN_MAX_HEAD_DIM {
        return Err(EngineError::Device(format!(
            "CUDA attention takes heads of at most {ATTN_MAX_HEAD_DIM} values, not {}",
            dims.head_dim
        )));
    }
    // A graph's step reads its length from device memory, and its shared
    // memory holds scores for every position the cache has.
    let graphing = gpu.graphing();
    let longest = if graphing {
        dims.capacity
    } else {
        start_len + rows.saturating_sub(1)
    };
    // One score per position, then one partial output per warp.
    let shared = (longest + (ATTN_THREADS as usize / 32) * dims.head_dim) * 4;
    if shared > SHARED_LIMIT {
        return Err(EngineError::Device(format!(
            "CUDA attention over {longest} positions needs {shared} bytes of shared memory, \
             more than {SHARED_LIMIT}"
        )));
    }
    let a = (
        int(q_stride, "q stride")?,
        int(dims.n_heads, "heads")?,
        int(dims.n_kv_heads, "kv heads")?,
        int(dims.head_dim, "head_dim")?,
        int(dims.capacity, "capacity")?,
        int(start_len, "positions")?,
        int(out_stride, "out stride")?,
    );
    let cfg = LaunchConfig {
        grid_dim: (a.1 as u32, int(rows, "rows")? as u32, 1),
        block_dim: (ATTN_THREADS, 1, 1),
        shared_mem_bytes: shared.max(4) as u32,
    };
    let dyn_len = step_value(gpu, graphing, a.5)?;
    let by_value = if graphing { 0 } else { a.5 };
    let f = gpu.function("attention_f32")?;
    let mut b = gpu.stream().launch_builder(f);
    b.arg(q).arg(&a.0).arg(k).arg(v);
    b.arg(&a.1)
        .arg(&a.2)
        .arg(&a.3)
        .arg(&a.4)
        .arg(&by_value)
        .arg(&dyn_len.ptr)
        .arg(out)
        .arg(&a.6);
    // SAFETY: the caller checked the caches hold n_kv_heads·capacity·head_dim
    // floats, start_len + rows − 1 ≤ capacity, and q/out hold rows strides.
    unsafe { go(gpu, "attention_f32", b, cfg) }
}

/// Write `rows` new positions' keys and values into a layer's f32 cache
/// blocks at positions `first_pos..first_pos + rows`: row `r`'s keys
/// start at `k_at + r · src_stride` in `src`, its values at `v_at + r ·
/// src_stride`, KV heads side by side. One launch for both.
#[allow(clippy::too_many_arguments)]
pub(crate) fn kv_write(
    gpu: &Gpu,
    k_cache: &mut Out<'_>,
    v_cache: &mut Out<'_>,
    src: &In<'_>,
    (k_at, v_at): (usize, usize),
    src_stride: usize,
    dims: AttnDims,
    first_pos: usize,
    rows: usize,
) -> Result<()> {
    let a = (
        int(src_stride, "src stride")?,
        int(dims.n_kv_heads, "kv heads")?,
        int(dims.head_dim, "head_dim")?,
        int(dims.capacity, "capacity")?,
        int(first_pos, "position")?,
        int(rows, "rows")?,
    );
    let (k_at, v_at) = (k_at as i64, v_at as i64);
    let graphing = gpu.graphing();
    let dyn_pos = step_value(gpu, graphing, a.4)?;
    let by_value = if graphing { 0 } else { a.4 };
    let f = gpu.function("kv_write_f32")?;
    let mut b = gpu.stream().launch_builder(f);
    b.arg(k_cache).arg(v_cache).arg(src).arg(&k_at).arg(&v_at);
    b.arg(&a.0)
        .arg(&a.1)
        .arg(&a.2)
        .arg(&a.3)
        .arg(&by_value)
        .arg(&dyn_pos.ptr)
        .arg(&a.5);
    // SAFETY: the caller checked first_pos + rows ≤ capacity, both blocks,
    // and that both runs of rows lie inside src.
    let cfg = elementwise(rows * dims.n_kv_heads * dims.head_dim);
    unsafe { go(gpu, "kv_write_f32", b, cfg) }
}
