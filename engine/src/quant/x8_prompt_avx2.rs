//! AVX2 body of the many-token regrouped product (the order and the plain
//! twin are in `x8_prompt.rs`), and its AVX-512 VNNI form. Per group of
//! eight rows and tile of up to four tokens, block by block: four 32-byte
//! loads hold the eight rows' codes, split once into low and high
//! nibbles; each token adds the eight `maddubs` products with its
//! broadcast codes into one 16-bit sum per row pair, widens it once
//! (`madd`), and scales it once. Q8_0's eight chunks of signed codes are
//! widened per chunk instead (two of its products can fill a 16-bit
//! lane). With VNNI each of those steps is one `vpdpbusd` into 32-bit
//! lanes, half the instructions for the same integers (`dot4.rs`).

use std::arch::x86_64::*;

use super::{QK, ROWS, Sink, block, head};
use crate::dtype::DType;
use crate::quant::act::Q8Row;
use crate::quant::dot4::{Avx2, Products, Vnni};
use crate::quant::x8::avx2::{fifth_bit_sixteen, prefetch_next_group};
use crate::quant::x8::form::{self, Q4_0, Q4_1, Q5_0, Q8_0};

/// Tokens sharing each unpacked block.
const TILE: usize = 4;

// ANCHOR: prompt_avx2
/// See [`super::matmul`].
///
/// # Safety
/// AVX2, FMA and F16C; the lengths as `super::matmul` or
/// `super::matmul_into` checks them.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn matmul(dtype: DType, packed: &[u8], a: &[Q8Row<'_>], sink: &mut impl Sink) {
    // SAFETY: the caller's contract.
    unsafe { tiles::<Avx2>(dtype, packed, a, sink) }
}

/// [`matmul`] with AVX-512 VNNI's `vpdpbusd` for the byte products (the
/// same bits).
///
/// # Safety
/// As [`matmul`], and AVX-512 VNNI and VL.
#[target_feature(enable = "avx2,fma,f16c,avx512vl,avx512vnni")]
pub unsafe fn matmul_vnni(dtype: DType, packed: &[u8], a: &[Q8Row<'_>], sink: &mut impl Sink) {
    // SAFETY: the caller's contract.
    unsafe { tiles::<Vnni>(dtype, packed, a, sink) }
}

/// Every tile of up to four tokens, by `P`.
///
/// # Safety
/// As [`matmul`]; compiled into an entry point for `P`.
#[inline(always)]
unsafe fn tiles<P: Products>(dtype: DType, packed: &[u8], a: &[Q8Row<'_>], sink: &mut impl Sink) {
    // SAFETY: the caller's contract.
    unsafe {
        let mut i = 0;
        while i < a.len() {
            let n = TILE.min(a.len() - i);
            match n {
                4 => tile_of::<4, P>(dtype, packed, a, i, sink),
                3 => tile_of::<3, P>(dtype, packed, a, i, sink),
                2 => tile_of::<2, P>(dtype, packed, a, i, sink),
                _ => tile_of::<1, P>(dtype, packed, a, i, sink),
            }
            i += n;
        }
    }
}

/// [`tile`] of `N` tokens for `dtype`'s format (one copy of the tile per
/// format and token count, so each has straight-line code).
///
/// # Safety
/// As [`tile`].
#[inline(always)]
unsafe fn tile_of<const N: usize, P: Products>(
    dtype: DType,
    packed: &[u8],
    a: &[Q8Row<'_>],
    i0: usize,
    sink: &mut impl Sink,
) {
    // SAFETY: the caller's contract.
    unsafe {
        match dtype {
            DType::Q4_1 => tile::<Q4_1, N, P>(packed, a, i0, sink),
            DType::Q5_0 => tile::<Q5_0, N, P>(packed, a, i0, sink),
            DType::Q8_0 => tile::<Q8_0, N, P>(packed, a, i0, sink),
            _ => tile::<Q4_0, N, P>(packed, a, i0, sink),
        }
    }
}

/// Tokens `i0..i0 + N` against every group of format `F`, the products
/// handed to `sink`.
///
/// # Safety
/// As [`matmul`], and `i0 + N <= a.len()`; compiled into an entry point
/// for `P`.
#[inline(always)]
unsafe fn tile<const F: u8, const N: usize, P: Products>(
    packed: &[u8],
    a: &[Q8Row<'_>],
    i0: usize,
    sink: &mut impl Sink,
) {
    let dtype = form::dtype(F);
    let nb = a[0].d.len();
    let bs = ROWS * block(dtype).0;
    let h = head(dtype);
    let groups = packed.len() / (nb * bs).max(1);
    let toks: [&Q8Row<'_>; N] = std::array::from_fn(|k| &a[i0 + k]);
    // SAFETY (whole body): group g's bytes are g·nb·bs .. (g + 1)·nb·bs
    // of `packed`, every activation read is inside block b < nb of its
    // row, every store inside `lanes`; prefetches never fault.
    unsafe {
        for g in 0..groups {
            let base = packed.as_ptr().add(g * nb * bs);
            let mut acc = [_mm256_setzero_ps(); N];
            for b in 0..nb {
                let p = base.add(b * bs);
                if i0 == 0 {
                    // The first tile streams the weights from memory.
                    prefetch_next_group::<_MM_HINT_T0>(p, nb * bs, bs);
                }
                let q: [*const i32; N] =
                    std::array::from_fn(|k| toks[k].qs.as_ptr().add(b * QK) as *const i32);
                // Each token's eight 32-bit row sums for this block.
                let isums = match F {
                    Q8_0 => sums_q8_0::<N, P>(p.add(h), q),
                    Q5_0 => sums_q5_0::<N, P>(p.add(h), p.add(16), q),
                    _ => sums_q4::<N, P>(p.add(h), q),
                };
                let d = _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i));
                let m = if F == Q4_1 {
                    _mm256_cvtph_ps(_mm_loadu_si128(p.add(16) as *const __m128i))
                } else {
                    _mm256_setzero_ps()
                };
                for ((acc, s), ai) in acc.iter_mut().zip(isums).zip(toks) {
                    let mut isum = if F == Q4_0 || F == Q4_1 {
                        P::total(s)
                    } else {
                        s
                    };
                    if F == Q4_0 || F == Q5_0 {
                        let offset = if F == Q5_0 { 16 } else { 8 };
                        let off = _mm256_set1_epi32(offset * *ai.isum.get_unchecked(b));
                        isum = _mm256_sub_epi32(isum, off);
                    }
                    let dd = _mm256_mul_ps(d, _mm256_set1_ps(*ai.d.get_unchecked(b)));
                    *acc = _mm256_fmadd_ps(dd, _mm256_cvtepi32_ps(isum), *acc);
                    if F == Q4_1 {
                        *acc = _mm256_fmadd_ps(m, _mm256_set1_ps(*ai.s.get_unchecked(b)), *acc);
                    }
                }
            }
            for (k, v) in acc.into_iter().enumerate() {
                let mut lanes = [0f32; ROWS];
                _mm256_storeu_ps(lanes.as_mut_ptr(), v);
                sink.put(g * ROWS, i0 + k, lanes);
            }
        }
    }
}

/// One block of eight 4-bit rows (`codes`: four 32-byte chunks) against
/// each token's 32 codes (`q`): the eight products of each token added
/// as short sums ([`Products::add_short`]: 16-bit lanes on AVX2, one row
/// pair per 32-bit lane), made 32-bit by the caller.
///
/// # Safety
/// `codes` holds 128 bytes and each `q[k]` 32 codes; compiled into an
/// entry point for `P`.
#[inline(always)]
unsafe fn sums_q4<const N: usize, P: Products>(
    codes: *const u8,
    q: [*const i32; N],
) -> [__m256i; N] {
    // SAFETY: the caller's contract.
    unsafe {
        let m4 = _mm256_set1_epi8(0x0f);
        let mut sums = [_mm256_setzero_si256(); N];
        for k in 0..4 {
            let c = _mm256_loadu_si256(codes.add(32 * k) as *const __m256i);
            let lo = _mm256_and_si256(c, m4);
            let hi = _mm256_and_si256(_mm256_srli_epi16(c, 4), m4);
            for (s, q) in sums.iter_mut().zip(q) {
                let ql = _mm256_set1_epi32(q.add(k).read_unaligned());
                let qh = _mm256_set1_epi32(q.add(4 + k).read_unaligned());
                *s = P::add_short(*s, lo, ql);
                *s = P::add_short(*s, hi, qh);
            }
        }
        sums
    }
}

/// One block of eight Q5_0 rows (`codes`: four 32-byte chunks, `qh`: their
/// fifth bits, 32 bytes) against each token's 32 codes (`q`): the codes
/// taken as 0..31 (nibble plus 16 where the fifth bit is set), the low
/// nibbles' four products and the high nibbles' four added as short sums
/// apart (four pairs of at most `31 · 127` fit a 16-bit lane, eight do
/// not), then as 32-bit sums.
///
/// # Safety
/// `codes` holds 128 bytes, `qh` 32 and each `q[k]` 32 codes; compiled
/// into an entry point for `P`.
#[inline(always)]
unsafe fn sums_q5_0<const N: usize, P: Products>(
    codes: *const u8,
    qh: *const u8,
    q: [*const i32; N],
) -> [__m256i; N] {
    // SAFETY: the caller's contract.
    unsafe {
        let m4 = _mm256_set1_epi8(0x0f);
        let bits = _mm256_loadu_si256(qh as *const __m256i);
        let mut low = [_mm256_setzero_si256(); N];
        let mut high = [_mm256_setzero_si256(); N];
        for k in 0..4 {
            let c = _mm256_loadu_si256(codes.add(32 * k) as *const __m256i);
            let fifth = |hi| fifth_bit_sixteen(bits, k, hi);
            let lo = _mm256_or_si256(_mm256_and_si256(c, m4), fifth(false));
            let hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(c, 4), m4), fifth(true));
            for ((l, h), q) in low.iter_mut().zip(&mut high).zip(q) {
                let ql = _mm256_set1_epi32(q.add(k).read_unaligned());
                let qh = _mm256_set1_epi32(q.add(4 + k).read_unaligned());
                *l = P::add_short(*l, lo, ql);
                *h = P::add_short(*h, hi, qh);
            }
        }
        std::array::from_fn(|i| _mm256_add_epi32(P::total(low[i]), P::total(high[i])))
    }
}

/// One block of eight Q8_0 rows (`codes`: eight 32-byte chunks) against
/// each token's 32 codes (`q`): each chunk is made non-negative once
/// (`|c|`, shared by the tokens) and meets each token's four codes
/// broadcast and given the chunk's signs, added at once into 32-bit sums
/// ([`Products::add4`], since two products can fill a 16-bit lane), one
/// row per lane.
///
/// # Safety
/// `codes` holds 256 bytes and each `q[k]` 32 codes; compiled into an
/// entry point for `P`.
#[inline(always)]
unsafe fn sums_q8_0<const N: usize, P: Products>(
    codes: *const u8,
    q: [*const i32; N],
) -> [__m256i; N] {
    // SAFETY: the caller's contract.
    unsafe {
        let mut sums = [_mm256_setzero_si256(); N];
        for k in 0..8 {
            let c = _mm256_loadu_si256(codes.add(32 * k) as *const __m256i);
            let size = _mm256_sign_epi8(c, c);
            for (s, q) in sums.iter_mut().zip(q) {
                let four = _mm256_set1_epi32(q.add(k).read_unaligned());
                *s = P::add4(*s, size, _mm256_sign_epi8(four, c));
            }
        }
        sums
    }
}
// ANCHOR_END: prompt_avx2
