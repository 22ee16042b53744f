//! AVX2 bodies of the quantized dot products (the plain twins are in
//! `dot.rs`), and their AVX-512 VNNI form. Per block: unpack the codes to
//! 32 bytes, `maddubs` (unsigned × signed bytes → 16 pairs summed to i16),
//! `madd` with ones (→ 8 × i32) — or one `vpdpbusd`, the same integers
//! (`dot4.rs`) — convert, and one fused multiply-add by the block's scale.

use std::arch::x86_64::*;

use super::avx2_k;
use crate::dtype::DType;
use crate::quant::QK;
use crate::quant::act::Q8Row;
use crate::quant::dot4::{Avx2, Products, Vnni};

/// Row · activation row for any quantized format.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C, and `w` must hold exactly the
/// blocks for `a.qs.len()` values of `dtype`.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot(dtype: DType, w: &[u8], a: Q8Row<'_>) -> f32 {
    // SAFETY: the caller's contract.
    unsafe { dot_as::<Avx2>(dtype, w, a) }
}

/// [`dot`] with AVX-512 VNNI's `vpdpbusd` for the byte products (the same
/// bits).
///
/// # Safety
/// As [`dot`], and AVX-512 VNNI and VL.
#[target_feature(enable = "avx2,fma,f16c,avx512vl,avx512vnni")]
pub unsafe fn dot_vnni(dtype: DType, w: &[u8], a: Q8Row<'_>) -> f32 {
    // SAFETY: the caller's contract.
    unsafe { dot_as::<Vnni>(dtype, w, a) }
}

/// Dispatch on the format (the K-quants, whose products are scaled by
/// integer sub-block scales in 16-bit lanes, have one body for both
/// instruction sets).
///
/// # Safety
/// As [`dot`]; compiled into an entry point for `P`.
#[inline(always)]
unsafe fn dot_as<P: Products>(dtype: DType, w: &[u8], a: Q8Row<'_>) -> f32 {
    // SAFETY: the caller's contract.
    unsafe {
        match dtype {
            DType::Q4_1 => dot_q4_1::<P>(w, a),
            DType::Q4_0 => dot_q4_0::<P>(w, a),
            DType::Q5_0 => avx2_k::dot_q5_0::<P>(w, a),
            DType::Q4_K => avx2_k::dot_q4_k(w, a),
            DType::Q6_K => avx2_k::dot_q6_k(w, a),
            _ => dot_q8_0::<P>(w, a),
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

/// Q5_0's fifth bits as `0x10` in the bytes of the elements that have
/// them, in element order (byte k of the 32-bit word goes to bytes
/// 8k..8k+8; lane-local, so the low lane takes bytes 0 and 1, elements
/// 0..16, and the high lane bytes 2 and 3, elements 16..32).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn fifth_bits(qh: i32) -> __m256i {
    let spread = _mm256_setr_epi8(
        0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3,
        3, 3,
    );
    let bit = _mm256_set1_epi64x(i64::from_le_bytes([1, 2, 4, 8, 16, 32, 64, 128]));
    let bits = _mm256_shuffle_epi8(_mm256_set1_epi32(qh), spread);
    let set = _mm256_cmpeq_epi8(_mm256_and_si256(bits, bit), bit);
    _mm256_and_si256(set, _mm256_set1_epi8(0x10))
}

/// Σ u·s over 32 byte pairs (u unsigned, s signed) as 8 f32 partial sums.
///
/// # Safety
/// Compiled into an entry point for `P`.
#[inline(always)]
pub(super) unsafe fn dot_bytes<P: Products>(u: __m256i, s: __m256i) -> __m256 {
    // SAFETY: the caller's contract.
    unsafe { _mm256_cvtepi32_ps(P::add4(_mm256_setzero_si256(), u, s)) }
}

/// The sum of the 8 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
}

// ANCHOR: dot_q4_1_avx2
/// # Safety
/// As [`dot`]; compiled into an entry point for `P`.
#[inline(always)]
unsafe fn dot_q4_1<P: Products>(w: &[u8], a: Q8Row<'_>) -> f32 {
    let nb = a.d.len();
    // SAFETY: the caller's contract (AVX).
    let mut acc = unsafe { _mm256_setzero_ps() };
    let mut mins = 0f32;
    for b in 0..nb {
        // SAFETY: block b's 20 bytes and activations b·32..(b+1)·32 are in
        // bounds (checked by the caller).
        unsafe {
            let wb = w.as_ptr().add(b * 20);
            let (d, m) = f16x2(wb);
            let codes = unpack_nibbles(wb.add(4));
            let q = _mm256_loadu_si256(a.qs.as_ptr().add(b * QK) as *const __m256i);
            let sums = dot_bytes::<P>(codes, q);
            acc = _mm256_fmadd_ps(_mm256_set1_ps(d * *a.d.get_unchecked(b)), sums, acc);
            mins += m * *a.s.get_unchecked(b);
        }
    }
    // SAFETY: the caller's contract (AVX2).
    unsafe { hsum(acc) + mins }
}
// ANCHOR_END: dot_q4_1_avx2

/// # Safety
/// As [`dot`]; compiled into an entry point for `P`.
#[inline(always)]
unsafe fn dot_q4_0<P: Products>(w: &[u8], a: Q8Row<'_>) -> f32 {
    let nb = a.d.len();
    // SAFETY: the caller's contract (AVX).
    let mut acc = unsafe { _mm256_setzero_ps() };
    let mut offset = 0f32;
    for b in 0..nb {
        // SAFETY: as in dot_q4_1, with 18-byte blocks (the f16 read takes
        // the scale and the first code byte).
        unsafe {
            let wb = w.as_ptr().add(b * 18);
            let (d, _) = f16x2(wb);
            let codes = unpack_nibbles(wb.add(2));
            let q = _mm256_loadu_si256(a.qs.as_ptr().add(b * QK) as *const __m256i);
            let sums = dot_bytes::<P>(codes, q);
            let dd = d * *a.d.get_unchecked(b);
            acc = _mm256_fmadd_ps(_mm256_set1_ps(dd), sums, acc);
            offset += dd * (8 * *a.isum.get_unchecked(b)) as f32;
        }
    }
    // SAFETY: the caller's contract (AVX2).
    unsafe { hsum(acc) - offset }
}

/// # Safety
/// As [`dot`]; compiled into an entry point for `P`.
#[inline(always)]
unsafe fn dot_q8_0<P: Products>(w: &[u8], a: Q8Row<'_>) -> f32 {
    let nb = a.d.len();
    // SAFETY: the caller's contract (AVX).
    let mut acc = unsafe { _mm256_setzero_ps() };
    for b in 0..nb {
        // SAFETY: block b's 34 bytes and its 32 activations are in bounds.
        unsafe {
            let wb = w.as_ptr().add(b * 34);
            let (d, _) = f16x2(wb);
            let x = _mm256_loadu_si256(wb.add(2) as *const __m256i);
            let q = _mm256_loadu_si256(a.qs.as_ptr().add(b * QK) as *const __m256i);
            // maddubs wants one unsigned operand: |x| and q with x's sign.
            let sums = dot_bytes::<P>(_mm256_sign_epi8(x, x), _mm256_sign_epi8(q, x));
            acc = _mm256_fmadd_ps(_mm256_set1_ps(d * *a.d.get_unchecked(b)), sums, acc);
        }
    }
    // SAFETY: the caller's contract (AVX2).
    unsafe { hsum(acc) }
}

/// [`matmul_q4`]'s formats.
const Q4_0: u8 = 0;
const Q4_1: u8 = 1;
const Q5_0: u8 = 2;

/// Ask for the group of four rows two groups ahead of `base` (rows of
/// `rb` bytes), a few cache lines per block step, so that memory streams in
/// while this group is being multiplied. Prefetches never fault; the
/// address is only computed (`wrapping_add`), never dereferenced.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn prefetch_ahead(base: *const u8, rb: usize, b: usize, nb: usize) {
    let lines = (4 * rb).div_ceil(64);
    let per_step = lines.div_ceil(nb);
    let ahead = base.wrapping_add(8 * rb);
    for k in b * per_step..((b + 1) * per_step).min(lines) {
        _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(k * 64) as *const i8);
    }
}

/// Store lane `j` of the four row totals `v` at `out[(r + j) · stride +
/// col]` (`stride = 1`: four contiguous floats).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn store_rows(out: &mut [f32], stride: usize, r: usize, col: usize, v: __m128) {
    // SAFETY: the caller passes r + 4 <= rows and col < stride, so every
    // index is inside `out`.
    unsafe {
        if stride == 1 {
            _mm_storeu_ps(out.as_mut_ptr().add(r), v);
        } else {
            let mut lanes = [0f32; 4];
            _mm_storeu_ps(lanes.as_mut_ptr(), v);
            for (j, x) in lanes.into_iter().enumerate() {
                *out.get_unchecked_mut((r + j) * stride + col) = x;
            }
        }
    }
}

/// Rows of a 4-bit matrix times `T` activation rows, four weight rows at a
/// time: each block's codes are unpacked once for the `T` tokens; per
/// token the activation block is loaded once for the four rows, their
/// integer sums are reduced together (`hadd`), and the four scales are
/// converted from f16 in one instruction. `out[r · stride + col + i]` is
/// row `r` times token `i`, computed with exactly the operations of `T = 1`, so a token's
/// products do not depend on the others. `F` is the format: [`Q4_1`],
/// [`Q4_0`], whose offset of 8 becomes a "minimum" of `−8·d` against
/// `d_a·Σq`, or [`Q5_0`], whose fifth bits join the nibbles and whose
/// offset is 16.
///
/// # Safety
/// AVX2, FMA and F16C; `w` holds `out.len() / stride` rows of
/// `a[i].d.len()` blocks (the same for every token), `col + T <= stride`;
/// compiled into an entry point for `P`.
#[inline(always)]
unsafe fn matmul_q4<const F: u8, const T: usize, P: Products>(
    w: &[u8],
    a: &[Q8Row<'_>; T],
    out: &mut [f32],
    (stride, col): (usize, usize),
) {
    let (block, codes_at) = match F {
        Q4_1 => (20, 4),
        Q5_0 => (22, 6),
        _ => (18, 2),
    };
    let offset = if F == Q5_0 { -16.0 } else { -8.0 };
    let nb = a[0].d.len();
    let rb = nb * block;
    let rows = out.len() / stride;
    let full = rows / 4 * 4;
    // SAFETY (whole body): every pointer below stays inside row r..r+4 of
    // `w` (r + 4 <= rows) or inside block b < nb of the activations.
    unsafe {
        let m4 = _mm256_set1_epi8(0x0f);
        let hi_shift = _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4);
        let take_d = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
        let take_m = _mm256_setr_epi32(1, 3, 5, 7, 1, 3, 5, 7);
        for r in (0..full).step_by(4) {
            let base = w.as_ptr().add(r * rb);
            let mut acc = [_mm256_setzero_ps(); T];
            let mut mins = [_mm_setzero_ps(); T];
            for b in 0..nb {
                prefetch_ahead(base, rb, b, nb);
                let p = base.add(b * block);
                // 16 bytes in both halves; the high half shifted by 4:
                // low nibbles (elements 0..16), then high (16..32).
                let codes: [__m256i; 4] = std::array::from_fn(|j| {
                    let v = _mm256_broadcastsi128_si256(_mm_loadu_si128(
                        p.add(j * rb + codes_at) as *const __m128i
                    ));
                    let low4 = _mm256_and_si256(_mm256_srlv_epi32(v, hi_shift), m4);
                    if F == Q5_0 {
                        let qh = (p.add(j * rb + 2) as *const i32).read_unaligned();
                        _mm256_or_si256(low4, fifth_bits(qh))
                    } else {
                        low4
                    }
                });
                let scale = |j: usize| -> i32 {
                    if F == Q4_1 {
                        (p.add(j * rb) as *const i32).read_unaligned()
                    } else {
                        i32::from((p.add(j * rb) as *const u16).read_unaligned())
                    }
                };
                let packed = _mm_setr_epi32(scale(0), scale(1), scale(2), scale(3));
                // [d0 m0 d1 m1 d2 m2 d3 m3] (Q4_0: [d0 0 d1 0 …]).
                let dm = _mm256_cvtph_ps(packed);
                let d = _mm256_permutevar8x32_ps(dm, take_d);
                for i in 0..T {
                    let ai = &a[i];
                    let q = _mm256_loadu_si256(ai.qs.as_ptr().add(b * QK) as *const __m256i);
                    let zero = _mm256_setzero_si256();
                    let row_sums = |j: usize| P::add4(zero, codes[j], q);
                    let s01 = _mm256_hadd_epi32(row_sums(0), row_sums(1));
                    let s23 = _mm256_hadd_epi32(row_sums(2), row_sums(3));
                    // [r0 r1 r2 r3 | r0 r1 r2 r3]: elements 0..16 and 16..32.
                    let sums = _mm256_cvtepi32_ps(_mm256_hadd_epi32(s01, s23));
                    let da = *ai.d.get_unchecked(b);
                    acc[i] = _mm256_fmadd_ps(d, _mm256_mul_ps(sums, _mm256_set1_ps(da)), acc[i]);
                    if F == Q4_1 {
                        let m = _mm256_castps256_ps128(_mm256_permutevar8x32_ps(dm, take_m));
                        mins[i] = _mm_fmadd_ps(m, _mm_set1_ps(*ai.s.get_unchecked(b)), mins[i]);
                    } else {
                        let off = offset * da * *ai.isum.get_unchecked(b) as f32;
                        mins[i] =
                            _mm_fmadd_ps(_mm256_castps256_ps128(d), _mm_set1_ps(off), mins[i]);
                    }
                }
            }
            for i in 0..T {
                let total = _mm_add_ps(
                    _mm_add_ps(
                        _mm256_castps256_ps128(acc[i]),
                        _mm256_extractf128_ps(acc[i], 1),
                    ),
                    mins[i],
                );
                store_rows(out, stride, r, col + i, total);
            }
        }
        for r in full..rows {
            let row = &w[r * rb..(r + 1) * rb];
            for (i, ai) in a.iter().enumerate() {
                out[r * stride + col + i] = match F {
                    Q4_1 => dot_q4_1::<P>(row, *ai),
                    Q5_0 => avx2_k::dot_q5_0::<P>(row, *ai),
                    _ => dot_q4_0::<P>(row, *ai),
                };
            }
        }
    }
}

/// Rows of a Q8_0 matrix times `T` activation rows, four weight rows at a
/// time (as [`matmul_q4`]; each row's codes are loaded once for the tokens).
///
/// # Safety
/// AVX2, FMA and F16C; `w` holds `out.len() / stride` rows of `a[i].d.len()`
/// blocks, `col + T <= stride`; compiled into an entry point for `P`.
#[inline(always)]
unsafe fn matmul_q8_0<const T: usize, P: Products>(
    w: &[u8],
    a: &[Q8Row<'_>; T],
    out: &mut [f32],
    (stride, col): (usize, usize),
) {
    let nb = a[0].d.len();
    let rb = nb * 34;
    let rows = out.len() / stride;
    let full = rows / 4 * 4;
    // SAFETY (whole body): as in `matmul_q4`.
    unsafe {
        let zero = _mm256_setzero_si256();
        for r in (0..full).step_by(4) {
            let base = w.as_ptr().add(r * rb);
            let mut acc = [_mm256_setzero_ps(); T];
            for b in 0..nb {
                prefetch_ahead(base, rb, b, nb);
                let p = base.add(b * 34);
                let x: [__m256i; 4] =
                    std::array::from_fn(
                        |j| _mm256_loadu_si256(p.add(j * rb + 2) as *const __m256i),
                    );
                let ax: [__m256i; 4] = std::array::from_fn(|j| _mm256_sign_epi8(x[j], x[j]));
                let scale = |j: usize| i32::from((p.add(j * rb) as *const u16).read_unaligned());
                let packed = _mm_setr_epi32(scale(0), scale(1), scale(2), scale(3));
                let d4 = _mm_cvtph_ps(_mm_packus_epi32(packed, packed));
                let d = _mm256_set_m128(d4, d4);
                for i in 0..T {
                    let ai = &a[i];
                    let q = _mm256_loadu_si256(ai.qs.as_ptr().add(b * QK) as *const __m256i);
                    let row_sums = |j: usize| P::add4(zero, ax[j], _mm256_sign_epi8(q, x[j]));
                    let s01 = _mm256_hadd_epi32(row_sums(0), row_sums(1));
                    let s23 = _mm256_hadd_epi32(row_sums(2), row_sums(3));
                    let sums = _mm256_cvtepi32_ps(_mm256_hadd_epi32(s01, s23));
                    let da = *ai.d.get_unchecked(b);
                    acc[i] = _mm256_fmadd_ps(d, _mm256_mul_ps(sums, _mm256_set1_ps(da)), acc[i]);
                }
            }
            for (i, acc) in acc.iter().enumerate() {
                let total =
                    _mm_add_ps(_mm256_castps256_ps128(*acc), _mm256_extractf128_ps(*acc, 1));
                store_rows(out, stride, r, col + i, total);
            }
        }
        for r in full..rows {
            for (i, ai) in a.iter().enumerate() {
                out[r * stride + col + i] = dot_q8_0::<P>(&w[r * rb..(r + 1) * rb], *ai);
            }
        }
    }
}

/// Rows of a quantized matrix times `T` activation rows, into columns
/// `col..col + T` of `out` (rows of `stride` floats): `out[r · stride +
/// col + i]` is row `r` times token `i`.
///
/// # Safety
/// AVX2, FMA and F16C; `w` holds `out.len() / stride` rows of `a[i].d.len()`
/// blocks of `dtype` (Q4_0, Q4_1, Q5_0 or Q8_0), and `col + T <= stride`.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn matmul<const T: usize>(
    dtype: DType,
    w: &[u8],
    a: &[Q8Row<'_>; T],
    out: &mut [f32],
    at: (usize, usize),
) {
    // SAFETY: the caller's contract.
    unsafe { matmul_as::<T, Avx2>(dtype, w, a, out, at) }
}

/// [`matmul`] with AVX-512 VNNI's `vpdpbusd` for the byte products (the
/// same bits).
///
/// # Safety
/// As [`matmul`], and AVX-512 VNNI and VL.
#[target_feature(enable = "avx2,fma,f16c,avx512vl,avx512vnni")]
pub unsafe fn matmul_vnni<const T: usize>(
    dtype: DType,
    w: &[u8],
    a: &[Q8Row<'_>; T],
    out: &mut [f32],
    at: (usize, usize),
) {
    // SAFETY: the caller's contract.
    unsafe { matmul_as::<T, Vnni>(dtype, w, a, out, at) }
}

/// Dispatch on the format.
///
/// # Safety
/// As [`matmul`]; compiled into an entry point for `P`.
#[inline(always)]
unsafe fn matmul_as<const T: usize, P: Products>(
    dtype: DType,
    w: &[u8],
    a: &[Q8Row<'_>; T],
    out: &mut [f32],
    at: (usize, usize),
) {
    // SAFETY: the caller's contract.
    unsafe {
        match dtype {
            DType::Q4_1 => matmul_q4::<Q4_1, T, P>(w, a, out, at),
            DType::Q4_0 => matmul_q4::<Q4_0, T, P>(w, a, out, at),
            DType::Q5_0 => matmul_q4::<Q5_0, T, P>(w, a, out, at),
            _ => matmul_q8_0::<T, P>(w, a, out, at),
        }
    }
}

/// [`matmul`] (or [`matmul_vnni`] when `vnni`) for one, two or four
/// tokens `a`, into columns `at.1..` of rows of `at.0` floats.
///
/// # Safety
/// As [`matmul`] (and [`matmul_vnni`] when `vnni`); `a` holds one, two or
/// four rows.
pub unsafe fn matmul_step(
    vnni: bool,
    dtype: DType,
    w: &[u8],
    a: &[Q8Row<'_>],
    out: &mut [f32],
    at: (usize, usize),
) {
    // SAFETY: the caller's contract.
    unsafe {
        match (a, vnni) {
            (&[x], false) => matmul::<1>(dtype, w, &[x], out, at),
            (&[x], true) => matmul_vnni::<1>(dtype, w, &[x], out, at),
            (&[x, y], false) => matmul::<2>(dtype, w, &[x, y], out, at),
            (&[x, y], true) => matmul_vnni::<2>(dtype, w, &[x, y], out, at),
            (&[x, y, z, u], false) => matmul::<4>(dtype, w, &[x, y, z, u], out, at),
            (&[x, y, z, u], true) => matmul_vnni::<4>(dtype, w, &[x, y, z, u], out, at),
            _ => unreachable!("matmul_step: {} tokens", a.len()),
        }
    }
}

/// AVX2 body of the block dequantizers: 32 codes widened to f32 and
/// scaled, `x = code·d + m` (multiply, then add: the same two roundings as
/// the plain twins, so the results are identical).
///
/// # Safety
/// AVX2, FMA and F16C; `bytes` holds `out.len() / 32` blocks of `dtype`.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dequantize(dtype: DType, bytes: &[u8], out: &mut [f32]) {
    let unit = dtype.unit_bytes();
    for (b, o) in bytes.chunks_exact(unit).zip(out.chunks_exact_mut(QK)) {
        // SAFETY: `b` is one whole block and `o` 32 floats.
        unsafe {
            let p = b.as_ptr();
            let (d, m, codes_at) = match dtype {
                DType::Q4_1 => {
                    let (d, m) = f16x2(p);
                    (d, m, 4)
                }
                DType::Q4_0 => {
                    let d = f16x2(p).0;
                    (d, -8.0 * d, 2)
                }
                DType::Q5_0 => (f16x2(p).0, 0.0, 6),
                _ => (f16x2(p).0, 0.0, 2),
            };
            let (dv, mv) = (_mm256_set1_ps(d), _mm256_set1_ps(m));
            let codes: __m256i = match dtype {
                DType::Q8_0 => _mm256_loadu_si256(p.add(2) as *const __m256i),
                DType::Q5_0 => _mm256_or_si256(
                    unpack_nibbles(p.add(codes_at)),
                    fifth_bits((p.add(2) as *const i32).read_unaligned()),
                ),
                _ => unpack_nibbles(p.add(codes_at)),
            };
            let lo = _mm256_castsi256_si128(codes);
            let hi = _mm256_extracti128_si256(codes, 1);
            let widen = |c: __m128i| {
                if dtype == DType::Q8_0 {
                    _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(c))
                } else {
                    _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(c))
                }
            };
            let parts = [lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)];
            for (k, c) in parts.into_iter().enumerate() {
                let x = if let Some(offset) = match dtype {
                    DType::Q4_0 => Some(8.0),
                    DType::Q5_0 => Some(16.0),
                    _ => None,
                } {
                    // (code − offset)·d, as the plain twins compute it.
                    _mm256_mul_ps(_mm256_sub_ps(widen(c), _mm256_set1_ps(offset)), dv)
                } else {
                    _mm256_add_ps(_mm256_mul_ps(widen(c), dv), mv)
                };
                _mm256_storeu_ps(o.as_mut_ptr().add(8 * k), x);
            }
        }
    }
}
