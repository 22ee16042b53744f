//! The AVX2 + FMA micro-kernel (`MR` tokens × `NR` weight rows, twelve
//! 8-lane accumulators) and the tile packing (8 × 8 transposes).

use std::arch::x86_64::*;

use super::{Block, MR, NR};
use crate::kernels::avx2::transpose8;

/// [`super::micro_scalar`] with the same fused multiply-adds in the same
/// order.
///
/// # Safety
/// The CPU must have AVX2 and FMA.
///
/// # Panics
/// If `w` is shorter than `len · NR` or `x` than `len · MR`.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn micro(w: &[f32], x: &[f32], len: usize, sums: &mut Block, fresh: bool) {
    assert!(w.len() >= len * NR && x.len() >= len * MR);
    let (w, x) = (w.as_ptr(), x.as_ptr());
    // SAFETY: every offset below is `p · NR + {0, 8}` (+ 8 lanes) into `w`
    // or `p · MR + t` (t < MR) into `x`, with p < len: inside the lengths
    // checked above; `sums` is MR rows of NR floats.
    unsafe {
        let mut acc = [[_mm256_setzero_ps(); 2]; MR];
        for p in 0..len {
            let b0 = _mm256_loadu_ps(w.add(p * NR));
            let b1 = _mm256_loadu_ps(w.add(p * NR + 8));
            let xp = x.add(p * MR);
            for (t, acc) in acc.iter_mut().enumerate() {
                let a = _mm256_broadcast_ss(&*xp.add(t));
                acc[0] = _mm256_fmadd_ps(a, b0, acc[0]);
                acc[1] = _mm256_fmadd_ps(a, b1, acc[1]);
            }
        }
        for (o, acc) in sums.iter_mut().zip(&acc) {
            let (lo, hi) = if fresh {
                (acc[0], acc[1])
            } else {
                (
                    _mm256_add_ps(_mm256_loadu_ps(o.as_ptr()), acc[0]),
                    _mm256_add_ps(_mm256_loadu_ps(o.as_ptr().add(8)), acc[1]),
                )
            };
            _mm256_storeu_ps(o.as_mut_ptr(), lo);
            _mm256_storeu_ps(o.as_mut_ptr().add(8), hi);
        }
    }
}

/// [`super::pack_tile`] for `n` rows of `k`: whole 8 × 8 squares
/// transposed in registers, the edges by the plain loops. `out` is sized
/// and zeroed.
///
/// # Safety
/// The CPU must have AVX2.
///
/// # Panics
/// If `w` is shorter than `n · k` or `out` than `n.div_ceil(NR) · k · NR`.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn pack_tile(w: &[f32], n: usize, k: usize, out: &mut [f32]) {
    assert!(w.len() >= n * k && out.len() >= n.div_ceil(NR) * k * NR);
    let (n8, k8) = (n / 8 * 8, k / 8 * 8);
    for j in (0..n8).step_by(8) {
        let (g, r0) = (j / NR, j % NR);
        for p in (0..k8).step_by(8) {
            // SAFETY: rows j..j+8 < n and positions p..p+8 <= k of `w`;
            // in `out`, group g positions p..p+8, lanes r0..r0+8 <= NR.
            unsafe {
                let src = w.as_ptr().add(j * k + p);
                let rows: [__m256; 8] = std::array::from_fn(|r| _mm256_loadu_ps(src.add(r * k)));
                let cols = transpose8(rows);
                let dst = out.as_mut_ptr().add((g * k + p) * NR + r0);
                for (c, v) in cols.iter().enumerate() {
                    _mm256_storeu_ps(dst.add(c * NR), *v);
                }
            }
        }
    }
    // The edges: positions k8.. of the whole squares' rows, and rows n8...
    for j in 0..n {
        let (g, r) = (j / NR, j % NR);
        let from = if j < n8 { k8 } else { 0 };
        for p in from..k {
            out[(g * k + p) * NR + r] = w[j * k + p];
        }
    }
}
