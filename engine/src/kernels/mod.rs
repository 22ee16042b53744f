//! Slice-level kernels: the hot loops of inference on plain `&[f32]` slices.
//!
//! Every function here has a plain reference twin in [`scalar`]. The public
//! functions in this module pick the fastest implementation for the running
//! CPU (chosen once, at run time, see [`dispatch`]) and split large work
//! across the thread pool of [`crate::threads`].
//!
//! These are the building blocks under the tensor API; they trust their
//! caller about lengths. Each documents what it expects under "Panics": a
//! wrong length panics with a message (it never reads out of bounds).

#[cfg(target_arch = "x86_64")]
mod attend_avx512;
#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
pub use crate::dispatch;
#[cfg(target_arch = "aarch64")]
mod neon;
pub mod scalar;
mod tile_gemm;

pub use dispatch::{Level, level};

/// Call a kernel at level `$l`: `simd_at!(l, avx2_neon: name(args))` calls
/// `avx2::name`, `neon::name` or `scalar::name`; kernels without a NEON
/// version are listed with `avx2` and use the plain one there.
///
/// An AVX-512 CPU runs the AVX2 versions of these f32 kernels. Sixteen
/// lanes would add a dot product's, a norm's or a softmax's terms in
/// another order than eight, and the same model and seed would then give
/// other bits, and at a near tie other tokens, on an AVX-512 machine than
/// on an AVX2 one. These kernels mostly wait for memory, where wider
/// vectors gain little; the 512-bit vectors go where they change no sum's
/// order: the integer products of the quantized formats, the prompt
/// tiles' micro-kernel, the f16 matrix-vector product (its own dispatch,
/// [`matvec_f16`]) and grouped attention over an f16 cache (chosen in
/// `attention.rs`).
macro_rules! simd_at {
    ($l:expr, avx2_neon: $f:ident($($a:expr),*)) => {
        match $l {
            // SAFETY (each arm): `level()` only returns a SIMD level after
            // run-time detection found its features on this CPU; every
            // AVX-512 CPU the dispatcher accepts also has AVX2, FMA and
            // F16C (checked in `detect`).
            #[cfg(target_arch = "x86_64")]
            Level::Avx512 | Level::Avx2 => unsafe { avx2::$f($($a),*) },
            #[cfg(target_arch = "aarch64")]
            Level::Neon => unsafe { neon::$f($($a),*) },
            _ => scalar::$f($($a),*),
        }
    };
    ($l:expr, avx2: $f:ident($($a:expr),*)) => {
        match $l {
            // SAFETY (each arm): as above.
            #[cfg(target_arch = "x86_64")]
            Level::Avx512 | Level::Avx2 => unsafe { avx2::$f($($a),*) },
            _ => scalar::$f($($a),*),
        }
    };
}

/// [`simd_at!`] at the process-wide [`level()`].
macro_rules! simd {
    ($kind:ident: $f:ident($($a:expr),*)) => {
        simd_at!(level(), $kind: $f($($a),*))
    };
}

/// Ask the CPU to bring every cache line of `s` into its caches: a hint,
/// nothing is read (attention asks for the rows it reads next). Into L2
/// (`T1`), as every prefetch of attention's keys and values: on a Zen 4
/// guest, whose caches the weights flush every step, asking into L1 held
/// eight sequences' attention at 1.38–1.41 ms a step against 1.06–1.14
/// (`infer bench-batch --clients 1,8 --prompt-tokens 64 --new-tokens 128
/// --profile`, builds alternated), as for the weights (`quant::x8`'s
/// `prefetch_next_group` says why).
#[cfg(target_arch = "x86_64")]
fn ask_for<T>(s: &[T]) {
    use std::arch::x86_64::{_MM_HINT_T1, _mm_prefetch};
    let start = s.as_ptr().cast::<u8>();
    for line in (0..std::mem::size_of_val(s)).step_by(64) {
        // SAFETY: SSE is part of every x86_64 CPU, and a prefetch never
        // faults; the address is inside `s` anyway.
        unsafe { _mm_prefetch::<_MM_HINT_T1>(start.wrapping_add(line).cast()) };
    }
}

// After the macros above, which it uses.
/// From this many activation rows on (a prompt's), a GPU's products take
/// `MANY_ROWS` rows per warp (`linear_rows_many`, `MANY_ROWS` in
/// cuda/kernels/quant.cu), decoding each weight value once for all of
/// them, one weight per launch; below it, one row per warp, up to three
/// weights in a launch, the RMSNorm before them folded in. Here because
/// both the device operations (which count launches on every device) and
/// the CUDA launchers read it.
pub const GPU_MANY_ROWS: usize = 8;

/// The most weights stacked by rows (Q, K and V) that a GPU multiplies in
/// one launch, below [`GPU_MANY_ROWS`] rows.
pub const GPU_MAX_PARTS: usize = 3;

/// The widest activation row a GPU normalizes inside the product that
/// follows the norm (the row sits in a block's shared memory); wider rows
/// are normalized by a kernel of their own first.
pub const GPU_NORM_MAX_COLS: usize = 8192;

mod attention;
mod q8_scores;
pub use attention::{AttnSeq, KvSlice, attention_decode, attention_prefill, attention_stacked};

#[cfg(test)]
mod tests;

use std::sync::Mutex;

use crate::threads;

/// Shape of the attention problem and the layout of the K/V cache.
///
/// * `q` and `out`: `[n_heads][head_dim]` per query (for prefill,
///   `[t][n_heads][head_dim]`).
/// * `k_cache`, `v_cache`: `[n_kv_heads][capacity][head_dim]`: each KV
///   head's rows are contiguous, so one head's keys stream from memory in
///   order. Position `p` of KV head `g` starts at `(g * capacity + p) * head_dim`.
/// * Query head `h` reads KV head `h / (n_heads / n_kv_heads)` (grouped-query
///   attention; `n_kv_heads == n_heads` is ordinary multi-head attention).
/// * Scores are scaled by `1/sqrt(head_dim)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttnDims {
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads (divides `n_heads`).
    pub n_kv_heads: usize,
    /// Elements per head.
    pub head_dim: usize,
    /// Positions allocated per KV head in the cache.
    pub capacity: usize,
}

/// Below this many multiply-adds (a megabyte of f32 weights) a kernel stays
/// on the calling thread: waking the pool costs microseconds, about what
/// streaming this much memory takes.
const PAR_MIN_WORK: usize = 1 << 18;

/// How far ahead of the rows it is reading a streaming kernel asks for
/// the next ones (a prefetch, a hint that never faults): 24 KB, about
/// what memory delivers in the time one request takes to come back, so
/// the requests in flight keep it busy. The f32 and f16 kernels ask for
/// them into L2 (`_MM_HINT_T1`), which holds more requests in flight than
/// L1 does.
#[cfg(target_arch = "x86_64")]
pub(crate) const PREFETCH_BYTES: usize = 24 * 1024;

/// True if work of this size should be split across the pool.
pub(crate) fn go_parallel(work: usize) -> bool {
    work >= PAR_MIN_WORK && threads::num_threads() > 1
}

/// Dot product of two equal-length slices.
///
/// # Panics
/// If `a.len() != b.len()`.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot: lengths differ");
    // ANCHOR: dispatch_dot
    match level() {
        // SAFETY (each arm): `level()` only returns a SIMD level after
        // run-time detection found its features on this CPU.
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 | Level::Avx2 => unsafe { avx2::dot(a, b) },
        #[cfg(target_arch = "aarch64")]
        Level::Neon => unsafe { neon::dot(a, b) },
        _ => scalar::dot(a, b),
    }
    // ANCHOR_END: dispatch_dot
}

/// `y += alpha * x`.
///
/// # Panics
/// If `x.len() != y.len()`.
pub fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    assert_eq!(x.len(), y.len(), "axpy: lengths differ");
    simd!(avx2_neon: axpy(alpha, x, y))
}

/// In-place, max-subtracted softmax of one row.
pub fn softmax_inplace(x: &mut [f32]) {
    simd!(avx2_neon: softmax_inplace(x))
}

/// RMSNorm: `out[i] = x[i] / sqrt(mean(x²) + eps) * w[i]`.
///
/// # Panics
/// If `w` or `out` differ in length from `x`.
pub fn rmsnorm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    assert!(
        w.len() == x.len() && out.len() == x.len(),
        "rmsnorm: lengths differ"
    );
    simd!(avx2_neon: rmsnorm(x, w, eps, out))
}

/// LayerNorm: `out[i] = (x[i] - mean) / sqrt(var + eps) * w[i] + b[i]`.
///
/// # Panics
/// If `w`, `b` or `out` differ in length from `x`.
pub fn layernorm(x: &[f32], w: &[f32], b: &[f32], eps: f32, out: &mut [f32]) {
    assert!(
        w.len() == x.len() && b.len() == x.len() && out.len() == x.len(),
        "layernorm: lengths differ"
    );
    simd!(avx2_neon: layernorm(x, w, b, eps, out))
}

/// SiLU in place: `x * sigmoid(x)`.
pub fn silu_inplace(x: &mut [f32]) {
    let _t = crate::profile::timer(crate::profile::Op::Elementwise);
    simd!(avx2_neon: silu_inplace(x))
}

/// The SwiGLU gate for `t` rows: row `i` of `gate_up` is a gate half then
/// an up half (`ffn` each), and row `i` of `out` (`ffn`) becomes
/// `silu(gate) ⊙ up`. A prompt's rows are split across the pool. The gate
/// half of `gate_up` is left overwritten with its SiLU.
///
/// # Panics
/// If `gate_up` is not `2 · ffn` per row of `out`.
pub fn swiglu_rows(gate_up: &mut [f32], ffn: usize, out: &mut [f32]) {
    let _t = crate::profile::timer(crate::profile::Op::Elementwise);
    assert!(
        ffn > 0 && out.len().is_multiple_of(ffn) && gate_up.len() == 2 * out.len(),
        "swiglu_rows: gate_up {} and out {} for ffn {ffn}",
        gate_up.len(),
        out.len()
    );
    let l = level();
    let one_row = |gu: &mut [f32], a: &mut [f32]| {
        let (g, u) = gu.split_at_mut(ffn);
        swiglu_at(l, g, u, a);
    };
    let rows = out.len() / ffn;
    if !go_parallel(rows * ffn * 16) || rows < 2 {
        for (gu, a) in gate_up
            .chunks_exact_mut(2 * ffn)
            .zip(out.chunks_exact_mut(ffn))
        {
            one_row(gu, a);
        }
        return;
    }
    // Each task takes a run of rows of both buffers, zipped into one slice
    // of pairs so the chunks stay disjoint.
    let mut pairs: Vec<(&mut [f32], &mut [f32])> = gate_up
        .chunks_exact_mut(2 * ffn)
        .zip(out.chunks_exact_mut(ffn))
        .collect();
    let per = rows.div_ceil(threads::num_threads() * 2);
    threads::for_each_chunk_mut(&mut pairs, per, |_, run| {
        for (gu, a) in run.iter_mut() {
            one_row(gu, a);
        }
    });
}

/// `out = silu(g) ⊙ u` for one row (or any run of a row that starts a
/// multiple of eight values in: every value gets the same bits as in the
/// whole row), leaving `g` overwritten with its SiLU. The body of
/// [`swiglu_rows`], for callers that already run on the pool (no timer).
///
/// # Panics
/// If the three lengths differ.
pub(crate) fn swiglu_run(g: &mut [f32], u: &[f32], out: &mut [f32]) {
    assert!(
        g.len() == u.len() && u.len() == out.len(),
        "swiglu_run: lengths differ"
    );
    swiglu_at(level(), g, u, out);
}

/// [`swiglu_run`] at SIMD level `l`, the lengths already checked.
fn swiglu_at(l: Level, g: &mut [f32], u: &[f32], out: &mut [f32]) {
    simd_at!(l, avx2_neon: silu_inplace(g));
    simd_at!(l, avx2_neon: mul_to(out, g, u));
}

/// GELU (tanh form, as GPT-2) in place. A prompt's many rows are split
/// across the pool (`elementwise_split`).
pub fn gelu_tanh_inplace(x: &mut [f32]) {
    let _t = crate::profile::timer(crate::profile::Op::Elementwise);
    let l = level();
    // About sixteen operations per value: a prompt's worth is worth
    // splitting, a decode step's is not.
    elementwise_split(
        x.len() * 16,
        x,
        |_, x| simd_at!(l, avx2_neon: gelu_tanh_inplace(x)),
    );
}

/// Run `f(first, run)` on `x` whole, or, when `work` is worth the pool, on
/// runs of it in parallel. Every run but the last is a whole number of
/// 64-value steps, so each value takes the same vector lanes (and a tail
/// the same scalar code) as when `x` is processed whole: the same bits.
fn elementwise_split(work: usize, x: &mut [f32], f: impl Fn(usize, &mut [f32]) + Sync) {
    if !go_parallel(work) {
        f(0, x);
        return;
    }
    let run = x
        .len()
        .div_ceil(threads::num_threads() * 2)
        .next_multiple_of(64);
    threads::for_each_chunk_mut(x, run, |i, r| f(i * run, r));
}

/// `x[i] *= y[i]`.
///
/// # Panics
/// If `x.len() != y.len()`.
pub fn mul_inplace(x: &mut [f32], y: &[f32]) {
    let _t = crate::profile::timer(crate::profile::Op::Elementwise);
    assert_eq!(x.len(), y.len(), "mul_inplace: lengths differ");
    simd!(avx2_neon: mul_inplace(x, y))
}

/// `x[i] += y[i]`.
///
/// # Panics
/// If `x.len() != y.len()`.
pub fn add_inplace(x: &mut [f32], y: &[f32]) {
    let _t = crate::profile::timer(crate::profile::Op::Elementwise);
    assert_eq!(x.len(), y.len(), "add_inplace: lengths differ");
    let l = level();
    // One addition per value, three memory streams: split only when long.
    elementwise_split(x.len() * 2, x, |at, x| {
        let y = &y[at..at + x.len()];
        simd_at!(l, avx2_neon: add_inplace(x, y))
    });
}

/// Rotary position embedding in place for one token's `n_heads` heads
/// (`x` is `[n_heads][head_dim]`), Llama / Hugging Face half-rotated layout:
/// element `i` of a head pairs with `i + head_dim/2`, rotated by angle
/// `pos · theta_base^(-2i/head_dim)`. The same as [`rope_angles`] then
/// [`rope_rotate`].
///
/// # Panics
/// If `x.len() != n_heads * head_dim` or `head_dim` is odd.
pub fn rope_inplace(x: &mut [f32], n_heads: usize, head_dim: usize, pos: usize, theta_base: f32) {
    let _t = crate::profile::timer(crate::profile::Op::Rope);
    check_rope(x.len(), n_heads, head_dim);
    scalar::rope_inplace(x, n_heads, head_dim, pos, theta_base)
}

/// The angles of [`rope_inplace`] at position `pos`, once for every head
/// and layer: `cos_sin[i]` the cosine of pair `i`'s angle and
/// `cos_sin[head_dim/2 + i]` its sine.
///
/// # Panics
/// If `head_dim` is odd or `cos_sin.len() != head_dim`.
pub fn rope_angles(head_dim: usize, pos: usize, theta_base: f32, cos_sin: &mut [f32]) {
    let _t = crate::profile::timer(crate::profile::Op::Rope);
    check_rope(cos_sin.len(), 1, head_dim);
    scalar::rope_angles(head_dim, pos, theta_base, cos_sin)
}

/// [`rope_inplace`] with one position's angles from [`rope_angles`]: the
/// same values, without recomputing the angles in every layer.
///
/// # Panics
/// If `x.len() != n_heads * head_dim`, `head_dim` is odd or
/// `cos_sin.len() != head_dim`.
pub fn rope_rotate(x: &mut [f32], n_heads: usize, head_dim: usize, cos_sin: &[f32]) {
    let _t = crate::profile::timer(crate::profile::Op::Rope);
    check_rope(x.len(), n_heads, head_dim);
    check_rope(cos_sin.len(), 1, head_dim);
    simd!(avx2_neon: rope_rotate(x, n_heads, head_dim, cos_sin))
}

fn check_rope(len: usize, n_heads: usize, head_dim: usize) {
    assert_eq!(
        len,
        n_heads * head_dim,
        "rope: {len} values for {n_heads} heads of {head_dim}"
    );
    assert!(
        head_dim.is_multiple_of(2),
        "rope: head_dim {head_dim} is odd"
    );
}

fn check_matvec(name: &str, wlen: usize, rows: usize, cols: usize, x: usize, out: usize) {
    assert!(
        rows.checked_mul(cols) == Some(wlen) && x == cols && out == rows,
        "{name}: w has {wlen} elements, x {x}, out {out} for {rows}x{cols}"
    );
}

/// Matrix-vector product `out[r] = dot(w[r*cols..(r+1)*cols], x)` for a
/// row-major `rows × cols` matrix `w`. Rows are split across the thread pool.
///
/// # Panics
/// If `w.len() != rows*cols`, `x.len() != cols` or `out.len() != rows`.
// ANCHOR: matvec_pub
pub fn matvec(w: &[f32], rows: usize, cols: usize, x: &[f32], out: &mut [f32]) {
    check_matvec("matvec", w.len(), rows, cols, x.len(), out.len());
    par_rows(rows, cols, out, |r0, o| {
        let w = &w[r0 * cols..(r0 + o.len()) * cols];
        matvec_at(level(), w, cols, x, o)
    });
}
// ANCHOR_END: matvec_pub

/// [`matvec`]'s rows at level `l`: AVX-512's form where the CPU has it
/// (the AVX2 kernel's bits, one 64-byte load per cache line).
fn matvec_at(l: Level, w: &[f32], cols: usize, x: &[f32], out: &mut [f32]) {
    match l {
        // SAFETY: `level()` returns Avx512 only when the CPU has AVX-512F
        // besides AVX2 and FMA.
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 => unsafe { avx512::matvec(w, out.len(), cols, x, out) },
        _ => simd_at!(l, avx2_neon: matvec(w, out.len(), cols, x, out)),
    }
}

/// `dst[i] = src[i]` as f32: every f16 value, NaNs and subnormals included,
/// has an exact f32 form, so any width gives the same bits. Sixteen values
/// per instruction on AVX-512, eight with F16C; elsewhere the `half`
/// crate's conversion, which makes one call per eight values. It widens
/// f16 weight tiles for prompt products: a 128-token GPT-2 prompt in f16
/// on one thread went from 911–928 to 945–974 tok/s (`infer bench
/// --prompt-tokens 128`, alternated).
///
/// # Panics
/// If the lengths differ.
pub fn widen_f16(src: &[half::f16], dst: &mut [f32]) {
    assert_eq!(src.len(), dst.len(), "widen_f16: lengths differ");
    widen_f16_at(level(), src, dst)
}

/// [`widen_f16`] at level `l`, the lengths already checked.
fn widen_f16_at(l: Level, src: &[half::f16], dst: &mut [f32]) {
    match l {
        // SAFETY: `level()` returns Avx512 only when the CPU has AVX-512F
        // besides AVX2, FMA and F16C, and Avx2 only with F16C.
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 => unsafe { avx512::widen_f16(src, dst) },
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 => unsafe { avx2::widen_f16(src, dst) },
        _ => {
            use half::slice::HalfFloatSliceExt;
            src.convert_to_f32_slice(dst)
        }
    }
}

/// Matrix-vector product with an f16 matrix (f32 `x` and `out`).
///
/// # Panics
/// If `w.len() != rows*cols`, `x.len() != cols` or `out.len() != rows`.
pub fn matvec_f16(w: &[half::f16], rows: usize, cols: usize, x: &[f32], out: &mut [f32]) {
    check_matvec("matvec_f16", w.len(), rows, cols, x.len(), out.len());
    par_rows(rows, cols, out, |r0, o| {
        let w = &w[r0 * cols..(r0 + o.len()) * cols];
        matvec_f16_at(level(), w, cols, x, o)
    });
}

/// [`matvec_f16`]'s rows at level `l`: AVX-512's form where the CPU has it
/// (the AVX2 kernel's bits, twice the halves widened per instruction).
fn matvec_f16_at(l: Level, w: &[half::f16], cols: usize, x: &[f32], out: &mut [f32]) {
    match l {
        // SAFETY: `level()` returns Avx512 only when the CPU has AVX-512F
        // besides AVX2, FMA and F16C.
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 => unsafe { avx512::matvec_f16(w, out.len(), cols, x, out) },
        _ => simd_at!(l, avx2: matvec_f16(w, out.len(), cols, x, out)),
    }
}

/// [`matvec`] on the calling thread only (for callers that already split
/// rows across the pool). Lengths are the caller's to check.
pub(crate) fn matvec_serial(w: &[f32], cols: usize, x: &[f32], out: &mut [f32]) {
    matvec_at(level(), w, cols, x, out)
}

/// [`matvec_f16`] on the calling thread only. Lengths are the caller's to check.
pub(crate) fn matvec_f16_serial(w: &[half::f16], cols: usize, x: &[f32], out: &mut [f32]) {
    matvec_f16_at(level(), w, cols, x, out)
}

/// Tiles for [`matmul_bt_tiles`] are best a multiple of this many rows (the
/// micro-kernel's group of weight rows).
pub(crate) const TILE_ROWS: usize = tile_gemm::NR;

/// `c = a · wᵀ` where `w` (`n × k`) is never whole in memory as f32: the
/// pool's tasks each take a tile of `tile` rows of `w`, have `fill(rows,
/// buf)` write them as f32 (`rows.len() × k`, row-major) into a per-thread
/// buffer, and multiply `a` (`m × k`, packed once for all the tiles) by
/// that tile into their columns of `c` (`m × n`). A quantized weight is
/// widened one small tile at a time, while it is hot in cache. Where
/// `view(rows)` gives those rows as f32 already (an f32 weight), the tile
/// is read in place and `fill` is not called.
///
/// # Panics
/// If the slice lengths do not match `m`, `k`, `n`.
pub(crate) fn matmul_bt_tiles<'w>(
    a: &[f32],
    (m, k, n): (usize, usize, usize),
    tile: usize,
    c: &mut [f32],
    view: impl Fn(std::ops::Range<usize>) -> Option<&'w [f32]> + Sync,
    fill: impl Fn(std::ops::Range<usize>, &mut [f32]) + Sync,
) {
    assert!(
        m.checked_mul(k) == Some(a.len()) && m.checked_mul(n) == Some(c.len()) && tile > 0,
        "matmul_bt_tiles: a {} c {} for m {m} k {k} n {n}",
        a.len(),
        c.len()
    );
    thread_local! {
        static TILE: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
        static PANELS: std::cell::RefCell<tile_gemm::Panels> =
            std::cell::RefCell::new(tile_gemm::Panels::default());
    }
    PANELS.with_borrow_mut(|panels| {
        panels.pack(a, m, k);
        let panels = &*panels;
        let c_addr = c.as_mut_ptr().expose_provenance();
        let run = |j0: usize| {
            let cols = j0..(j0 + tile).min(n);
            TILE.with_borrow_mut(|buf| {
                let w = match view(cols.clone()) {
                    Some(w) if w.len() == cols.len() * k => w,
                    _ => {
                        buf.resize(cols.len() * k, 0.0);
                        fill(cols.clone(), buf);
                        &buf[..]
                    }
                };
                let c = std::ptr::with_exposed_provenance_mut::<f32>(c_addr);
                tile_gemm::tile_times_panels(w, k, panels, |i, j, v| {
                    // SAFETY: `c` (m·n elements) is borrowed mutably for this
                    // whole call, which waits for every task; i < m and
                    // j + v.len() <= cols.len(), and the tasks' column
                    // ranges are disjoint, so each element is written by
                    // one task only.
                    unsafe {
                        let dst = c.add(i * n + cols.start + j);
                        if let Ok(full) = <&[f32; tile_gemm::NR]>::try_from(v) {
                            // A whole group: a fixed-size copy (vector moves,
                            // not a call to memcpy).
                            dst.cast::<[f32; tile_gemm::NR]>().write_unaligned(*full);
                        } else {
                            std::ptr::copy_nonoverlapping(v.as_ptr(), dst, v.len());
                        }
                    }
                });
            });
        };
        let starts: Vec<usize> = (0..n).step_by(tile).collect();
        if go_parallel(m.saturating_mul(n).saturating_mul(k)) && starts.len() > 1 {
            threads::for_each_task(starts.len(), |i| run(starts[i]));
        } else {
            starts.into_iter().for_each(run);
        }
    });
}

// ANCHOR: par_rows
/// Split `out` (one value per row) into per-thread chunks and call
/// `f(first_row, chunk)` on each; small problems stay on this thread.
fn par_rows(rows: usize, cols: usize, out: &mut [f32], f: impl Fn(usize, &mut [f32]) + Sync) {
    if !go_parallel(rows * cols) || rows < 8 {
        f(0, out);
        return;
    }
    // A few chunks per thread for balance, each a multiple of 4 rows.
    let n = threads::num_threads().max(1) * 4;
    let chunk = rows.div_ceil(n).next_multiple_of(4);
    threads::for_each_chunk_mut(out, chunk, |i, o| f(i * chunk, o));
}
// ANCHOR_END: par_rows

/// A read-only matrix inside a slice: element `(i, j)` is
/// `data[i * row_stride + j * col_stride]`. A transposed view is the same
/// data with the two strides swapped, so no copy is needed.
#[derive(Debug, Clone, Copy)]
pub struct Strided<'a> {
    /// The elements (element `(0, 0)` first).
    pub data: &'a [f32],
    /// Step between rows.
    pub row_stride: usize,
    /// Step between columns.
    pub col_stride: usize,
}

impl Strided<'_> {
    /// True if every element of a `rows × cols` matrix is inside `data`.
    fn fits(&self, rows: usize, cols: usize) -> bool {
        if rows == 0 || cols == 0 {
            return true;
        }
        let last = (rows - 1)
            .checked_mul(self.row_stride)
            .zip((cols - 1).checked_mul(self.col_stride))
            .and_then(|(a, b)| a.checked_add(b));
        last.is_some_and(|l| l < self.data.len())
    }
}

// ANCHOR: gemm
/// General matrix product `c = a · b` with `a` `m × k` and `b` `k × n` given
/// by strides (so transposed and broadcast views need no copy); `c` is
/// `m × n` row-major. Uses `matrixmultiply`'s blocked, packed sgemm, one
/// call per thread of the pool on its own block of `c`'s columns (or rows,
/// when `c` is taller than wide), so the one thread count of
/// [`crate::threads`] governs matrix products too; the scalar level uses the
/// naive twin.
///
/// # Panics
/// If an element of `a` or `b` would lie outside its slice or
/// `c.len() != m*n`.
pub fn gemm_strided(a: Strided<'_>, b: Strided<'_>, m: usize, k: usize, n: usize, c: &mut [f32]) {
    assert!(
        a.fits(m, k) && b.fits(k, n) && m.checked_mul(n) == Some(c.len()),
        "gemm: a ({} elements, strides {}x{}) b ({}, {}x{}) c {} for m {m} k {k} n {n}",
        a.data.len(),
        a.row_stride,
        a.col_stride,
        b.data.len(),
        b.row_stride,
        b.col_stride,
        c.len()
    );
    if level() == Level::Scalar {
        return scalar::gemm_strided(a, b, m, k, n, c);
    }
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c.fill(0.0);
        return;
    }
    let threads = threads::num_threads();
    if !go_parallel(m.saturating_mul(n).saturating_mul(k)) || threads < 2 {
        // SAFETY: `c` holds the m × n block with row stride n, borrowed
        // mutably, and `fits` checked `a` and `b`.
        return unsafe { sgemm_block(a, b, 0..m, 0..n, k, c.as_mut_ptr(), n) };
    }
    gemm_parts(a, b, m, k, n, c, threads);
}

/// [`gemm_strided`] (checked, non-empty) in `parts` blocks on the pool.
pub(crate) fn gemm_parts(
    a: Strided<'_>,
    b: Strided<'_>,
    m: usize,
    k: usize,
    n: usize,
    c: &mut [f32],
    parts: usize,
) {
    let parts = parts.max(1);
    // One block per thread: each call packs its own share of the wide
    // operand and all of the narrow one, so fewer, larger blocks pack less.
    if n >= m {
        // Column blocks of a row-major `c` interleave in memory, so they
        // cannot be separate `&mut` slices: each task writes its columns
        // through `c`'s pointer, passed across threads as an address.
        let step = n.div_ceil(parts).next_multiple_of(16);
        let c_addr = c.as_mut_ptr().expose_provenance();
        let starts: Vec<usize> = (0..n).step_by(step).collect();
        threads::for_each_task(starts.len(), |i| {
            let j0 = starts[i];
            let c = std::ptr::with_exposed_provenance_mut::<f32>(c_addr);
            // SAFETY: `c` (m·n elements, row stride n) is borrowed
            // mutably for this whole call, which waits for every task;
            // the tasks' column ranges are disjoint and inside 0..n, so
            // each element is written by one task only. `fits` checked
            // `a` and `b`.
            unsafe { sgemm_block(a, b, 0..m, j0..(j0 + step).min(n), k, c, n) };
        });
    } else {
        let step = m.div_ceil(parts).next_multiple_of(8);
        threads::for_each_chunk_mut(c, step * n, |i, c| {
            let rows = i * step..i * step + c.len() / n;
            // SAFETY: `c` is this task's own rows of the output, row
            // stride n; `fits` checked `a` and `b`.
            unsafe { sgemm_block(a, b, rows, 0..n, k, c.as_mut_ptr(), n) };
        });
    }
}

/// Single-threaded sgemm of the block `rows × cols` of `c = a · b`.
///
/// # Safety
/// `a` and `b` must pass `fits` for the full `m × k` and `k × n` problem
/// (with `rows`, `cols` inside it), and `c`, pointing at element
/// `(rows.start, 0)` of the output, must be valid for writes at
/// `i * ldc + j` for every `i < rows.len()` and `j` in `cols`, with no other
/// access to those elements meanwhile.
unsafe fn sgemm_block(
    a: Strided<'_>,
    b: Strided<'_>,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
    k: usize,
    c: *mut f32,
    ldc: usize,
) {
    if rows.is_empty() || cols.is_empty() {
        return;
    }
    // SAFETY: by `fits`, element (i, p) of `a` for i in `rows` and (p, j)
    // of `b` for j in `cols` are inside their slices, so both offsets and
    // every index sgemm forms from them are in bounds; `c` is the caller's.
    unsafe {
        let c = c.add(cols.start);
        matrixmultiply::sgemm(
            rows.len(),
            k,
            cols.len(),
            1.0,
            a.data.as_ptr().add(rows.start * a.row_stride),
            a.row_stride as isize,
            a.col_stride as isize,
            b.data.as_ptr().add(cols.start * b.col_stride),
            b.row_stride as isize,
            b.col_stride as isize,
            0.0,
            c,
            ldc as isize,
            1,
        );
    }
}
// ANCHOR_END: gemm

/// Matrix product `c = a · bᵀ` where `a` is `m × k` row-major and `b` is
/// `n × k` row-major (the layout of a linear layer's weight), `c` is `m × n`.
///
/// # Panics
/// If the slice lengths do not match `m`, `k`, `n`.
pub fn matmul_bt(a: &[f32], b: &[f32], m: usize, k: usize, n: usize, c: &mut [f32]) {
    assert!(
        m.checked_mul(k) == Some(a.len()) && n.checked_mul(k) == Some(b.len()),
        "matmul_bt: lengths a {} b {} for m {m} k {k} n {n}",
        a.len(),
        b.len()
    );
    let a = Strided {
        data: a,
        row_stride: k,
        col_stride: 1,
    };
    // bᵀ is b with its strides swapped.
    let b = Strided {
        data: b,
        row_stride: 1,
        col_stride: k,
    };
    gemm_strided(a, b, m, k, n, c);
}

/// Matrix product `c = a · b` with `a` `m × k` and `b` `k × n`, both row-major.
///
/// # Panics
/// If the slice lengths do not match `m`, `k`, `n`.
pub fn matmul(a: &[f32], b: &[f32], m: usize, k: usize, n: usize, c: &mut [f32]) {
    assert!(
        m.checked_mul(k) == Some(a.len()) && k.checked_mul(n) == Some(b.len()),
        "matmul: lengths a {} b {} for m {m} k {k} n {n}",
        a.len(),
        b.len()
    );
    let a = Strided {
        data: a,
        row_stride: k,
        col_stride: 1,
    };
    let b = Strided {
        data: b,
        row_stride: n,
        col_stride: 1,
    };
    gemm_strided(a, b, m, k, n, c);
}

/// `dst[i][j] = src[j · t + i]`: a matrix of `src.len() / t` rows by `t`
/// columns, row-major, written out column by column (a batched product's
/// per-row results, `[row][token]`, into each token's own output row).
/// Pure data movement: every SIMD level writes the same values.
///
/// # Panics
/// If `t == 0`, `src.len()` is not a multiple of `t`, `dst` has fewer than
/// `t` slices or one is shorter than `src.len() / t`.
pub fn transpose(src: &[f32], t: usize, dst: &mut [&mut [f32]]) {
    assert!(
        t > 0 && src.len().is_multiple_of(t) && dst.len() >= t,
        "transpose: {} values, {t} columns, {} outputs",
        src.len(),
        dst.len()
    );
    let n = src.len() / t;
    assert!(
        dst.iter().take(t).all(|d| d.len() >= n),
        "transpose: an output is shorter than {n}"
    );
    simd!(avx2: transpose(src, t, dst))
}

/// In-place log-softmax of one row: `x - max - ln Σ exp(x - max)`.
pub fn log_softmax_inplace(x: &mut [f32]) {
    simd!(avx2: log_softmax_inplace(x))
}

/// Index of the largest value (first on ties, NaNs skipped, 0 if empty).
pub fn argmax(x: &[f32]) -> usize {
    scalar::argmax(x)
}

/// The `k` largest values with their indices, largest first (ties: lower
/// index first; NaNs skipped). Fewer than `k` if `x` is shorter.
pub fn top_k(x: &[f32], k: usize) -> Vec<(usize, f32)> {
    scalar::top_k(x, k)
}

/// [`stream_sum`] on the calling thread at level `l`: AVX-512's form where
/// the CPU has it (the AVX2 kernel's bits, one load per cache line).
fn stream_sum_at(l: Level, x: &[f32]) -> f32 {
    match l {
        // SAFETY: `level()` returns Avx512 only when the CPU has AVX-512F
        // besides AVX2 and FMA.
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 => unsafe { avx512::stream_sum(x) },
        _ => simd_at!(l, avx2: stream_sum(x)),
    }
}

/// Sum of all elements, split across the thread pool: a plain streaming
/// read of memory, the yardstick the matrix-vector benchmark is measured
/// against (a matvec cannot read its matrix faster than this).
pub fn stream_sum(x: &[f32]) -> f32 {
    let one = |c: &[f32]| -> f32 { stream_sum_at(level(), c) };
    if !go_parallel(x.len()) {
        return one(x);
    }
    let chunk = x.len().div_ceil(threads::num_threads().max(1) * 4);
    let parts: Vec<f32> = x.chunks(chunk).map(|_| 0.0).collect();
    let parts: Vec<Mutex<f32>> = parts.into_iter().map(Mutex::new).collect();
    threads::for_each_task(parts.len(), |i| {
        let c = &x[i * chunk..((i + 1) * chunk).min(x.len())];
        *parts[i].lock().unwrap_or_else(|e| e.into_inner()) = one(c);
    });
    parts
        .into_iter()
        .map(|p| p.into_inner().unwrap_or_else(|e| e.into_inner()))
        .sum()
}
