//! The f32 kernels that run on 512-bit vectors: the f16 and f32
//! matrix-vector products, each with the AVX2 kernel's bits.
//!
//! The AVX2 kernel (`avx2::matvec_f16`) keeps four eight-lane sums per row,
//! for the 32 columns of each step. Two 512-bit vectors hold the same four
//! sums side by side, so each step converts sixteen halves per instruction
//! instead of eight and multiplies-adds them in the same order; the sums
//! are then split back and finished exactly as the AVX2 kernel finishes
//! them. Widening halves is that product's arithmetic bottleneck.
//!
//! The f32 product (`avx2::matvec`) has eight eight-lane sums for the 64
//! columns of a step; four 512-bit vectors hold them side by side. Its
//! gain is in the loads: one 64-byte load per cache line instead of two
//! 32-byte ones, which lets a single core stream a matrix faster, provided
//! the rows start on cache lines (`crate::alloc`): a 64-byte load from a
//! row 16 bytes into a line straddles two lines every time.

use std::arch::x86_64::*;

use super::avx2::{hsum, load_f16};

/// Lanes 0–7 (`hi` false) or 8–15 of `v`.
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn half(v: __m512, hi: bool) -> __m256 {
    let d = _mm512_castps_pd(v);
    _mm256_castpd_ps(if hi {
        _mm512_extractf64x4_pd::<1>(d)
    } else {
        _mm512_castpd512_pd256(d)
    })
}

// ANCHOR: matvec
/// See `avx2::matvec` (the same arguments and the same bits).
///
/// # Safety
/// The CPU must support AVX2, FMA and AVX-512F.
///
/// # Panics
/// If `w` is shorter than `rows · cols`, `x` than `cols` or `out` than
/// `rows`.
#[target_feature(enable = "avx2,fma,avx512f")]
pub(crate) unsafe fn matvec(w: &[f32], rows: usize, cols: usize, x: &[f32], out: &mut [f32]) {
    const L: usize = 8;
    assert!(w.len() >= rows * cols && x.len() >= cols && out.len() >= rows);
    let ahead = super::PREFETCH_BYTES / 4;
    for (r, o) in out.iter_mut().enumerate().take(rows) {
        let row = &w[r * cols..(r + 1) * cols];
        let p = row.as_ptr();
        // The AVX2 kernel's sums 2k and 2k + 1 side by side in acc[k].
        let mut acc = [_mm512_setzero_ps(); 4];
        let mut c = 0;
        while c + 8 * L <= cols {
            for (k, a) in acc.iter_mut().enumerate() {
                // The line PREFETCH_BYTES further on (a prefetch never
                // faults: the address wraps).
                _mm_prefetch::<_MM_HINT_T1>(p.wrapping_add(c + ahead + 16 * k).cast());
                // SAFETY: c + 16k + 16 <= cols, inside this row and `x`.
                unsafe {
                    let wv = _mm512_loadu_ps(p.add(c + 2 * k * L));
                    let xv = _mm512_loadu_ps(x.as_ptr().add(c + 2 * k * L));
                    *a = _mm512_fmadd_ps(wv, xv, *a);
                }
            }
            c += 8 * L;
        }
        let mut s: [__m256; 8] = std::array::from_fn(|j| half(acc[j / 2], j % 2 == 1));
        while c + L <= cols {
            // SAFETY: c + 8 <= cols, inside this row and `x`.
            let (wv, xv) = unsafe {
                (
                    _mm256_loadu_ps(p.add(c)),
                    _mm256_loadu_ps(x.as_ptr().add(c)),
                )
            };
            s[0] = _mm256_fmadd_ps(wv, xv, s[0]);
            c += L;
        }
        let four = |k: usize| {
            _mm256_add_ps(
                _mm256_add_ps(s[k], s[k + 1]),
                _mm256_add_ps(s[k + 2], s[k + 3]),
            )
        };
        *o = hsum(_mm256_add_ps(four(0), four(4))) + super::scalar::dot(&row[c..], &x[c..cols]);
    }
}
// ANCHOR_END: matvec

// ANCHOR: matvec_f16
/// See `avx2::matvec_f16` (the same arguments and the same bits).
///
/// # Safety
/// The CPU must support AVX2, FMA, F16C and AVX-512F.
///
/// # Panics
/// If `w` is shorter than `rows · cols`, `x` than `cols` or `out` than
/// `rows`.
#[target_feature(enable = "avx2,fma,f16c,avx512f")]
pub(crate) unsafe fn matvec_f16(
    w: &[half::f16],
    rows: usize,
    cols: usize,
    x: &[f32],
    out: &mut [f32],
) {
    const L: usize = 8;
    assert!(w.len() >= rows * cols && x.len() >= cols && out.len() >= rows);
    let ahead = super::PREFETCH_BYTES / 2;
    for (r, o) in out.iter_mut().enumerate().take(rows) {
        let row = &w[r * cols..(r + 1) * cols];
        let p = row.as_ptr();
        // The AVX2 kernel's sums 0 and 1, and 2 and 3, side by side.
        let mut acc = [_mm512_setzero_ps(); 2];
        let mut c = 0;
        while c + 4 * L <= cols {
            // A prefetch never faults (wrapping address).
            _mm_prefetch::<_MM_HINT_T1>(p.wrapping_add(c + ahead).cast());
            for (j, a) in acc.iter_mut().enumerate() {
                // SAFETY: c + 16j + 16 <= cols, inside this row and `x`.
                unsafe {
                    let h = _mm256_loadu_si256(p.add(c + 2 * j * L).cast());
                    let xv = _mm512_loadu_ps(x.as_ptr().add(c + 2 * j * L));
                    *a = _mm512_fmadd_ps(_mm512_cvtph_ps(h), xv, *a);
                }
            }
            c += 4 * L;
        }
        let mut a0 = half(acc[0], false);
        let (a1, a2, a3) = (half(acc[0], true), half(acc[1], false), half(acc[1], true));
        while c + L <= cols {
            // SAFETY: c + 8 <= cols, inside `x`.
            let xv = unsafe { _mm256_loadu_ps(x.as_ptr().add(c)) };
            a0 = _mm256_fmadd_ps(load_f16(&row[c..]), xv, a0);
            c += L;
        }
        let s = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
        *o = hsum(s)
            + row[c..]
                .iter()
                .zip(&x[c..cols])
                .map(|(a, b)| a.to_f32() * b)
                .sum::<f32>();
    }
}
// ANCHOR_END: matvec_f16

/// See `super::widen_f16`: sixteen halves per conversion, four
/// conversions per step, the tail as the AVX2 kernel does it.
///
/// # Safety
/// The CPU must support AVX2, FMA, F16C and AVX-512F.
///
/// # Panics
/// If `dst` is shorter than `src`.
#[target_feature(enable = "avx2,fma,f16c,avx512f")]
pub(crate) unsafe fn widen_f16(src: &[half::f16], dst: &mut [f32]) {
    const W: usize = 16;
    assert!(dst.len() >= src.len());
    let (s, d) = (src.as_ptr(), dst.as_mut_ptr());
    let mut i = 0;
    while i + 4 * W <= src.len() {
        for j in 0..4 {
            // SAFETY: i + 16j + 16 <= src.len() <= dst.len().
            unsafe {
                let h = _mm256_loadu_si256(s.add(i + j * W).cast());
                _mm512_storeu_ps(d.add(i + j * W), _mm512_cvtph_ps(h));
            }
        }
        i += 4 * W;
    }
    // SAFETY: the caller's features.
    unsafe { super::avx2::widen_f16(&src[i..], &mut dst[i..]) }
}

/// See `avx2::stream_sum` (the same sums, so the same bits): the AVX2
/// kernel's four eight-lane sums side by side in two 512-bit vectors, one
/// 64-byte load per cache line instead of two 32-byte ones (a single core
/// streams faster so), then split back and finished as the AVX2 kernel
/// finishes them.
///
/// # Safety
/// The CPU must support AVX2, FMA and AVX-512F.
#[target_feature(enable = "avx2,fma,avx512f")]
pub(crate) unsafe fn stream_sum(x: &[f32]) -> f32 {
    const AHEAD: usize = super::PREFETCH_BYTES / 4;
    let p = x.as_ptr();
    let mut acc = [_mm512_setzero_ps(); 2];
    let mut i = 0;
    while i + 32 <= x.len() {
        // Prefetches never fault; 32 floats are two cache lines.
        _mm_prefetch::<_MM_HINT_T1>(p.wrapping_add(i + AHEAD).cast());
        _mm_prefetch::<_MM_HINT_T1>(p.wrapping_add(i + AHEAD + 16).cast());
        for (j, a) in acc.iter_mut().enumerate() {
            // SAFETY: i + 16j + 16 <= x.len().
            *a = _mm512_add_ps(*a, unsafe { _mm512_loadu_ps(p.add(i + 16 * j)) });
        }
        i += 32;
    }
    let (a0, a1) = (half(acc[0], false), half(acc[0], true));
    let (a2, a3) = (half(acc[1], false), half(acc[1], true));
    let s = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
    hsum(s) + x[i..].iter().sum::<f32>()
}
