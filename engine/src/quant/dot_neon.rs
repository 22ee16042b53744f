//! NEON bodies of the file-layout dot products (`dot.rs`): one
//! quantized weight row with one activation row, for Q8_0, Q4_0, Q4_1,
//! Q5_0 (blocks of 32) and Q4_K, Q6_K (blocks of 256). Each block's codes
//! are unpacked with vector shifts and masks and multiplied by the
//! activation codes sixteen bytes at a time (`sdot`, or widening
//! multiplies without it: `x8_neon.rs`), the four lane sums added into
//! one integer. The integers are the plain twins' and the floats are then
//! made by the twins' own expressions, so every body gives its twin's
//! bits.

use std::arch::aarch64::*;

use crate::dtype::DType;
use crate::quant::act::Q8Row;
use crate::quant::q4_k::{self, QK_K};
use crate::quant::x8::neon::{Products, Sdot, Widening};
use crate::quant::{QK, f16_at, q5_0, q6_k};

/// See [`super::dot`], with `sdot`.
///
/// # Safety
/// NEON and `dotprod`; the lengths as `super::dot` checks them.
#[target_feature(enable = "neon,dotprod")]
pub unsafe fn dot_sdot(dtype: DType, w: &[u8], a: Q8Row<'_>) -> f32 {
    // SAFETY: the caller's contract.
    unsafe { by_format::<Sdot>(dtype, w, a) }
}

/// See [`super::dot`], with widening multiplies (the same bits).
///
/// # Safety
/// NEON; the lengths as `super::dot` checks them.
#[target_feature(enable = "neon")]
pub unsafe fn dot(dtype: DType, w: &[u8], a: Q8Row<'_>) -> f32 {
    // SAFETY: the caller's contract.
    unsafe { by_format::<Widening>(dtype, w, a) }
}

/// One copy of each format's body per instruction.
///
/// # Safety
/// As [`dot`], compiled into an entry point for `P`.
#[inline(always)]
unsafe fn by_format<P: Products>(dtype: DType, w: &[u8], a: Q8Row<'_>) -> f32 {
    // SAFETY: the caller's contract.
    unsafe {
        match dtype {
            DType::Q8_0 => q8_0::<P>(w, a),
            DType::Q4_0 => q4_0::<P>(w, a, false),
            DType::Q4_1 => q4_0::<P>(w, a, true),
            DType::Q5_0 => q5_0::<P>(w, a),
            DType::Q4_K => q4_k::<P>(w, a),
            DType::Q6_K => q6_k::<P>(w, a),
            _ => unreachable!("quant::dot: plain dtype {dtype}"),
        }
    }
}

/// `Σ c·q` over 32 codes: `c0`, `c1` against the activation codes at `q`.
///
/// # Safety
/// `q` readable for 32 bytes; compiled into an entry point for `P`.
#[inline(always)]
unsafe fn sum32<P: Products>(c0: int8x16_t, c1: int8x16_t, q: *const i8) -> i32 {
    // SAFETY: the caller's contract.
    unsafe {
        let s = P::add4(vdupq_n_s32(0), c0, vld1q_s8(q));
        vaddvq_s32(P::add4(s, c1, vld1q_s8(q.add(16))))
    }
}

/// `Σ c·q` over 16 codes.
///
/// # Safety
/// `q` readable for 16 bytes; compiled into an entry point for `P`.
#[inline(always)]
unsafe fn sum16<P: Products>(c: int8x16_t, q: *const i8) -> i32 {
    // SAFETY: the caller's contract.
    unsafe { vaddvq_s32(P::add4(vdupq_n_s32(0), c, vld1q_s8(q))) }
}

/// Low and high nibbles of the 16 bytes at `p`, as codes.
///
/// # Safety
/// `p` readable for 16 bytes; NEON.
#[inline(always)]
unsafe fn nibbles(p: *const u8) -> (int8x16_t, int8x16_t) {
    // SAFETY: the caller's contract.
    unsafe {
        let c = vld1q_u8(p);
        let lo = vandq_u8(c, vdupq_n_u8(0x0f));
        (
            vreinterpretq_s8_u8(lo),
            vreinterpretq_s8_u8(vshrq_n_u8::<4>(c)),
        )
    }
}

/// Q8_0: per block `d_w·d_a·Σ q_w·q_a`.
///
/// # Safety
/// As [`dot`].
#[inline(always)]
unsafe fn q8_0<P: Products>(w: &[u8], a: Q8Row<'_>) -> f32 {
    let mut acc = 0f32;
    for (b, wb) in w.chunks_exact(34).enumerate() {
        let d = f16_at(wb, 0);
        // SAFETY: 32 codes after the scale; block b's activations exist.
        let sum = unsafe {
            let c = wb.as_ptr().add(2) as *const i8;
            sum32::<P>(vld1q_s8(c), vld1q_s8(c.add(16)), a.qs.as_ptr().add(b * QK))
        };
        acc += d * a.d[b] * sum as f32;
    }
    acc
}

/// Q4_0 (`d_w·d_a·(Σ code·q − 8·Σq)`) and Q4_1 (`d_w·d_a·Σ code·q +
/// m_w·s_a`): low nibbles are elements 0–15, high ones 16–31.
///
/// # Safety
/// As [`dot`].
#[inline(always)]
unsafe fn q4_0<P: Products>(w: &[u8], a: Q8Row<'_>, q4_1: bool) -> f32 {
    let (bs, at) = if q4_1 { (20, 4) } else { (18, 2) };
    let mut acc = 0f32;
    for (b, wb) in w.chunks_exact(bs).enumerate() {
        let d = f16_at(wb, 0);
        // SAFETY: 16 code bytes at `at`; block b's activations exist.
        let sum = unsafe {
            let (lo, hi) = nibbles(wb.as_ptr().add(at));
            sum32::<P>(lo, hi, a.qs.as_ptr().add(b * QK))
        };
        if q4_1 {
            acc += d * a.d[b] * sum as f32 + f16_at(wb, 2) * a.s[b];
        } else {
            acc += d * a.d[b] * (sum - 8 * a.isum[b]) as f32;
        }
    }
    acc
}

/// Sixteen fifth bits (bits of `bits`, element order) as 16 (or 0) per byte.
///
/// # Safety
/// NEON.
#[inline(always)]
unsafe fn fifth_bits(bits: u16) -> uint8x16_t {
    // SAFETY: register arithmetic.
    unsafe {
        let [b0, b1] = bits.to_le_bytes();
        let spread = vcombine_u8(vdup_n_u8(b0), vdup_n_u8(b1));
        let which = vreinterpretq_u8_u64(vdupq_n_u64(0x8040_2010_0804_0201));
        vandq_u8(vtstq_u8(spread, which), vdupq_n_u8(16))
    }
}

/// Q5_0: per block `d_w·d_a·(Σ code·q − 16·Σq)`, the codes' fifth bits from
/// the block's 32-bit mask.
///
/// # Safety
/// As [`dot`].
#[inline(always)]
unsafe fn q5_0<P: Products>(w: &[u8], a: Q8Row<'_>) -> f32 {
    let mut acc = 0f32;
    for (b, wb) in w.chunks_exact(q5_0::BLOCK_BYTES).enumerate() {
        let d = f16_at(wb, 0);
        let qh = u32::from_le_bytes([wb[2], wb[3], wb[4], wb[5]]);
        // SAFETY: 16 code bytes from 6; block b's activations exist.
        let sum = unsafe {
            let (lo, hi) = nibbles(wb.as_ptr().add(6));
            let lo = vorrq_s8(lo, vreinterpretq_s8_u8(fifth_bits(qh as u16)));
            let hi = vorrq_s8(hi, vreinterpretq_s8_u8(fifth_bits((qh >> 16) as u16)));
            sum32::<P>(lo, hi, a.qs.as_ptr().add(b * QK))
        };
        acc += d * a.d[b] * (sum - 16 * a.isum[b]) as f32;
    }
    acc
}

/// Q4_K: per super-block `d_a·d·Σ_j sc_j·Σ code·q − d_a·dmin·Σ_j m_j·Σq`
/// (sub-block `j`'s codes: the low nibbles of run `j / 2` for even `j`,
/// the high ones for odd).
///
/// # Safety
/// As [`dot`].
#[inline(always)]
unsafe fn q4_k<P: Products>(w: &[u8], a: Q8Row<'_>) -> f32 {
    let k = a.k;
    let mut acc = 0f32;
    for (s, wb) in w.chunks_exact(q4_k::BLOCK_BYTES).enumerate() {
        let (d, dmin) = (f16_at(wb, 0), f16_at(wb, 2));
        let (mut sumi, mut summ) = (0i32, 0i32);
        for r in 0..4 {
            // SAFETY: run r's 32 code bytes lie at 16 + 32r; super-block
            // s's 256 activation codes exist.
            let (lo, hi) = unsafe {
                let run = wb.as_ptr().add(16 + 32 * r);
                let q = k.qs.as_ptr().add(s * QK_K + 64 * r);
                let (l0, h0) = nibbles(run);
                let (l1, h1) = nibbles(run.add(16));
                (sum32::<P>(l0, l1, q), sum32::<P>(h0, h1, q.add(32)))
            };
            for (j, sum) in [(2 * r, lo), (2 * r + 1, hi)] {
                let (sc, m) = q4_k::scale_min(j, &wb[4..16]);
                sumi += i32::from(sc) * sum;
                let bsum =
                    i32::from(k.bsums[16 * s + 2 * j]) + i32::from(k.bsums[16 * s + 2 * j + 1]);
                summ += i32::from(m) * bsum;
            }
        }
        acc += k.d[s] * d * sumi as f32 - k.d[s] * dmin * summ as f32;
    }
    acc
}

/// Q6_K: per super-block `d_a·d·Σ_g sc_g·(Σ code·q − 32·Σq)` over its
/// sixteen groups of 16, the codes put together from their low four bits
/// (`ql`) and high two (`qh`) as `q6_k::codes` does.
///
/// # Safety
/// As [`dot`].
#[inline(always)]
unsafe fn q6_k<P: Products>(w: &[u8], a: Q8Row<'_>) -> f32 {
    let k = a.k;
    let mut acc = 0f32;
    for (s, wb) in w.chunks_exact(q6_k::BLOCK_BYTES).enumerate() {
        let d = f16_at(wb, 208);
        let mut sumi = 0i32;
        for h in 0..2 {
            for half in 0..2 {
                // SAFETY: ql (64 bytes at 64h) and qh (32 at 128 + 32h) are
                // inside the block; super-block s's 256 codes exist.
                let parts = unsafe {
                    let i = 16 * half;
                    let ql0 = vld1q_u8(wb.as_ptr().add(64 * h + i));
                    let ql1 = vld1q_u8(wb.as_ptr().add(64 * h + 32 + i));
                    let qh = vld1q_u8(wb.as_ptr().add(128 + 32 * h + i));
                    let (m4, m3) = (vdupq_n_u8(15), vdupq_n_u8(3));
                    let top =
                        |shift: i8| vshlq_n_u8::<4>(vandq_u8(vshlq_u8(qh, vdupq_n_s8(-shift)), m3));
                    let codes = [
                        vorrq_u8(vandq_u8(ql0, m4), top(0)),
                        vorrq_u8(vandq_u8(ql1, m4), top(2)),
                        vorrq_u8(vshrq_n_u8::<4>(ql0), top(4)),
                        vorrq_u8(vshrq_n_u8::<4>(ql1), top(6)),
                    ];
                    // Element 128h + 32n + i.. of the super-block: group
                    // 8h + 2n + half.
                    let q = k.qs.as_ptr().add(s * QK_K + 128 * h + i);
                    let mut parts = [0i32; 4];
                    for (n, (part, c)) in parts.iter_mut().zip(codes).enumerate() {
                        *part = sum16::<P>(vreinterpretq_s8_u8(c), q.add(32 * n));
                    }
                    parts
                };
                for (n, part) in parts.into_iter().enumerate() {
                    let g = 8 * h + 2 * n + half;
                    let sc = i32::from(wb[192 + g] as i8);
                    sumi += sc * (part - 32 * i32::from(k.bsums[16 * s + g]));
                }
            }
        }
        acc += k.d[s] * d * sumi as f32;
    }
    acc
}
