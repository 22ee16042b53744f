//! AVX2 bodies of the quantized dot products (the plain twins are in
//! `dot.rs`). Per block: unpack the codes to 32 bytes, `maddubs`
//! (unsigned × signed bytes → 16 pairs summed to i16), `madd` with ones
//! (→ 8 × i32), convert, and one fused multiply-add by the block's scale.

use std::arch::x86_64::*;

use crate::dtype::DType;
use crate::quant::QK;
use crate::quant::act::Q8Row;

/// Dispatch on the format.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C, and `w` must hold exactly the
/// blocks for `a.qs.len()` values of `dtype`.
pub unsafe fn dot(dtype: DType, w: &[u8], a: Q8Row<'_>) -> f32 {
    // SAFETY: the caller's contract.
    unsafe {
        match dtype {
            DType::Q4_1 => dot_q4_1(w, a),
            DType::Q4_0 => dot_q4_0(w, a),
            _ => dot_q8_0(w, a),
        }
    }
}

/// Two f16 values at `p` (d, then m) as f32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn f16x2(p: *const u8) -> (f32, f32) {
    // SAFETY: the caller passes a pointer to at least 4 readable bytes.
    unsafe {
        let bits = (p as *const u32).read_unaligned();
        let v = _mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32));
        (_mm_cvtss_f32(v), _mm_cvtss_f32(_mm_shuffle_ps(v, v, 1)))
    }
}

/// The 32 four-bit codes of a block (16 bytes at `p`) as 32 bytes in
/// element order: low nibbles first, then high nibbles.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn unpack_nibbles(p: *const u8) -> __m256i {
    // SAFETY: the caller passes 16 readable bytes.
    unsafe {
        let bytes = _mm_loadu_si128(p as *const __m128i);
        let m4 = _mm_set1_epi8(0x0f);
        let lo = _mm_and_si128(bytes, m4);
        let hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), m4);
        _mm256_set_m128i(hi, lo)
    }
}

/// Σ u·s over 32 byte pairs (u unsigned, s signed) as 8 f32 partial sums.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_bytes(u: __m256i, s: __m256i) -> __m256 {
    let pairs = _mm256_maddubs_epi16(u, s);
    _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
}

// ANCHOR: dot_q4_1_avx2
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_q4_1(w: &[u8], a: Q8Row<'_>) -> f32 {
    let nb = a.d.len();
    let mut acc = _mm256_setzero_ps();
    let mut mins = 0f32;
    for b in 0..nb {
        // SAFETY: block b's 20 bytes and activations b·32..(b+1)·32 are in
        // bounds (checked by the caller).
        unsafe {
            let wb = w.as_ptr().add(b * 20);
            let (d, m) = f16x2(wb);
            let codes = unpack_nibbles(wb.add(4));
            let q = _mm256_loadu_si256(a.qs.as_ptr().add(b * QK) as *const __m256i);
            let sums = dot_bytes(codes, q);
            acc = _mm256_fmadd_ps(_mm256_set1_ps(d * *a.d.get_unchecked(b)), sums, acc);
            mins += m * *a.s.get_unchecked(b);
        }
    }
    // SAFETY: AVX2 is enabled for this function.
    unsafe { hsum(acc) + mins }
}
// ANCHOR_END: dot_q4_1_avx2

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_q4_0(w: &[u8], a: Q8Row<'_>) -> f32 {
    let nb = a.d.len();
    let mut acc = _mm256_setzero_ps();
    let mut offset = 0f32;
    for b in 0..nb {
        // SAFETY: as in dot_q4_1, with 18-byte blocks (the f16 read takes
        // the scale and the first code byte).
        unsafe {
            let wb = w.as_ptr().add(b * 18);
            let (d, _) = f16x2(wb);
            let codes = unpack_nibbles(wb.add(2));
            let q = _mm256_loadu_si256(a.qs.as_ptr().add(b * QK) as *const __m256i);
            let sums = dot_bytes(codes, q);
            let dd = d * *a.d.get_unchecked(b);
            acc = _mm256_fmadd_ps(_mm256_set1_ps(dd), sums, acc);
            offset += dd * (8 * *a.isum.get_unchecked(b)) as f32;
        }
    }
    // SAFETY: AVX2 is enabled for this function.
    unsafe { hsum(acc) - offset }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_q8_0(w: &[u8], a: Q8Row<'_>) -> f32 {
    let nb = a.d.len();
    let mut acc = _mm256_setzero_ps();
    for b in 0..nb {
        // SAFETY: block b's 34 bytes and its 32 activations are in bounds.
        unsafe {
            let wb = w.as_ptr().add(b * 34);
            let (d, _) = f16x2(wb);
            let x = _mm256_loadu_si256(wb.add(2) as *const __m256i);
            let q = _mm256_loadu_si256(a.qs.as_ptr().add(b * QK) as *const __m256i);
            // maddubs wants one unsigned operand: |x| and q with x's sign.
            let sums = dot_bytes(_mm256_sign_epi8(x, x), _mm256_sign_epi8(q, x));
            acc = _mm256_fmadd_ps(_mm256_set1_ps(d * *a.d.get_unchecked(b)), sums, acc);
        }
    }
    // SAFETY: AVX2 is enabled for this function.
    unsafe { hsum(acc) }
}
