//! The AVX-512F micro-kernel: two neighbouring weight groups at once
//! (`MR` tokens × `2 · NR` rows, twelve 16-lane accumulators), in the same
//! packed layouts as the AVX2 kernel.
//!
//! A weight group's `NR = 16` rows fill one 512-bit vector, so one group
//! alone would give six accumulators, too few to hide the fused
//! multiply-add's latency. Two groups share each broadcast activation and
//! keep twelve sums in flight, as the AVX2 kernel does with half-width
//! vectors, for twice its work per instruction.

use std::arch::x86_64::*;

use super::{Block, MR, NR};

/// [`super::micro_scalar`] on the groups `w0` and `w1` at once (sums into
/// `s0` and `s1`), with the same fused multiply-adds in the same order.
///
/// # Safety
/// The CPU must have AVX-512F.
///
/// # Panics
/// If `w0` or `w1` is shorter than `len · NR` or `x` than `len · MR`.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn micro_pair(
    (w0, w1): (&[f32], &[f32]),
    x: &[f32],
    len: usize,
    (s0, s1): (&mut Block, &mut Block),
    fresh: bool,
) {
    assert!(w0.len() >= len * NR && w1.len() >= len * NR && x.len() >= len * MR);
    let (w0, w1, x) = (w0.as_ptr(), w1.as_ptr(), x.as_ptr());
    // SAFETY: every offset below is `p · NR` (+ 16 lanes) into `w0` or
    // `w1` or `p · MR + t` (t < MR) into `x`, with p < len: inside the
    // lengths checked above; `s0` and `s1` are MR rows of NR floats.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); 2]; MR];
        for p in 0..len {
            let b0 = _mm512_loadu_ps(w0.add(p * NR));
            let b1 = _mm512_loadu_ps(w1.add(p * NR));
            let xp = x.add(p * MR);
            for (t, acc) in acc.iter_mut().enumerate() {
                let a = _mm512_set1_ps(*xp.add(t));
                acc[0] = _mm512_fmadd_ps(a, b0, acc[0]);
                acc[1] = _mm512_fmadd_ps(a, b1, acc[1]);
            }
        }
        for (t, acc) in acc.iter().enumerate() {
            for (o, acc) in [&mut s0[t], &mut s1[t]].into_iter().zip(acc) {
                let v = if fresh {
                    *acc
                } else {
                    _mm512_add_ps(_mm512_loadu_ps(o.as_ptr()), *acc)
                };
                _mm512_storeu_ps(o.as_mut_ptr(), v);
            }
        }
    }
}
