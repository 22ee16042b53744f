//! AVX2 bodies of the Q5_0, Q4_K and Q6_K dot products (the plain twins
//! are in `dot_k.rs`). Q5_0, per 32 values: codes unpacked to bytes,
//! `maddubs` with the activation bytes, `madd` to 8 × i32 (or one
//! `vpdpbusd`, `dot4.rs`), and one fused multiply-add by the block's
//! scale. The K-quants, per 256 values (activation blocks of 256): the
//! same byte products, `madd` with the integer sub-block scales, integer
//! sums, one float multiply.

use std::arch::x86_64::*;

use super::avx2::{dot_bytes, fifth_bits, hsum};
use crate::quant::act::Q8Row;
use crate::quant::dot4::Products;
use crate::quant::q4_k::QK_K;
use crate::quant::{QK, q4_k, q5_0, q6_k};

/// The f16 at `p` as f32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn f16_at(p: *const u8) -> f32 {
    // SAFETY: the caller passes two readable bytes.
    unsafe {
        let bits = (p as *const u16).read_unaligned();
        _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(bits))))
    }
}

/// Activation block `b`'s 32 codes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn act(a: &Q8Row<'_>, b: usize) -> __m256i {
    // SAFETY: the caller passes b < a.d.len(), so 32 codes are readable.
    unsafe { _mm256_loadu_si256(a.qs.as_ptr().add(b * QK) as *const __m256i) }
}

/// Q5_0 row · activation row.
///
/// # Safety
/// AVX2, FMA and F16C; `w` holds `a.d.len()` Q5_0 blocks; compiled into an
/// entry point for `P`.
#[inline(always)]
pub unsafe fn dot_q5_0<P: Products>(w: &[u8], a: Q8Row<'_>) -> f32 {
    // SAFETY: the caller's contract (AVX2).
    let (mut acc, m4) = unsafe { (_mm256_setzero_ps(), _mm_set1_epi8(0x0f)) };
    let mut offset = 0f32;
    for b in 0..a.d.len() {
        // SAFETY: block b's 22 bytes and activation block b are in bounds.
        unsafe {
            let p = w.as_ptr().add(b * q5_0::BLOCK_BYTES);
            let d = f16_at(p);
            let qh = (p.add(2) as *const i32).read_unaligned();
            let bytes = _mm_loadu_si128(p.add(6) as *const __m128i);
            let lo = _mm_and_si128(bytes, m4);
            let hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), m4);
            let codes = _mm256_or_si256(_mm256_set_m128i(hi, lo), fifth_bits(qh));
            let dd = d * *a.d.get_unchecked(b);
            acc = _mm256_fmadd_ps(_mm256_set1_ps(dd), dot_bytes::<P>(codes, act(&a, b)), acc);
            offset += dd * (16 * *a.isum.get_unchecked(b)) as f32;
        }
    }
    // SAFETY: the caller's contract (AVX2).
    unsafe { hsum(acc) - offset }
}

// ANCHOR: dot_q4_k_avx2
/// Q4_K row · activation row (blocks of 256): per super-block the codes
/// times the activation bytes (`maddubs`, 16 pairs within i16), times the
/// sub-block's scale (`madd` with it in every 16-bit lane, 8 × i32), all
/// of it added as integers; the minimums' part from the activation sums
/// of 16; two float multiplies per 256 values, as in the plain twin.
///
/// # Safety
/// AVX2, FMA and F16C; `w` holds `a.k.d.len()` Q4_K super-blocks and
/// `a.k` their activations.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_q4_k(w: &[u8], a: Q8Row<'_>) -> f32 {
    let k = a.k;
    let m4 = _mm256_set1_epi8(0x0f);
    let mut acc = 0f32;
    for s in 0..k.d.len() {
        // SAFETY: super-block s's 144 bytes and its 256 activation codes
        // are in bounds.
        unsafe {
            let p = w.as_ptr().add(s * q4_k::BLOCK_BYTES);
            let (d, dmin) = (f16_at(p), f16_at(p.add(2)));
            let (sc, m) = q4_k::scales_mins(std::slice::from_raw_parts(p.add(4), 12));
            let q = k.qs.as_ptr().add(s * QK_K);
            let mut sum = _mm256_setzero_si256();
            for r in 0..4 {
                let bytes = _mm256_loadu_si256(p.add(16 + 32 * r) as *const __m256i);
                let halves = [
                    _mm256_and_si256(bytes, m4),
                    _mm256_and_si256(_mm256_srli_epi16(bytes, 4), m4),
                ];
                for (h, codes) in halves.into_iter().enumerate() {
                    let j = 2 * r + h;
                    let y = _mm256_loadu_si256(q.add(32 * j) as *const __m256i);
                    let pairs = _mm256_maddubs_epi16(codes, y);
                    let scale = _mm256_set1_epi16(i16::from(sc[j]));
                    sum = _mm256_add_epi32(sum, _mm256_madd_epi16(pairs, scale));
                }
            }
            // Σ_j m_j·Σq over sub-block j: the sums of 16 added in pairs,
            // times the minimums, in 16-bit lanes.
            let bs = _mm256_loadu_si256(k.bsums.as_ptr().add(16 * s) as *const __m256i);
            let pairs = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
            let mins = _mm_cvtepu8_epi16(_mm_loadl_epi64(m.as_ptr() as *const __m128i));
            let summ = hsum_i32(_mm256_castsi128_si256(_mm_madd_epi16(pairs, mins)), 4);
            let sumi = hsum_i32(sum, 8);
            let da = *k.d.get_unchecked(s);
            acc += da * d * sumi as f32 - da * dmin * summ as f32;
        }
    }
    acc
}
// ANCHOR_END: dot_q4_k_avx2

/// Q6_K row · activation row (blocks of 256): per super-block the six-bit
/// codes (0..=63) times the activation bytes (`maddubs`), times each
/// group of 16's scale (`madd`), added as integers; the codes' offset of
/// 32 taken off with the activation sums of 16; one float multiply per 256
/// values, as in the plain twin.
///
/// # Safety
/// AVX2, FMA and F16C; `w` holds `a.k.d.len()` Q6_K super-blocks and
/// `a.k` their activations.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_q6_k(w: &[u8], a: Q8Row<'_>) -> f32 {
    let k = a.k;
    let mut acc = 0f32;
    for s in 0..k.d.len() {
        // SAFETY: super-block s's 210 bytes and its 256 activation codes
        // are in bounds.
        unsafe {
            let p = w.as_ptr().add(s * q6_k::BLOCK_BYTES);
            let d = f16_at(p.add(208));
            let q = k.qs.as_ptr().add(s * QK_K);
            let sc = |g: usize| i16::from(*p.add(192 + g) as i8);
            let mut sum = _mm256_setzero_si256();
            for h in 0..2 {
                for (t, codes) in q6_k_codes(p, h).into_iter().enumerate() {
                    let j = 4 * h + t;
                    let y = _mm256_loadu_si256(q.add(32 * j) as *const __m256i);
                    // 16 pairs within i16; the low lane holds values
                    // 0..16 of the run (group 2j), the high lane group 2j + 1.
                    let pairs = _mm256_maddubs_epi16(codes, y);
                    let scale =
                        _mm256_set_m128i(_mm_set1_epi16(sc(2 * j + 1)), _mm_set1_epi16(sc(2 * j)));
                    sum = _mm256_add_epi32(sum, _mm256_madd_epi16(pairs, scale));
                }
            }
            // The codes' offset: 32·Σ_g sc_g·Σq over group g.
            let bs = _mm256_loadu_si256(k.bsums.as_ptr().add(16 * s) as *const __m256i);
            let scales = _mm256_cvtepi8_epi16(_mm_loadu_si128(p.add(192) as *const __m128i));
            let offset = _mm256_slli_epi32(_mm256_madd_epi16(bs, scales), 5);
            let sumi = hsum_i32(_mm256_sub_epi32(sum, offset), 8);
            acc += *k.d.get_unchecked(s) * d * sumi as f32;
        }
    }
    acc
}

/// The sum of the first `lanes` (4 or 8) i32 lanes of `v`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum_i32(v: __m256i, lanes: usize) -> i32 {
    let mut x = _mm256_castsi256_si128(v);
    if lanes == 8 {
        x = _mm_add_epi32(x, _mm256_extracti128_si256(v, 1));
    }
    let x = _mm_add_epi32(x, _mm_unpackhi_epi64(x, x));
    let x = _mm_add_epi32(x, _mm_shuffle_epi32(x, 0b01));
    _mm_cvtsi128_si32(x)
}

/// The 128 six-bit codes of half `h` of the Q6_K super-block at `p`, as four
/// runs of 32 bytes in element order.
///
/// # Safety
/// AVX2; `p` points at a whole 210-byte super-block.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q6_k_codes(p: *const u8, h: usize) -> [__m256i; 4] {
    // SAFETY: the caller passes a whole super-block; every load is inside it.
    unsafe {
        let (m4, m2) = (_mm256_set1_epi8(0x0f), _mm256_set1_epi8(3));
        let ql0 = _mm256_loadu_si256(p.add(64 * h) as *const __m256i);
        let ql1 = _mm256_loadu_si256(p.add(64 * h + 32) as *const __m256i);
        let qh = _mm256_loadu_si256(p.add(128 + 32 * h) as *const __m256i);
        let high = |v: __m256i| _mm256_slli_epi16(_mm256_and_si256(v, m2), 4);
        [
            _mm256_or_si256(_mm256_and_si256(ql0, m4), high(qh)),
            _mm256_or_si256(_mm256_and_si256(ql1, m4), high(_mm256_srli_epi16(qh, 2))),
            _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                high(_mm256_srli_epi16(qh, 4)),
            ),
            _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                high(_mm256_srli_epi16(qh, 6)),
            ),
        ]
    }
}

/// Write 32 codes (bytes `0..=63`) to `out` as `f(code as f32, k)` for the
/// four groups of eight, `k = 0..4`.
///
/// # Safety
/// AVX2; `out` holds 32 floats.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn store_codes(codes: __m256i, out: &mut [f32], f: impl Fn(__m256, usize) -> __m256) {
    let lo = _mm256_castsi256_si128(codes);
    let hi = _mm256_extracti128_si256(codes, 1);
    for (k, c) in [lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)]
        .into_iter()
        .enumerate()
    {
        let v = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(c));
        // SAFETY: the caller passes 32 floats; k < 4.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(8 * k), f(v, k)) };
    }
}

/// AVX2 body of the Q4_K dequantizer: `x = (d·sc)·code − dmin·m`, the plain
/// twin's two roundings, so the floats are identical.
///
/// # Safety
/// AVX2, FMA and F16C; `bytes` holds `out.len() / 256` super-blocks.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dequantize_q4_k(bytes: &[u8], out: &mut [f32]) {
    let m4 = _mm256_set1_epi8(0x0f);
    for (blk, o) in bytes
        .chunks_exact(q4_k::BLOCK_BYTES)
        .zip(out.chunks_exact_mut(q4_k::QK_K))
    {
        // SAFETY: `blk` is one whole super-block and `o` 256 floats.
        unsafe {
            let p = blk.as_ptr();
            let (d, dmin) = (f16_at(p), f16_at(p.add(2)));
            for k in 0..4 {
                let bytes = _mm256_loadu_si256(p.add(16 + 32 * k) as *const __m256i);
                let halves = [
                    _mm256_and_si256(bytes, m4),
                    _mm256_and_si256(_mm256_srli_epi16(bytes, 4), m4),
                ];
                for (h, codes) in halves.into_iter().enumerate() {
                    let j = 2 * k + h;
                    let (sc, m) = q4_k::scale_min(j, &blk[4..16]);
                    let (dj, mj) = (
                        _mm256_set1_ps(d * f32::from(sc)),
                        _mm256_set1_ps(dmin * f32::from(m)),
                    );
                    store_codes(codes, &mut o[32 * j..32 * (j + 1)], |v, _| {
                        _mm256_sub_ps(_mm256_mul_ps(dj, v), mj)
                    });
                }
            }
        }
    }
}

/// AVX2 body of the Q6_K dequantizer: `x = (d·scale)·(code − 32)`, as the
/// plain twin computes it.
///
/// # Safety
/// AVX2, FMA and F16C; `bytes` holds `out.len() / 256` super-blocks.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dequantize_q6_k(bytes: &[u8], out: &mut [f32]) {
    let thirty_two = _mm256_set1_ps(32.0);
    for (blk, o) in bytes
        .chunks_exact(q6_k::BLOCK_BYTES)
        .zip(out.chunks_exact_mut(q6_k::QK_K))
    {
        // SAFETY: `blk` is one whole super-block and `o` 256 floats.
        unsafe {
            let p = blk.as_ptr();
            let d = f16_at(p.add(208));
            for h in 0..2 {
                for (t, codes) in q6_k_codes(p, h).into_iter().enumerate() {
                    let j = 4 * h + t;
                    let scale = |k: usize| f32::from(blk[192 + 2 * j + k / 2] as i8);
                    let ds = [_mm256_set1_ps(d * scale(0)), _mm256_set1_ps(d * scale(2))];
                    store_codes(codes, &mut o[32 * j..32 * (j + 1)], |v, k| {
                        _mm256_mul_ps(ds[k / 2], _mm256_sub_ps(v, thirty_two))
                    });
                }
            }
        }
    }
}
