//! NEON body of the regrouped Q4_0/Q4_1/Q5_0/Q8_0 product (the plain twin
//! and the layout are in `x8.rs`), with the Armv8.2 dot-product
//! instruction `sdot` where the CPU has it and plain NEON widening
//! multiplies where it does not.
//!
//! A 32-byte chunk of a group holds four codes of each of the eight rows:
//! two 16-byte registers, rows 0–3 and rows 4–7, each row's four codes in
//! one 32-bit lane. `sdot` multiplies the sixteen bytes of a register by
//! the token's four codes broadcast to every lane and adds each lane's four
//! products into its 32-bit sum: lane `j` is row `j`'s partial sum over
//! those four elements, exactly the integer the AVX2 kernel's `maddubs` +
//! `madd` leaves in its lane. Without `sdot`, `smull` widens the byte
//! products to 16 bits and two pairwise adds (`saddlp`, `addp`) gather each
//! lane's four. The integers are the same either way, and the floats are
//! then made in the plain twin's order (one fused multiply-add per partial
//! sum and block, added up in ggml's order), so both kernels give the
//! plain twin's bits.
//!
//! `sdot` is written as inline assembly: Rust's `vdotq_s32` intrinsic is
//! not yet stable. The function that holds it is compiled with the
//! `dotprod` feature and only called after the CPU was asked.

use std::arch::aarch64::*;
use std::arch::asm;

use super::{QK, ROWS, block, chunks, head};
use crate::dtype::DType;
use crate::quant::act::Q8Row;
use crate::quant::x8::form::{self, Q4_0, Q4_1, Q5_0, Q8_0};

// ANCHOR: neon_products
/// How a register of sixteen codes (four rows' four) meets four token
/// codes broadcast to every lane: each 32-bit lane gets its four products
/// added to it.
pub(in crate::quant) trait Products {
    /// `acc[j] + Σ_e c[4j + e] · q[4j + e]` for each lane `j`.
    ///
    /// # Safety
    /// Compiled into an entry point with this implementation's features.
    unsafe fn add4(acc: int32x4_t, c: int8x16_t, q: int8x16_t) -> int32x4_t;
}

/// The Armv8.2 dot-product instruction.
pub(in crate::quant) struct Sdot;

impl Products for Sdot {
    #[inline(always)]
    unsafe fn add4(acc: int32x4_t, c: int8x16_t, q: int8x16_t) -> int32x4_t {
        let mut acc = acc;
        // SAFETY: `sdot` reads and writes registers only; the caller's
        // entry point has the `dotprod` feature, checked at run time.
        unsafe {
            asm!(
                // The directive lets the assembler take `sdot` where this
                // body was not inlined into the `dotprod` entry point.
                ".arch_extension dotprod",
                "sdot {acc:v}.4s, {c:v}.16b, {q:v}.16b",
                acc = inout(vreg) acc,
                c = in(vreg) c,
                q = in(vreg) q,
                options(pure, nomem, nostack, preserves_flags),
            );
        }
        acc
    }
}

/// Widening multiplies and pairwise adds, for CPUs without `sdot`.
pub(in crate::quant) struct Widening;

impl Products for Widening {
    #[inline(always)]
    unsafe fn add4(acc: int32x4_t, c: int8x16_t, q: int8x16_t) -> int32x4_t {
        // SAFETY: register arithmetic; NEON is the caller's feature.
        unsafe {
            // Rows 0 and 1 (eight 16-bit products), then rows 2 and 3.
            let lo = vmull_s8(vget_low_s8(c), vget_low_s8(q));
            let hi = vmull_high_s8(c, q);
            // Pairs of products, then pairs of pairs: one sum per row.
            let four = vpaddq_s32(vpaddlq_s16(lo), vpaddlq_s16(hi));
            vaddq_s32(acc, four)
        }
    }
}
// ANCHOR_END: neon_products

/// True when the CPU has `sdot` (the `dotprod` feature). Asked once per
/// process.
pub(in crate::quant) fn has_sdot() -> bool {
    static SDOT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SDOT.get_or_init(|| std::arch::is_aarch64_feature_detected!("dotprod"))
}

/// See [`super::matmul`], with `sdot`.
///
/// # Safety
/// NEON and `dotprod` ([`has_sdot`]); the lengths as `super::matmul`
/// checks them.
#[target_feature(enable = "neon,dotprod")]
pub unsafe fn matmul_sdot(dtype: DType, packed: &[u8], a: &[Q8Row<'_>], out: &mut [f32]) {
    // SAFETY: the caller's contract.
    unsafe { by_format::<Sdot>(dtype, packed, a, out) }
}

/// See [`super::matmul`], with widening multiplies (the same bits as
/// [`matmul_sdot`]).
///
/// # Safety
/// NEON; the lengths as `super::matmul` checks them.
#[target_feature(enable = "neon")]
pub unsafe fn matmul(dtype: DType, packed: &[u8], a: &[Q8Row<'_>], out: &mut [f32]) {
    // SAFETY: the caller's contract.
    unsafe { by_format::<Widening>(dtype, packed, a, out) }
}

/// One copy of the body per format and instruction.
///
/// # Safety
/// As [`matmul`], compiled into an entry point for `P`.
#[inline(always)]
unsafe fn by_format<P: Products>(dtype: DType, packed: &[u8], a: &[Q8Row<'_>], out: &mut [f32]) {
    // SAFETY: the caller's contract.
    unsafe {
        match dtype {
            DType::Q4_1 => body::<Q4_1, P>(packed, a, out),
            DType::Q5_0 => body::<Q5_0, P>(packed, a, out),
            DType::Q8_0 => body::<Q8_0, P>(packed, a, out),
            _ => body::<Q4_0, P>(packed, a, out),
        }
    }
}

/// Eight f16 values at `p` as two vectors of four f32 (`fcvtl`, which
/// every Armv8 NEON unit has).
///
/// # Safety
/// `p` is readable for 16 bytes; NEON.
#[inline(always)]
pub(in crate::quant) unsafe fn halves(p: *const u8) -> [float32x4_t; 2] {
    // SAFETY: the caller's contract; `fcvtl`/`fcvtl2` touch registers only.
    unsafe {
        let h = vld1q_u8(p);
        let (lo, hi): (float32x4_t, float32x4_t);
        asm!(
            "fcvtl {lo:v}.4s, {h:v}.4h",
            "fcvtl2 {hi:v}.4s, {h:v}.8h",
            h = in(vreg) h,
            lo = out(vreg) lo,
            hi = out(vreg) hi,
            options(pure, nomem, nostack, preserves_flags),
        );
        [lo, hi]
    }
}

/// Ask for the cache line at `p` (never faults: a prefetch only).
#[inline(always)]
fn prefetch(p: *const u8) {
    // SAFETY: `prfm` is a hint; it does not fault on any address.
    unsafe {
        asm!("prfm pldl1keep, [{p}]", p = in(reg) p, options(nostack, preserves_flags, readonly))
    }
}

/// Q5_0's fifth bits of chunk `k`, as 16 (or 0) under its low nibbles'
/// codes (`shift = 4 - k`) or its high ones' (`shift = -k`), from the
/// group's fifth bits `qh` (see `x8.rs`).
///
/// # Safety
/// NEON.
#[inline(always)]
pub(in crate::quant) unsafe fn sixteen(qh: uint8x16_t, shift: i8) -> uint8x16_t {
    // SAFETY: register arithmetic.
    unsafe { vandq_u8(vshlq_u8(qh, vdupq_n_s8(shift)), vdupq_n_u8(16)) }
}

/// [`matmul`] for format `F`, the byte products by `P`.
///
/// # Safety
/// As [`matmul`]; compiled into an entry point for `P`.
#[inline(always)]
unsafe fn body<const F: u8, P: Products>(packed: &[u8], a: &[Q8Row<'_>], out: &mut [f32]) {
    let dtype = form::dtype(F);
    let t = a.len();
    let nb = a[0].d.len();
    let bs = ROWS * block(dtype).0;
    let (h, q4_1, q5_0, q8_0) = (head(dtype), F == Q4_1, F == Q5_0, F == Q8_0);
    let nk = chunks(dtype);
    let groups = out.len() / (t * ROWS);
    // SAFETY (whole body): group g's bytes are g·nb·bs .. (g + 1)·nb·bs
    // of `packed`, every activation read is inside block b < nb of its
    // row, every store inside `out`; prefetches never fault.
    unsafe {
        let m4 = vdupq_n_u8(0x0f);
        let eight = vdupq_n_s8(8);
        for g in 0..groups {
            let base = packed.as_ptr().add(g * nb * bs);
            for (i, ai) in a.iter().enumerate() {
                // acc[l][0] rows 0–3, acc[l][1] rows 4–7.
                let mut acc = [[vdupq_n_f32(0.0); 2]; 8];
                let mut mins = [vdupq_n_f32(0.0); 2];
                for b in 0..nb {
                    let p = base.add(b * bs);
                    if i == 0 {
                        let ahead = p.wrapping_add(nb * bs);
                        for line in (0..bs).step_by(64) {
                            prefetch(ahead.wrapping_add(line));
                        }
                    }
                    let d = halves(p);
                    let da = *ai.d.get_unchecked(b);
                    let dd = [vmulq_n_f32(d[0], da), vmulq_n_f32(d[1], da)];
                    let q = ai.qs.as_ptr().add(b * QK) as *const i32;
                    // The token's codes 4l..4l + 4, in every lane.
                    let four =
                        |l: usize| vreinterpretq_s8_s32(vdupq_n_s32(q.add(l).read_unaligned()));
                    // One partial sum (codes of rows 0–3 and 4–7) into acc[l].
                    let mut add = |l: usize, c: [int8x16_t; 2]| {
                        let ql = four(l);
                        for half in 0..2 {
                            let sums = P::add4(vdupq_n_s32(0), c[half], ql);
                            acc[l][half] = vfmaq_f32(acc[l][half], dd[half], vcvtq_f32_s32(sums));
                        }
                    };
                    if q8_0 {
                        for k in 0..nk {
                            let c = p.add(h + 32 * k) as *const i8;
                            add(k, [vld1q_s8(c), vld1q_s8(c.add(16))]);
                        }
                    } else {
                        let qh = [vld1q_u8(p.add(16)), vld1q_u8(p.add(32))];
                        for k in 0..nk {
                            let c = [
                                vld1q_u8(p.add(h + 32 * k)),
                                vld1q_u8(p.add(h + 32 * k + 16)),
                            ];
                            let mut lo = [vandq_u8(c[0], m4), vandq_u8(c[1], m4)];
                            let mut hi = [vshrq_n_u8::<4>(c[0]), vshrq_n_u8::<4>(c[1])];
                            if q5_0 {
                                // (nibble | 16·bit) − 16.
                                for half in 0..2 {
                                    let up = |n, s| {
                                        vsubq_u8(vorrq_u8(n, sixteen(qh[half], s)), vdupq_n_u8(16))
                                    };
                                    lo[half] = up(lo[half], 4 - k as i8);
                                    hi[half] = up(hi[half], -(k as i8));
                                }
                            }
                            let signed = |v: [uint8x16_t; 2]| {
                                let s = [vreinterpretq_s8_u8(v[0]), vreinterpretq_s8_u8(v[1])];
                                if q4_1 || q5_0 {
                                    s
                                } else {
                                    [vsubq_s8(s[0], eight), vsubq_s8(s[1], eight)]
                                }
                            };
                            add(k, signed(lo));
                            add(4 + k, signed(hi));
                        }
                    }
                    if q4_1 {
                        let m = halves(p.add(16));
                        let s = vdupq_n_f32(*ai.s.get_unchecked(b));
                        mins = [vfmaq_f32(mins[0], m[0], s), vfmaq_f32(mins[1], m[1], s)];
                    }
                }
                let r0 = g * ROWS;
                for half in 0..2 {
                    let x = |l: usize| acc[l][half];
                    // ggml's horizontal sum of its eight lanes, here per row.
                    let sum = vaddq_f32(
                        vaddq_f32(vaddq_f32(x(0), x(4)), vaddq_f32(x(2), x(6))),
                        vaddq_f32(vaddq_f32(x(1), x(5)), vaddq_f32(x(3), x(7))),
                    );
                    let v = vaddq_f32(sum, mins[half]);
                    let mut lanes = [0f32; 4];
                    vst1q_f32(lanes.as_mut_ptr(), v);
                    for (j, x) in lanes.into_iter().enumerate() {
                        *out.get_unchecked_mut((r0 + 4 * half + j) * t + i) = x;
                    }
                }
            }
        }
    }
}
