//! AVX-512F kernels: sixteen f32 lanes per instruction, with masked loads
//! for the tails (a masked-off lane is never read, so the tail needs no
//! scalar loop). Only the hottest loops have a 512-bit version; the
//! dispatcher uses the AVX2 kernels for the rest (every AVX-512 CPU has AVX2).
//!
//! Safety contract of each `unsafe fn`: the CPU supports AVX-512F (and
//! AVX2/FMA/F16C), as checked by [`super::dispatch`].

use std::arch::x86_64::*;

/// Lanes per vector.
const L: usize = 16;

/// Mask selecting the first `n` lanes (`n <= 16`).
#[inline]
fn tail_mask(n: usize) -> __mmask16 {
    ((1u32 << n.min(L)) - 1) as __mmask16
}

/// Load up to 16 floats from the start of `s`; lanes past its end are 0.
#[inline]
#[target_feature(enable = "avx512f")]
fn load(s: &[f32]) -> __m512 {
    let k = tail_mask(s.len());
    // SAFETY: only the first min(len, 16) lanes are enabled, all inside `s`;
    // masked-off lanes are not accessed (no fault, no read).
    unsafe { _mm512_maskz_loadu_ps(k, s.as_ptr()) }
}

/// Store the first min(len, 16) lanes of `v` to `s`.
#[inline]
#[target_feature(enable = "avx512f")]
fn store(s: &mut [f32], v: __m512) {
    let k = tail_mask(s.len());
    // SAFETY: as in `load`, only lanes inside `s` are written.
    unsafe { _mm512_mask_storeu_ps(s.as_mut_ptr(), k, v) }
}

/// Up to 16 f16 values from the start of `s`, widened (0 past its end).
#[inline]
#[target_feature(enable = "avx512f")]
fn load_f16(s: &[half::f16]) -> __m512 {
    let h = if s.len() >= L {
        // SAFETY: 16 halves (32 bytes) are inside `s`; loadu is unaligned.
        unsafe { _mm256_loadu_si256(s.as_ptr().cast()) }
    } else {
        // A short tail: copy it into a zeroed buffer first (masked 16-bit
        // loads would need AVX-512BW).
        let mut buf = [half::f16::ZERO; L];
        buf[..s.len()].copy_from_slice(s);
        // SAFETY: `buf` holds exactly 16 halves.
        unsafe { _mm256_loadu_si256(buf.as_ptr().cast()) }
    };
    _mm512_cvtph_ps(h)
}

/// `exp` of 16 lanes, as [`super::avx2::exp8`] but building `2ⁿ` with
/// `scalef`. Inputs below −87.3 give 0.
#[inline]
#[target_feature(enable = "avx512f")]
fn exp16(x: __m512) -> __m512 {
    let underflow = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, _mm512_set1_ps(-87.336_55));
    let x = _mm512_max_ps(
        _mm512_min_ps(x, _mm512_set1_ps(88.376_26)),
        _mm512_set1_ps(-87.336_55),
    );
    let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
        _mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E)),
    );
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_359_4), x);
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.121_944_4e-4), r);
    let mut p = _mm512_set1_ps(1.987_569_1e-4);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.398_199_9e-3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.333_452e-3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.166_579_6e-2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.666_666_5e-1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5));
    let p = _mm512_fmadd_ps(
        p,
        _mm512_mul_ps(r, r),
        _mm512_add_ps(r, _mm512_set1_ps(1.0)),
    );
    _mm512_maskz_mov_ps(!underflow, _mm512_scalef_ps(p, n))
}

/// Dot product, four accumulators of 16 lanes, masked tail.
///
/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let mut acc = [_mm512_setzero_ps(); 4];
    let mut i = 0;
    while i + 4 * L <= n {
        for (j, acc) in acc.iter_mut().enumerate() {
            let o = i + j * L;
            *acc = _mm512_fmadd_ps(load(&a[o..o + L]), load(&b[o..o + L]), *acc);
        }
        i += 4 * L;
    }
    while i < n {
        let e = (i + L).min(n);
        acc[0] = _mm512_fmadd_ps(load(&a[i..e]), load(&b[i..e]), acc[0]);
        i = e;
    }
    let s = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
    _mm512_reduce_add_ps(s)
}

/// `y += alpha * x`.
///
/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    let n = x.len().min(y.len());
    let va = _mm512_set1_ps(alpha);
    let mut i = 0;
    while i < n {
        let e = (i + L).min(n);
        let v = _mm512_fmadd_ps(va, load(&x[i..e]), load(&y[i..e]));
        store(&mut y[i..e], v);
        i = e;
    }
}

/// Softmax: max, exp with running sum, scale.
///
/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn softmax_inplace(x: &mut [f32]) {
    let n = x.len();
    if n == 0 {
        return;
    }
    let mut m = _mm512_set1_ps(f32::NEG_INFINITY);
    let mut i = 0;
    while i < n {
        let e = (i + L).min(n);
        let k = tail_mask(e - i);
        m = _mm512_mask_max_ps(m, k, m, load(&x[i..e]));
        i = e;
    }
    let vm = _mm512_set1_ps(_mm512_reduce_max_ps(m));
    let mut acc = _mm512_setzero_ps();
    i = 0;
    while i < n {
        let e = (i + L).min(n);
        let k = tail_mask(e - i);
        let v = _mm512_maskz_mov_ps(k, exp16(_mm512_sub_ps(load(&x[i..e]), vm)));
        store(&mut x[i..e], v);
        acc = _mm512_add_ps(acc, v);
        i = e;
    }
    let inv = _mm512_set1_ps(1.0 / _mm512_reduce_add_ps(acc));
    i = 0;
    while i < n {
        let e = (i + L).min(n);
        let v = _mm512_mul_ps(load(&x[i..e]), inv);
        store(&mut x[i..e], v);
        i = e;
    }
}

/// RMSNorm of one row.
///
/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn rmsnorm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    // SAFETY: same CPU features as this function.
    let ms = unsafe { dot(x, x) } / x.len() as f32;
    let s = _mm512_set1_ps(1.0 / (ms + eps).sqrt());
    let n = x.len().min(w.len()).min(out.len());
    let mut i = 0;
    while i < n {
        let e = (i + L).min(n);
        let v = _mm512_mul_ps(_mm512_mul_ps(load(&x[i..e]), s), load(&w[i..e]));
        store(&mut out[i..e], v);
        i = e;
    }
}

/// Matrix-vector product, four rows per step sharing each load of `x`.
///
/// # Safety
/// The CPU must support AVX-512F.
///
/// # Panics
/// If `w.len() < rows*cols`, `x.len() < cols` or `out.len() < rows`.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn matvec(w: &[f32], rows: usize, cols: usize, x: &[f32], out: &mut [f32]) {
    let ahead = super::rows_ahead(4 * cols);
    assert!(w.len() >= rows * cols && x.len() >= cols && out.len() >= rows);
    let mut r = 0;
    while r + 4 <= rows {
        let rw: [&[f32]; 4] = std::array::from_fn(|j| &w[(r + j) * cols..(r + j + 1) * cols]);
        let mut acc = [_mm512_setzero_ps(); 4];
        let mut c = 0;
        while c < cols {
            let e = (c + L).min(cols);
            let xv = load(&x[c..e]);
            for (acc, row) in acc.iter_mut().zip(&rw) {
                // A prefetch is only a hint and never faults; the
                // address (same column, `ahead` rows down) is formed with
                // wrapping_add.
                _mm_prefetch::<_MM_HINT_T1>(row.as_ptr().wrapping_add(ahead * cols + c).cast());
                *acc = _mm512_fmadd_ps(load(&row[c..e]), xv, *acc);
            }
            c = e;
        }
        for (j, acc) in acc.iter().enumerate() {
            out[r + j] = _mm512_reduce_add_ps(*acc);
        }
        r += 4;
    }
    while r < rows {
        // SAFETY: same CPU features as this function.
        out[r] = unsafe { dot(&w[r * cols..(r + 1) * cols], &x[..cols]) };
        r += 1;
    }
}

/// Matrix-vector product with an f16 matrix, widened 16 at a time.
///
/// # Safety
/// The CPU must support AVX-512F.
///
/// # Panics
/// If `w.len() < rows*cols`, `x.len() < cols` or `out.len() < rows`.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn matvec_f16(
    w: &[half::f16],
    rows: usize,
    cols: usize,
    x: &[f32],
    out: &mut [f32],
) {
    let ahead = super::rows_ahead(2 * cols);
    assert!(w.len() >= rows * cols && x.len() >= cols && out.len() >= rows);
    let mut r = 0;
    while r < rows {
        let nr = (rows - r).min(4);
        let mut acc = [_mm512_setzero_ps(); 4];
        let mut c = 0;
        while c < cols {
            let e = (c + L).min(cols);
            let xv = load(&x[c..e]);
            for (j, acc) in acc.iter_mut().enumerate().take(nr) {
                let row = &w[(r + j) * cols..(r + j + 1) * cols];
                // A prefetch never faults (wrapping address).
                _mm_prefetch::<_MM_HINT_T1>(row.as_ptr().wrapping_add(ahead * cols + c).cast());
                *acc = _mm512_fmadd_ps(load_f16(&row[c..e]), xv, *acc);
            }
            c = e;
        }
        for (j, acc) in acc.iter().enumerate().take(nr) {
            out[r + j] = _mm512_reduce_add_ps(*acc);
        }
        r += nr;
    }
}

/// Sum of every element (the streaming-read yardstick), prefetching as
/// far ahead as the matrix-vector kernel does.
///
/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn stream_sum(x: &[f32]) -> f32 {
    const AHEAD: usize = super::PREFETCH_BYTES / 4;
    let p = x.as_ptr();
    let mut acc = [_mm512_setzero_ps(); 4];
    let mut i = 0;
    while i + 4 * L <= x.len() {
        for (j, acc) in acc.iter_mut().enumerate() {
            // A prefetch never faults (wrapping address).
            _mm_prefetch::<_MM_HINT_T1>(p.wrapping_add(i + j * L + AHEAD).cast());
            *acc = _mm512_add_ps(*acc, load(&x[i + j * L..i + (j + 1) * L]));
        }
        i += 4 * L;
    }
    let mut s = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
    while i < x.len() {
        let e = (i + L).min(x.len());
        s = _mm512_add_ps(s, load(&x[i..e]));
        i = e;
    }
    _mm512_reduce_add_ps(s)
}

/// One query head against `len` keys and values (see
/// [`super::scalar::attend_one`]). The scores are a matrix-vector product
/// (the head's keys are a contiguous `len × head_dim` matrix); the output
/// `Σ scoreₚ·vₚ` is accumulated in registers, 64 columns (4 vectors) at a
/// time, so it is not stored and reloaded once per position.
///
/// # Safety
/// The CPU must support this module's features.
#[target_feature(enable = "avx512f")]
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
    unsafe { matvec(k, len, hd, q, scores) };
    for x in scores.iter_mut() {
        *x *= scale_f;
    }
    unsafe { softmax_inplace(scores) };
    const W: usize = 4 * L;
    let mut c0 = 0;
    while c0 + W <= hd {
        let mut acc = [_mm512_setzero_ps(); 4];
        for (p, &sp) in scores.iter().enumerate() {
            let row = &v[p * hd + c0..p * hd + c0 + W];
            let vs = _mm512_set1_ps(sp);
            for (j, acc) in acc.iter_mut().enumerate() {
                *acc = _mm512_fmadd_ps(vs, load(&row[j * L..]), *acc);
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
