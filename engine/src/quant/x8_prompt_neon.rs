//! NEON body of the many-token regrouped product (the order and the plain
//! twin are in `x8_prompt.rs`): per group, token and block, each half of
//! the eight rows (rows 0–3, rows 4–7) gathers its 32 products as one
//! 32-bit sum per row (`sdot`, or widening multiplies, as in `x8_neon.rs`),
//! which is converted once and scaled once. Q4_0's and Q5_0's codes are
//! taken without their offset, which is removed with the activation
//! block's sum, as the twin does; the integers, and so the bits, are the
//! twin's.

use std::arch::aarch64::*;

use super::super::QK;
use super::super::x8::form::{self, Q4_0, Q4_1, Q5_0, Q8_0};
use super::super::x8::neon::{Products, Sdot, Widening, halves, sixteen};
use super::super::x8::{ROWS, block, head};
use super::Sink;
use crate::dtype::DType;
use crate::quant::act::Q8Row;

/// See [`super::matmul`], with `sdot`.
///
/// # Safety
/// NEON and `dotprod`; the lengths as `super::matmul` checks them.
#[target_feature(enable = "neon,dotprod")]
pub unsafe fn matmul_sdot(dtype: DType, packed: &[u8], a: &[Q8Row<'_>], sink: &mut impl Sink) {
    // SAFETY: the caller's contract.
    unsafe { by_format::<Sdot>(dtype, packed, a, sink) }
}

/// See [`super::matmul`], with widening multiplies (the same bits).
///
/// # Safety
/// NEON; the lengths as `super::matmul` checks them.
#[target_feature(enable = "neon")]
pub unsafe fn matmul(dtype: DType, packed: &[u8], a: &[Q8Row<'_>], sink: &mut impl Sink) {
    // SAFETY: the caller's contract.
    unsafe { by_format::<Widening>(dtype, packed, a, sink) }
}

/// One copy of the body per format and instruction.
///
/// # Safety
/// As [`matmul`], compiled into an entry point for `P`.
#[inline(always)]
unsafe fn by_format<P: Products>(
    dtype: DType,
    packed: &[u8],
    a: &[Q8Row<'_>],
    sink: &mut impl Sink,
) {
    // SAFETY: the caller's contract.
    unsafe {
        match dtype {
            DType::Q4_1 => body::<Q4_1, P>(packed, a, sink),
            DType::Q5_0 => body::<Q5_0, P>(packed, a, sink),
            DType::Q8_0 => body::<Q8_0, P>(packed, a, sink),
            _ => body::<Q4_0, P>(packed, a, sink),
        }
    }
}

/// [`matmul`] for format `F`, the byte products by `P`.
///
/// # Safety
/// As [`matmul`]; compiled into an entry point for `P`.
#[inline(always)]
unsafe fn body<const F: u8, P: Products>(packed: &[u8], a: &[Q8Row<'_>], sink: &mut impl Sink) {
    let dtype = form::dtype(F);
    let nb = a[0].d.len();
    let bs = ROWS * block(dtype).0;
    let h = head(dtype);
    let (q4_0, q4_1, q5_0, q8_0) = (F == Q4_0, F == Q4_1, F == Q5_0, F == Q8_0);
    let groups = packed.len() / (nb * bs);
    // SAFETY (whole body): group g's bytes are g·nb·bs .. (g + 1)·nb·bs
    // of `packed`, and every activation read is inside block b < nb of
    // its row.
    unsafe {
        let m4 = vdupq_n_u8(0x0f);
        for g in 0..groups {
            let base = packed.as_ptr().add(g * nb * bs);
            for (i, ai) in a.iter().enumerate() {
                let mut acc = [vdupq_n_f32(0.0); 2];
                for b in 0..nb {
                    let p = base.add(b * bs);
                    let q = ai.qs.as_ptr().add(b * QK) as *const i32;
                    let four =
                        |l: usize| vreinterpretq_s8_s32(vdupq_n_s32(q.add(l).read_unaligned()));
                    let mut sums = [vdupq_n_s32(0); 2];
                    if q8_0 {
                        for k in 0..8 {
                            let c = p.add(h + 32 * k) as *const i8;
                            let ql = four(k);
                            sums[0] = P::add4(sums[0], vld1q_s8(c), ql);
                            sums[1] = P::add4(sums[1], vld1q_s8(c.add(16)), ql);
                        }
                    } else {
                        let qh = [vld1q_u8(p.add(16)), vld1q_u8(p.add(32))];
                        for k in 0..4 {
                            let (qlo, qhi) = (four(k), four(4 + k));
                            for (half, sum) in sums.iter_mut().enumerate() {
                                let c = vld1q_u8(p.add(h + 32 * k + 16 * half));
                                let (mut lo, mut hi) = (vandq_u8(c, m4), vshrq_n_u8::<4>(c));
                                if q5_0 {
                                    lo = vorrq_u8(lo, sixteen(qh[half], 4 - k as i8));
                                    hi = vorrq_u8(hi, sixteen(qh[half], -(k as i8)));
                                }
                                *sum = P::add4(*sum, vreinterpretq_s8_u8(lo), qlo);
                                *sum = P::add4(*sum, vreinterpretq_s8_u8(hi), qhi);
                            }
                        }
                        if q4_0 || q5_0 {
                            let off = if q4_0 { 8 } else { 16 } * *ai.isum.get_unchecked(b);
                            sums = [
                                vsubq_s32(sums[0], vdupq_n_s32(off)),
                                vsubq_s32(sums[1], vdupq_n_s32(off)),
                            ];
                        }
                    }
                    let d = halves(p);
                    let da = *ai.d.get_unchecked(b);
                    let m = if q4_1 { halves(p.add(16)) } else { d };
                    let s = vdupq_n_f32(*ai.s.get_unchecked(b));
                    for half in 0..2 {
                        let dd = vmulq_n_f32(d[half], da);
                        acc[half] = vfmaq_f32(acc[half], dd, vcvtq_f32_s32(sums[half]));
                        if q4_1 {
                            acc[half] = vfmaq_f32(acc[half], m[half], s);
                        }
                    }
                }
                let mut lanes = [0f32; ROWS];
                vst1q_f32(lanes.as_mut_ptr(), acc[0]);
                vst1q_f32(lanes.as_mut_ptr().add(4), acc[1]);
                sink.put(g * ROWS, i, lanes);
            }
        }
    }
}
