//! AVX2 + FMA (+ F16C) kernels: eight f32 lanes per instruction.
//!
//! Every function is compiled with `#[target_feature]`, so it may only be
//! called after [`crate::dispatch`] has seen the features on this CPU; that
//! is the safety contract of each `unsafe fn` here. Loads and stores go
//! through [`load`] / [`store`], which check their bounds, except in the
//! matrix-vector loops, whose raw-pointer bounds are argued where they are.

use std::arch::x86_64::*;

use super::scalar;

/// Lanes per vector.
const L: usize = 8;

/// Load 8 floats from the start of `s` (which must hold at least 8).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn load(s: &[f32]) -> __m256 {
    assert!(s.len() >= L);
    // SAFETY: `s` holds at least 8 floats (checked above); loadu has no
    // alignment requirement.
    unsafe { _mm256_loadu_ps(s.as_ptr()) }
}

/// Store 8 floats to the start of `s` (which must hold at least 8).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn store(s: &mut [f32], v: __m256) {
    assert!(s.len() >= L);
    // SAFETY: as in `load`, 8 floats are in bounds.
    unsafe { _mm256_storeu_ps(s.as_mut_ptr(), v) }
}

/// Sum of the 8 lanes.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(super) fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// The lane sums of two vectors, `[Σa, Σb, …]` in the low two lanes, each
/// added in the same order as [`hsum`] does (so the same bits), with half
/// its instructions per sum.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(super) fn hsum2(a: __m256, b: __m256) -> __m128 {
    // Lane i + lane i+4 of each vector, as hsum's first step.
    let sa = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    let sb = _mm_add_ps(_mm256_castps256_ps128(b), _mm256_extractf128_ps(b, 1));
    // [sa0 + sa2, sa1 + sa3, sb0 + sb2, sb1 + sb3], as its second.
    let lo = _mm_shuffle_ps::<0x44>(sa, sb);
    let hi = _mm_shuffle_ps::<0xEE>(sa, sb);
    let s = _mm_add_ps(lo, hi);
    // Neighbours summed: [Σa, Σb, Σa, Σb].
    _mm_hadd_ps(s, s)
}

/// The lane sums of four vectors at once: `[Σa, Σb, Σc, Σd]`.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn hsum4(a: __m256, b: __m256, c: __m256, d: __m256) -> __m128 {
    let s = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
    _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1))
}

/// Largest of the 8 lanes.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn hmax(v: __m256) -> f32 {
    let s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_max_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

// ANCHOR: exp8
/// `exp` of 8 lanes: split `x = n·ln2 + r` with `|r| ≤ ln2/2`, evaluate a
/// degree-6 polynomial for `exp(r)`, and build `2ⁿ` directly in the
/// exponent bits. Relative error about 2 ulp; inputs below −87.3 give 0.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) fn exp8(x: __m256) -> __m256 {
    let underflow = _mm256_cmp_ps::<_CMP_LT_OQ>(x, _mm256_set1_ps(-87.336_55));
    let x = _mm256_max_ps(
        _mm256_min_ps(x, _mm256_set1_ps(88.376_26)),
        _mm256_set1_ps(-87.336_55),
    );
    let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(
        x,
        _mm256_set1_ps(std::f32::consts::LOG2_E),
    ));
    // r = x - n·ln2, with ln2 split in two so the product is exact enough.
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693_359_4), x);
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.121_944_4e-4), r);
    let mut p = _mm256_set1_ps(1.987_569_1e-4);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.398_199_9e-3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.333_452e-3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.166_579_6e-2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.666_666_5e-1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5));
    let p = _mm256_fmadd_ps(
        p,
        _mm256_mul_ps(r, r),
        _mm256_add_ps(r, _mm256_set1_ps(1.0)),
    );
    // 2ⁿ: put n + 127 in the exponent field of a float.
    let pow2 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(
        _mm256_cvtps_epi32(n),
        _mm256_set1_epi32(127),
    )));
    _mm256_andnot_ps(underflow, _mm256_mul_ps(p, pow2))
}
// ANCHOR_END: exp8

// ANCHOR: dot
/// Dot product with four independent accumulators (32 floats per step), so
/// the FMA latency is hidden; the tail is finished in scalar code.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i + 4 * L <= n {
        for (j, acc) in acc.iter_mut().enumerate() {
            let o = i + j * L;
            *acc = _mm256_fmadd_ps(load(&a[o..]), load(&b[o..]), *acc);
        }
        i += 4 * L;
    }
    while i + L <= n {
        acc[0] = _mm256_fmadd_ps(load(&a[i..]), load(&b[i..]), acc[0]);
        i += L;
    }
    let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    hsum(sum) + scalar::dot(&a[i..n], &b[i..n])
}
// ANCHOR_END: dot

/// `y += alpha * x`.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    let n = x.len().min(y.len());
    let va = _mm256_set1_ps(alpha);
    let mut i = 0;
    while i + L <= n {
        let v = _mm256_fmadd_ps(va, load(&x[i..]), load(&y[i..]));
        store(&mut y[i..], v);
        i += L;
    }
    scalar::axpy(alpha, &x[i..n], &mut y[i..n]);
}

/// Largest value (−∞ for an empty slice).
#[target_feature(enable = "avx2,fma")]
fn max(x: &[f32]) -> f32 {
    let mut m = _mm256_set1_ps(f32::NEG_INFINITY);
    let mut i = 0;
    while i + L <= x.len() {
        m = _mm256_max_ps(m, load(&x[i..]));
        i += L;
    }
    x[i..].iter().copied().fold(hmax(m), f32::max)
}

// ANCHOR: softmax
/// Softmax in three vector passes: max, `exp(x - max)` with a running sum,
/// and a scale by `1/sum`.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn softmax_inplace(x: &mut [f32]) {
    let m = max(x);
    let vm = _mm256_set1_ps(m);
    let mut acc = _mm256_setzero_ps();
    let mut i = 0;
    while i + L <= x.len() {
        let e = exp8(_mm256_sub_ps(load(&x[i..]), vm));
        store(&mut x[i..], e);
        acc = _mm256_add_ps(acc, e);
        i += L;
    }
    let mut sum = hsum(acc);
    for v in &mut x[i..] {
        *v = (*v - m).exp();
        sum += *v;
    }
    scale(x, 1.0 / sum);
}
// ANCHOR_END: softmax

/// Log-softmax: max, `Σ exp(x - max)` without storing, then subtract.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn log_softmax_inplace(x: &mut [f32]) {
    let m = max(x);
    let vm = _mm256_set1_ps(m);
    let mut acc = _mm256_setzero_ps();
    let mut i = 0;
    while i + L <= x.len() {
        acc = _mm256_add_ps(acc, exp8(_mm256_sub_ps(load(&x[i..]), vm)));
        i += L;
    }
    let sum = hsum(acc) + x[i..].iter().map(|v| (v - m).exp()).sum::<f32>();
    let lse = _mm256_set1_ps(m + sum.ln());
    i = 0;
    while i + L <= x.len() {
        let v = _mm256_sub_ps(load(&x[i..]), lse);
        store(&mut x[i..], v);
        i += L;
    }
    let lse = m + sum.ln();
    for v in &mut x[i..] {
        *v -= lse;
    }
}

/// `x *= s`.
#[target_feature(enable = "avx2,fma")]
fn scale(x: &mut [f32], s: f32) {
    let vs = _mm256_set1_ps(s);
    let mut i = 0;
    while i + L <= x.len() {
        let v = _mm256_mul_ps(load(&x[i..]), vs);
        store(&mut x[i..], v);
        i += L;
    }
    for v in &mut x[i..] {
        *v *= s;
    }
}

/// Sum of `x`, two accumulators.
#[target_feature(enable = "avx2,fma")]
fn sum(x: &[f32]) -> f32 {
    let (mut a, mut b) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let mut i = 0;
    while i + 2 * L <= x.len() {
        a = _mm256_add_ps(a, load(&x[i..]));
        b = _mm256_add_ps(b, load(&x[i + L..]));
        i += 2 * L;
    }
    hsum(_mm256_add_ps(a, b)) + x[i..].iter().sum::<f32>()
}

/// `out = x * s * w` (+ `b` when given).
#[target_feature(enable = "avx2,fma")]
fn scale_affine(x: &[f32], shift: f32, s: f32, w: &[f32], b: Option<&[f32]>, out: &mut [f32]) {
    let n = x.len().min(w.len()).min(out.len());
    let (vs, vsh) = (_mm256_set1_ps(s), _mm256_set1_ps(shift));
    let mut i = 0;
    while i + L <= n {
        let v = _mm256_mul_ps(
            _mm256_mul_ps(_mm256_sub_ps(load(&x[i..]), vsh), vs),
            load(&w[i..]),
        );
        let v = match b {
            Some(b) => _mm256_add_ps(v, load(&b[i..])),
            None => v,
        };
        store(&mut out[i..], v);
        i += L;
    }
    for j in i..n {
        out[j] = (x[j] - shift) * s * w[j] + b.map_or(0.0, |b| b[j]);
    }
}

/// RMSNorm of one row.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn rmsnorm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    // SAFETY: same CPU features as this function.
    let ms = unsafe { dot(x, x) } / x.len() as f32;
    scale_affine(x, 0.0, 1.0 / (ms + eps).sqrt(), w, None, out);
}

/// LayerNorm of one row (two passes: mean, then variance).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn layernorm(x: &[f32], w: &[f32], b: &[f32], eps: f32, out: &mut [f32]) {
    let n = x.len() as f32;
    let mean = sum(x) / n;
    let vm = _mm256_set1_ps(mean);
    let mut acc = _mm256_setzero_ps();
    let mut i = 0;
    while i + L <= x.len() {
        let d = _mm256_sub_ps(load(&x[i..]), vm);
        acc = _mm256_fmadd_ps(d, d, acc);
        i += L;
    }
    let var = (hsum(acc) + x[i..].iter().map(|v| (v - mean) * (v - mean)).sum::<f32>()) / n;
    scale_affine(x, mean, 1.0 / (var + eps).sqrt(), w, Some(b), out);
}

/// SiLU in place: `x / (1 + exp(-x))`.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn silu_inplace(x: &mut [f32]) {
    let one = _mm256_set1_ps(1.0);
    let mut i = 0;
    while i + L <= x.len() {
        let v = load(&x[i..]);
        let e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), v));
        store(&mut x[i..], _mm256_div_ps(v, _mm256_add_ps(one, e)));
        i += L;
    }
    scalar::silu_inplace(&mut x[i..]);
}

/// GELU (tanh form) in place, using `0.5·(1 + tanh(u)) = 1 / (1 + exp(-2u))`
/// so no cancellation happens for negative inputs.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn gelu_tanh_inplace(x: &mut [f32]) {
    let one = _mm256_set1_ps(1.0);
    let k2 = _mm256_set1_ps(-2.0 * scalar::GELU_K);
    let c = _mm256_set1_ps(0.044_715);
    let mut i = 0;
    while i + L <= x.len() {
        let v = load(&x[i..]);
        let inner = _mm256_fmadd_ps(_mm256_mul_ps(c, v), _mm256_mul_ps(v, v), v);
        let e = exp8(_mm256_mul_ps(k2, inner));
        store(&mut x[i..], _mm256_div_ps(v, _mm256_add_ps(one, e)));
        i += L;
    }
    scalar::gelu_tanh_inplace(&mut x[i..]);
}

/// `x *= y`; the plain loop, vectorised by the compiler for AVX2.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn mul_inplace(x: &mut [f32], y: &[f32]) {
    scalar::mul_inplace(x, y)
}

/// `out = x · y`; the plain loop, vectorised by the compiler for AVX2.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn mul_to(out: &mut [f32], x: &[f32], y: &[f32]) {
    scalar::mul_to(out, x, y)
}

/// RoPE rotation of each head by one row's angles; the plain loop,
/// vectorised by the compiler for AVX2 (multiplies and subtractions kept
/// apart, so the bits are the plain loop's).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn rope_rotate(x: &mut [f32], n_heads: usize, head_dim: usize, cos_sin: &[f32]) {
    scalar::rope_rotate(x, n_heads, head_dim, cos_sin)
}

/// `x += y`; the plain loop, vectorised by the compiler for AVX2.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn add_inplace(x: &mut [f32], y: &[f32]) {
    scalar::add_inplace(x, y)
}

// ANCHOR: matvec
/// `out[r] = w[r,:] · x` for a row-major `rows × cols` matrix, one row at a
/// time: eight independent accumulators take 64 floats of the row per step
/// (four cache lines, one straight stream), while the lines
/// [`super::PREFETCH_BYTES`] further on are prefetched so memory never
/// waits for the arithmetic.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
///
/// # Panics
/// If `w.len() < rows*cols`, `x.len() < cols` or `out.len() < rows`.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn matvec(w: &[f32], rows: usize, cols: usize, x: &[f32], out: &mut [f32]) {
    assert!(w.len() >= rows * cols && x.len() >= cols && out.len() >= rows);
    let ahead = super::PREFETCH_BYTES / 4;
    for (r, o) in out.iter_mut().enumerate().take(rows) {
        let row = &w[r * cols..(r + 1) * cols];
        let p = row.as_ptr();
        let mut acc = [_mm256_setzero_ps(); 8];
        let mut c = 0;
        while c + 8 * L <= cols {
            // The four cache lines `PREFETCH_BYTES` further down the row
            // (a prefetch never faults: the address wraps).
            for k in 0..4 {
                _mm_prefetch::<_MM_HINT_T1>(p.wrapping_add(c + ahead + 16 * k).cast());
            }
            for (j, a) in acc.iter_mut().enumerate() {
                let at = c + j * L;
                *a = _mm256_fmadd_ps(load(&row[at..]), load(&x[at..]), *a);
            }
            c += 8 * L;
        }
        while c + L <= cols {
            acc[0] = _mm256_fmadd_ps(load(&row[c..]), load(&x[c..]), acc[0]);
            c += L;
        }
        let four = |k: usize| {
            _mm256_add_ps(
                _mm256_add_ps(acc[k], acc[k + 1]),
                _mm256_add_ps(acc[k + 2], acc[k + 3]),
            )
        };
        *o = hsum(_mm256_add_ps(four(0), four(4))) + scalar::dot(&row[c..], &x[c..cols]);
    }
}
// ANCHOR_END: matvec

/// The scores `out[p] = k[p,:] · q` of one query against `rows` cached
/// keys of `cols` floats: four keys at a time, so that each 16-float piece
/// of the query is loaded once for four of them, with eight independent
/// accumulators, prefetching the keys [`super::PREFETCH_BYTES`] further on
/// (at least the next four). Keys are short rows read again and again from
/// cache, unlike a weight matrix's long rows ([`matvec`]).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
///
/// # Panics
/// If `k.len() < rows*cols`, `q.len() < cols` or `out.len() < rows`.
#[target_feature(enable = "avx2,fma")]
unsafe fn key_scores(w: &[f32], rows: usize, cols: usize, x: &[f32], out: &mut [f32]) {
    let ahead = super::PREFETCH_BYTES.div_ceil((4 * cols).max(1)).max(4);
    assert!(w.len() >= rows * cols && x.len() >= cols && out.len() >= rows);
    let mut r = 0;
    while r + 4 <= rows {
        let p = w[r * cols..].as_ptr();
        let mut acc = [_mm256_setzero_ps(); 8];
        let mut c = 0;
        while c + 2 * L <= cols {
            let (x0, x1) = (load(&x[c..]), load(&x[c + L..]));
            for j in 0..4 {
                let at = j * cols + c;
                // A prefetch is only a hint and never faults; the
                // address is formed with wrapping_add, so no out-of-bounds
                // pointer arithmetic happens either.
                _mm_prefetch::<_MM_HINT_T1>(p.wrapping_add(at + ahead * cols).cast());
                // SAFETY: row r+j (j < 4, r+4 <= rows) spans
                // (r+j)*cols .. (r+j+1)*cols <= rows*cols <= w.len(), and
                // c + 16 <= cols, so both 8-float reads are inside it.
                let (w0, w1) =
                    unsafe { (_mm256_loadu_ps(p.add(at)), _mm256_loadu_ps(p.add(at + L))) };
                acc[2 * j] = _mm256_fmadd_ps(w0, x0, acc[2 * j]);
                acc[2 * j + 1] = _mm256_fmadd_ps(w1, x1, acc[2 * j + 1]);
            }
            c += 2 * L;
        }
        let pair = |j: usize| _mm256_add_ps(acc[2 * j], acc[2 * j + 1]);
        let mut sums = [0.0f32; 4];
        // SAFETY: `sums` holds exactly 4 floats.
        unsafe { _mm_storeu_ps(sums.as_mut_ptr(), hsum4(pair(0), pair(1), pair(2), pair(3))) };
        for (j, s) in sums.iter().enumerate() {
            let row = &w[(r + j) * cols..(r + j + 1) * cols];
            out[r + j] = s + scalar::dot(&row[c..], &x[c..cols]);
        }
        r += 4;
    }
    while r < rows {
        // SAFETY: same CPU features as this function.
        out[r] = unsafe { dot(&w[r * cols..(r + 1) * cols], &x[..cols]) };
        r += 1;
    }
}

/// Eight f16 values from the start of `s`, widened to f32 (F16C).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn load_f16(s: &[half::f16]) -> __m256 {
    assert!(s.len() >= L);
    // SAFETY: 8 halves (16 bytes) are in bounds; loadu is unaligned.
    _mm256_cvtph_ps(unsafe { _mm_loadu_si128(s.as_ptr().cast()) })
}

/// See `super::widen_f16`: eight halves per conversion, four conversions
/// per step, the tail one value at a time.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
///
/// # Panics
/// If `dst` is shorter than `src`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn widen_f16(src: &[half::f16], dst: &mut [f32]) {
    assert!(dst.len() >= src.len());
    let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
    let mut i = 0;
    while i + 4 * L <= src.len() {
        for j in 0..4 {
            // SAFETY: i + 8j + 8 <= src.len() <= dst.len().
            unsafe {
                let h = _mm_loadu_si128(s.add(i + j * L).cast());
                _mm256_storeu_ps(d.add(i + j * L), _mm256_cvtph_ps(h));
            }
        }
        i += 4 * L;
    }
    for (o, h) in dst[i..src.len()].iter_mut().zip(&src[i..]) {
        *o = h.to_f32();
    }
}

/// Matrix-vector product with an f16 matrix: rows widened 8 at a time with
/// F16C, one row at a time with four accumulators (so each row is one
/// straight stream), asking for the bytes [`super::PREFETCH_BYTES`] ahead
/// once per cache line, as [`matvec`] does. (Four rows side by side read
/// GPT-2's 1.5 KB rows measurably slower: four streams inside 6 KB.)
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
///
/// # Panics
/// If `w.len() < rows*cols`, `x.len() < cols` or `out.len() < rows`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn matvec_f16(
    w: &[half::f16],
    rows: usize,
    cols: usize,
    x: &[f32],
    out: &mut [f32],
) {
    assert!(w.len() >= rows * cols && x.len() >= cols && out.len() >= rows);
    let ahead = super::PREFETCH_BYTES / 2;
    for (r, o) in out.iter_mut().enumerate().take(rows) {
        let row = &w[r * cols..(r + 1) * cols];
        let p = row.as_ptr();
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut c = 0;
        while c + 4 * L <= cols {
            // 32 halves are one cache line's worth. A prefetch never
            // faults (wrapping address, see `matvec`).
            _mm_prefetch::<_MM_HINT_T1>(p.wrapping_add(c + ahead).cast());
            for (j, a) in acc.iter_mut().enumerate() {
                // SAFETY: c + 8j + 8 <= cols, inside this row.
                let h = unsafe { _mm_loadu_si128(p.add(c + j * L).cast()) };
                *a = _mm256_fmadd_ps(_mm256_cvtph_ps(h), load(&x[c + j * L..]), *a);
            }
            c += 4 * L;
        }
        while c + L <= cols {
            acc[0] = _mm256_fmadd_ps(load_f16(&row[c..]), load(&x[c..]), acc[0]);
            c += L;
        }
        let s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        *o = hsum(s)
            + row[c..]
                .iter()
                .zip(&x[c..cols])
                .map(|(a, b)| a.to_f32() * b)
                .sum::<f32>();
    }
}

/// Sum of every element, read once: the "streaming read" yardstick for
/// memory bandwidth that the matrix-vector benchmark is compared with. It
/// prefetches the same distance ahead as [`matvec`]
/// ([`super::PREFETCH_BYTES`]), so the comparison is like for like.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn stream_sum(x: &[f32]) -> f32 {
    const AHEAD: usize = super::PREFETCH_BYTES / 4;
    let p = x.as_ptr();
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i + 4 * L <= x.len() {
        // Prefetches never fault; 32 floats are two cache lines.
        _mm_prefetch::<_MM_HINT_T1>(p.wrapping_add(i + AHEAD).cast());
        _mm_prefetch::<_MM_HINT_T1>(p.wrapping_add(i + AHEAD + 2 * L).cast());
        for (j, acc) in acc.iter_mut().enumerate() {
            *acc = _mm256_add_ps(*acc, load(&x[i + j * L..]));
        }
        i += 4 * L;
    }
    let s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    hsum(s) + x[i..].iter().sum::<f32>()
}

/// One query head against `len` keys and values (see
/// [`super::scalar::attend_one`]). The scores are a matrix-vector product
/// (the head's keys are a contiguous `len × head_dim` matrix); the output
/// `Σ scoreₚ·vₚ` is accumulated in registers, 64 columns (8 vectors) at a
/// time, so it is not stored and reloaded once per position.
///
/// # Safety
/// The CPU must support this module's features.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn attend_one(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    scores: &mut Vec<f32>,
    out: &mut [f32],
) {
    let hd = q.len();
    if hd == 0 {
        return;
    }
    let len = k.len() / hd;
    let scale_f = 1.0 / (hd as f32).sqrt();
    scores.clear();
    scores.resize(len, 0.0);
    // SAFETY (the three calls): same CPU features as this function.
    unsafe { key_scores(k, len, hd, q, scores) };
    scale(scores, scale_f);
    unsafe { softmax_inplace(scores) };
    const W: usize = 8 * L;
    let mut c0 = 0;
    while c0 + W <= hd {
        let mut acc = [_mm256_setzero_ps(); 8];
        for (p, &sp) in scores.iter().enumerate() {
            let row = &v[p * hd + c0..p * hd + c0 + W];
            let vs = _mm256_set1_ps(sp);
            for (j, acc) in acc.iter_mut().enumerate() {
                *acc = _mm256_fmadd_ps(vs, load(&row[j * L..]), *acc);
            }
        }
        for (j, acc) in acc.iter().enumerate() {
            store(&mut out[c0 + j * L..], *acc);
        }
        c0 += W;
    }
    if c0 < hd {
        out[c0..hd].fill(0.0);
        for (p, &sp) in scores.iter().enumerate() {
            unsafe { axpy(sp, &v[p * hd + c0..(p + 1) * hd], &mut out[c0..hd]) };
        }
    }
}

/// The query heads of one grouped-query group (`q`: `g × hd`, `g ≤ 4`,
/// `hd` a multiple of 32) against their shared f16 keys and values: each
/// key and value row is read once for the whole group instead of once per
/// head. `scores` ends up `g × len`; `out` is `g × hd`. (AVX-512 CPUs run
/// `attend_avx512::attend_group_f16`, which has these bits.)
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn attend_group_f16(
    q: &[f32],
    k: &[half::f16],
    v: &[half::f16],
    g: usize,
    scores: &mut Vec<f32>,
    out: &mut [f32],
) {
    // SAFETY: same CPU features as this function.
    unsafe { by_group_size!(g, group_f16(q, k, v, scores, out)) }
}

/// `$body::<G>(args)` for the group size `$g` (1 to 4; more is taken as
/// 4): a constant group size lets the accumulators live in registers.
macro_rules! by_group_size {
    ($g:expr, $body:ident($($a:expr),*)) => {
        match $g {
            1 => $body::<1>($($a),*),
            2 => $body::<2>($($a),*),
            3 => $body::<3>($($a),*),
            _ => $body::<4>($($a),*),
        }
    };
}
pub(super) use by_group_size;

/// Checks a grouped attention call's lengths (`q` and `out`: `g ≤ 4`
/// heads of `hd`, a multiple of 32; `k` and `v`: whole rows of `hd`) and
/// sizes `scores` to `g × len`. Returns `(hd, len, 1/√hd)`.
///
/// # Panics
/// If the lengths do not fit.
pub(super) fn group_shape(
    g: usize,
    q: &[f32],
    (k, v): (&[half::f16], &[half::f16]),
    scores: &mut Vec<f32>,
    out: &[f32],
) -> (usize, usize, f32) {
    let hd = q.len() / g.max(1);
    assert!(
        (1..=4).contains(&g)
            && hd.is_multiple_of(4 * L)
            && q.len() == g * hd
            && out.len() == q.len()
    );
    let len = k.len() / hd;
    assert!(v.len() >= len * hd);
    scores.clear();
    scores.resize(g * len, 0.0);
    (hd, len, 1.0 / (hd as f32).sqrt())
}

/// The body of [`attend_group_f16`] for `G` heads.
///
/// # Safety
/// Compiled into [`attend_group_f16`]'s features.
#[inline(always)]
unsafe fn group_f16<const G: usize>(
    q: &[f32],
    k: &[half::f16],
    v: &[half::f16],
    scores: &mut Vec<f32>,
    out: &mut [f32],
) {
    let (hd, len, scale_f) = group_shape(G, q, (k, v), scores, out);
    let (qp, kp) = (q.as_ptr(), k.as_ptr());
    // Two positions at a time: each position's sums run in the same order
    // as alone (the same bits), but the chains of dependent multiply-adds
    // overlap instead of waiting on each other.
    let mut p = 0;
    // SAFETY (both loops): every pointer offset below is inside `q`, `k`
    // (p·hd + c + 8 ≤ len·hd) or `scores`; prefetches never fault.
    unsafe {
        while p + 2 <= len {
            key_rows::<G, 2>(qp, kp, v.as_ptr(), p, hd, len, scale_f, scores);
            p += 2;
        }
        for p in p..len {
            let mut acc = [_mm256_setzero_ps(); G];
            for c in (0..hd).step_by(L) {
                let kv = _mm256_cvtph_ps(_mm_loadu_si128(kp.add(p * hd + c).cast()));
                for (j, acc) in acc.iter_mut().enumerate() {
                    *acc = _mm256_fmadd_ps(kv, _mm256_loadu_ps(qp.add(j * hd + c)), *acc);
                }
            }
            for (j, acc) in acc.iter().enumerate() {
                *scores.get_unchecked_mut(j * len + p) = hsum(*acc) * scale_f;
            }
        }
        for row in scores.chunks_exact_mut(len.max(1)) {
            softmax_inplace(row);
        }
        // Four vectors of a value row at a time, or two for three or more
        // heads, so that the accumulators, the row and the score fit in
        // sixteen registers (four for three heads is twelve accumulators,
        // which went through the stack on every position).
        if G <= 2 {
            weigh_values::<G, 4>(scores, v.as_ptr(), len, hd, out);
        } else {
            weigh_values::<G, 2>(scores, v.as_ptr(), len, hd, out);
        }
    }
}

/// The scores of key rows `p..p + P` (`P` even) for the `G` heads of a
/// group, into `scores[j·len + p..]`, each summed as [`hsum`] sums one.
/// Asks for the same value rows, which the weighted sum reads later.
///
/// # Safety
/// Rows `p..p + P` lie inside `k` and `v`, `q` holds `G × hd` floats and
/// `scores` `G × len`; compiled into an entry point with AVX2, FMA and F16C.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn key_rows<const G: usize, const P: usize>(
    qp: *const f32,
    kp: *const half::f16,
    vp: *const half::f16,
    p: usize,
    hd: usize,
    len: usize,
    scale: f32,
    scores: &mut [f32],
) {
    // SAFETY: the caller's contract.
    unsafe {
        // The values are read after the softmax: ask for these rows now
        // (a hint; never faults), so they are in cache by then. And the
        // keys sixteen rows on: a sequence's keys and values were written
        // steps ago and have since left the cache (the weights stream
        // through it every step), and a head's few kilobytes are too
        // short a run for the hardware prefetcher to get ahead of. Into
        // L2 (`T1`): see `ask_for`.
        for line in (0..P * hd).step_by(32) {
            _mm_prefetch::<_MM_HINT_T1>(vp.wrapping_add(p * hd + line).cast());
            _mm_prefetch::<_MM_HINT_T1>(kp.wrapping_add((p + 16) * hd + line).cast());
        }
        let mut acc = [[_mm256_setzero_ps(); G]; P];
        for c in (0..hd).step_by(L) {
            let kv: [__m256; P] = std::array::from_fn(|i| {
                _mm256_cvtph_ps(_mm_loadu_si128(kp.add((p + i) * hd + c).cast()))
            });
            for j in 0..G {
                let qv = _mm256_loadu_ps(qp.add(j * hd + c));
                for (a, kv) in acc.iter_mut().zip(kv) {
                    a[j] = _mm256_fmadd_ps(kv, qv, a[j]);
                }
            }
        }
        // Head j's scores of two neighbouring rows side by side: one
        // reduction and one 8-byte store for both.
        for (i, pair) in acc.chunks_exact(2).enumerate() {
            for (j, (a, b)) in pair[0].iter().zip(&pair[1]).enumerate() {
                let two = _mm_mul_ps(hsum2(*a, *b), _mm_set1_ps(scale));
                _mm_store_sd(
                    scores.as_mut_ptr().add(j * len + p + 2 * i).cast(),
                    _mm_castps_pd(two),
                );
            }
        }
    }
}

/// `out[j] = Σₚ scores[j][p] · v[p]` for the `G` heads of a group, `C`
/// vectors of the value rows at a time (each output lane sums its
/// positions in order, whatever `C` is).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C; `v` must hold `len` rows of
/// `hd` halves, `scores` `G × len` values and `out` `G × hd`, with `hd` a
/// multiple of `C · 8`.
#[inline(always)]
unsafe fn weigh_values<const G: usize, const C: usize>(
    scores: &[f32],
    vp: *const half::f16,
    len: usize,
    hd: usize,
    out: &mut [f32],
) {
    // SAFETY: the caller's contract.
    unsafe {
        for c0 in (0..hd).step_by(C * L) {
            let mut acc = [[_mm256_setzero_ps(); C]; G];
            for p in 0..len {
                let row = vp.add(p * hd + c0);
                let vv: [__m256; C] = std::array::from_fn(|i| {
                    _mm256_cvtph_ps(_mm_loadu_si128(row.add(i * L).cast()))
                });
                for (j, acc) in acc.iter_mut().enumerate() {
                    let s = _mm256_set1_ps(*scores.get_unchecked(j * len + p));
                    for (a, x) in acc.iter_mut().zip(vv) {
                        *a = _mm256_fmadd_ps(s, x, *a);
                    }
                }
            }
            for (j, acc) in acc.iter().enumerate() {
                for (i, a) in acc.iter().enumerate() {
                    store(&mut out[j * hd + c0 + i * L..], *a);
                }
            }
        }
    }
}

/// The 8×8 block `r` (row k in `r[k]`) transposed: column i in `out[i]`.
/// Pairs of rows interleave (`unpack`), pairs of pairs gather four-value
/// columns per 128-bit half (`shuffle`), and the halves of rows 0–3 and
/// 4–7 are joined (`permute2f128`).
#[inline]
#[target_feature(enable = "avx2")]
pub(super) fn transpose8(r: [__m256; 8]) -> [__m256; 8] {
    let t: [__m256; 8] = std::array::from_fn(|k| {
        let (a, b) = (r[k & !1], r[k | 1]);
        if k % 2 == 0 {
            _mm256_unpacklo_ps(a, b)
        } else {
            _mm256_unpackhi_ps(a, b)
        }
    });
    // u[4h + c]: columns c and c + 4 of rows 4h..4h + 4 (c < 4).
    let u: [__m256; 8] = std::array::from_fn(|k| {
        let (h, c) = (k / 4, k % 4);
        let (a, b) = (t[4 * h + c / 2], t[4 * h + 2 + c / 2]);
        if c % 2 == 0 {
            _mm256_shuffle_ps::<0x44>(a, b)
        } else {
            _mm256_shuffle_ps::<0xEE>(a, b)
        }
    });
    std::array::from_fn(|i| {
        let (lo, hi) = (u[i % 4], u[4 + i % 4]);
        if i < 4 {
            _mm256_permute2f128_ps::<0x20>(lo, hi)
        } else {
            _mm256_permute2f128_ps::<0x31>(lo, hi)
        }
    })
}

/// `dst[i][j] = src[j · t + i]`, in 8×8 blocks; the last `t % 8` columns
/// and `n % 8` rows one value at a time.
///
/// # Safety
/// AVX2 and FMA; the lengths as `super::transpose` checks them.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn transpose(src: &[f32], t: usize, dst: &mut [&mut [f32]]) {
    let n = src.len() / t;
    let (n8, t8) = (n / L * L, t / L * L);
    for j0 in (0..n8).step_by(L) {
        for i0 in (0..t8).step_by(L) {
            // SAFETY: rows j0..j0 + 8 < n, columns i0..i0 + 8 <= t.
            let r = std::array::from_fn(|k| unsafe {
                _mm256_loadu_ps(src.as_ptr().add((j0 + k) * t + i0))
            });
            for (k, c) in transpose8(r).into_iter().enumerate() {
                let d = &mut dst[i0 + k][j0..j0 + L];
                // SAFETY: `d` holds eight values.
                unsafe { _mm256_storeu_ps(d.as_mut_ptr(), c) };
            }
        }
        for i in t8..t {
            for k in 0..L {
                dst[i][j0 + k] = src[(j0 + k) * t + i];
            }
        }
    }
    for j in n8..n {
        for (i, d) in dst.iter_mut().take(t).enumerate() {
            d[j] = src[j * t + i];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small xorshift generator of `u32`s from `seed` (not zero).
    fn xorshift(mut s: u32) -> impl FnMut() -> u32 {
        move || {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            s
        }
    }

    /// `hsum2` adds each vector's lanes in `hsum`'s order: the same bits,
    /// which the attention kernel's scores rely on.
    #[test]
    fn hsum2_has_the_bits_of_hsum() {
        if !is_x86_feature_detected!("avx2") || !is_x86_feature_detected!("fma") {
            eprintln!("skipped: this CPU has no AVX2/FMA");
            return;
        }
        let mut bits = xorshift(0x2545_f491);
        let mut next = || {
            let s = bits();
            // Mixed signs and magnitudes, so the order of the additions
            // shows in the rounding.
            (s as f32 / u32::MAX as f32 - 0.5) * 10f32.powi((s % 9) as i32 - 4)
        };
        for _ in 0..2000 {
            let a: [f32; 8] = std::array::from_fn(|_| next());
            let b: [f32; 8] = std::array::from_fn(|_| next());
            // SAFETY: AVX2 and FMA were detected above.
            let (got, want) = unsafe {
                let (va, vb) = (_mm256_loadu_ps(a.as_ptr()), _mm256_loadu_ps(b.as_ptr()));
                let mut got = [0f32; 4];
                _mm_storeu_ps(got.as_mut_ptr(), hsum2(va, vb));
                (got, [hsum(va), hsum(vb)])
            };
            assert_eq!(got[0].to_bits(), want[0].to_bits(), "{a:?}");
            assert_eq!(got[1].to_bits(), want[1].to_bits(), "{b:?}");
        }
    }
}
