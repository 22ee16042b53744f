//! AVX2 bodies of the Q5_0, Q4_K and Q6_K dot products (the plain twins
//! are in `dot_k.rs`). Q5_0, per 32 values: codes unpacked to bytes,
//! `maddubs` with the activation bytes, `madd` to 8 × i32 (or one
//! `vpdpbusd`, `dot4.rs`), and one fused multiply-add by the block's
//! scale. The K-quants, per 256 values (activation blocks of 256): the
//! same byte products, `madd` with the integer sub-block scales and an
//! add (with VNNI one `vpdpwssd`, [`matmul_vnni`]), integer sums, one
//! float multiply-add (two for Q4_K's minimums); a row's unpacked codes
//! shared by up to four tokens ([`matmul`]).

use std::arch::x86_64::*;

use super::avx2::{dot_bytes, fifth_bits, hsum};
use crate::dtype::DType;
use crate::quant::act::Q8Row;
use crate::quant::dot4::{Avx2, Products, Vnni};
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

/// How far ahead of the super-block being multiplied the kernels ask for
/// the weights' cache lines, in bytes: two to three rows of SmolLM2's
/// `ffn_down` (864 bytes a Q4_K row, 1260 a Q6_K one). The K-quant rows
/// are multiplied one after another, and without these requests the
/// hardware left most of each row's reading to stall the arithmetic: in a
/// decode step of the Q4_K_M file, on a 2-core Xeon, the two K-quant
/// matrices took 1.5–1.7 ms per token without them and 0.8–1.0 ms with
/// them (`infer bench --quick --profile`, alternated; 2, 4 and 6 KB ahead
/// did no better).
const PREFETCH_AHEAD: usize = 3072;

/// Ask for the `lines` cache lines from [`PREFETCH_AHEAD`] bytes past `p`
/// on (a super-block's bytes can span one more line than they fill).
/// Prefetches never fault, so the address may lie past the matrix.
///
/// # Safety
/// SSE (every x86-64 CPU).
#[inline(always)]
unsafe fn prefetch_ahead(p: *const u8, lines: usize) {
    for l in 0..lines {
        let at = p.wrapping_add(PREFETCH_AHEAD + 64 * l);
        // SAFETY: a prefetch reads nothing and never faults.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(at as *const i8) };
    }
}

/// Tokens sharing each unpacked super-block in [`matmul`].
const TILE: usize = 4;

/// `out[r · t + i] = row r of w · a[i]` for Q4_K or Q6_K rows and `t =
/// a.len()` tokens (activation blocks of 256), up to four tokens at a time
/// sharing each row's unpacked codes. A token's products are computed the
/// same way whatever else is in its tile, so each equals [`dot_q4_k`] or
/// [`dot_q6_k`] for that token alone.
///
/// # Safety
/// AVX2, FMA and F16C; `w` holds `out.len() / t` rows of `a[0].k.d.len()`
/// super-blocks and every `a[i].k` their activations.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn matmul(dtype: DType, w: &[u8], a: &[Q8Row<'_>], out: &mut [f32]) {
    // SAFETY: the caller's contract.
    unsafe { matmul_with::<Avx2>(dtype, w, a, out) }
}

/// [`matmul`] with AVX-512 VNNI on 256-bit vectors: each sub-block's
/// scaled pairs added in one `vpdpwssd` instead of `madd` and an add. The
/// integers are the same, so the bits are.
///
/// # Safety
/// As [`matmul`], and AVX-512 VNNI and VL.
#[target_feature(enable = "avx2,fma,f16c,avx512vnni,avx512vl")]
pub unsafe fn matmul_vnni(dtype: DType, w: &[u8], a: &[Q8Row<'_>], out: &mut [f32]) {
    // SAFETY: the caller's contract.
    unsafe { matmul_with::<Vnni>(dtype, w, a, out) }
}

/// The body of [`matmul`] for products `P`.
///
/// # Safety
/// As [`matmul`]; compiled into an entry point for `P`.
#[inline(always)]
unsafe fn matmul_with<P: Products>(dtype: DType, w: &[u8], a: &[Q8Row<'_>], out: &mut [f32]) {
    let t = a.len();
    let rb = w.len() / (out.len() / t.max(1)).max(1);
    // Every tile of tokens for one row before the next row: the row is
    // read from memory once, and from the L1 cache for the later tiles.
    for (r, row) in w.chunks_exact(rb.max(1)).enumerate() {
        let o = &mut out[r * t..(r + 1) * t];
        let mut i = 0;
        while i < t {
            let n = TILE.min(t - i);
            // SAFETY: the caller's contract; tokens i..i + n exist.
            unsafe {
                match n {
                    4 => tile::<P, 4>(dtype, row, a, i, o),
                    3 => tile::<P, 3>(dtype, row, a, i, o),
                    2 => tile::<P, 2>(dtype, row, a, i, o),
                    _ => tile::<P, 1>(dtype, row, a, i, o),
                }
            }
            i += n;
        }
    }
}

/// One row times tokens `i0..i0 + N`, into `out[i0..i0 + N]`.
///
/// # Safety
/// As [`matmul`], for one row; compiled into an entry point for `P`.
#[inline(always)]
unsafe fn tile<P: Products, const N: usize>(
    dtype: DType,
    row: &[u8],
    a: &[Q8Row<'_>],
    i0: usize,
    out: &mut [f32],
) {
    let toks: [Q8Row<'_>; N] = std::array::from_fn(|k| a[i0 + k]);
    // SAFETY: the caller's contract.
    let v = unsafe {
        if dtype == DType::Q6_K {
            q6_k_tile::<P, N>(row, toks)
        } else {
            q4_k_tile::<P, N>(row, toks)
        }
    };
    out[i0..i0 + N].copy_from_slice(&v);
}

/// Q4_K row · activation row (blocks of 256).
///
/// # Safety
/// AVX2, FMA and F16C; `w` holds `a.k.d.len()` Q4_K super-blocks and
/// `a.k` their activations.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_q4_k(w: &[u8], a: Q8Row<'_>) -> f32 {
    // SAFETY: the caller's contract.
    unsafe { q4_k_tile::<Avx2, 1>(w, [a])[0] }
}

/// Q6_K row · activation row (blocks of 256).
///
/// # Safety
/// AVX2, FMA and F16C; `w` holds `a.k.d.len()` Q6_K super-blocks and
/// `a.k` their activations.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_q6_k(w: &[u8], a: Q8Row<'_>) -> f32 {
    // SAFETY: the caller's contract.
    unsafe { q6_k_tile::<Avx2, 1>(w, [a])[0] }
}

// ANCHOR: dot_q4_k_avx2
/// One Q4_K row times `N` tokens' activation rows (blocks of 256). Per
/// super-block the codes are unpacked once; for each token they meet its
/// bytes (`maddubs`, 16 pairs within i16), are scaled by the sub-block's
/// scale (`madd` with it in every 16-bit lane, 8 × i32) and added as
/// integers; the minimums' part comes from the token's sums of 16 paired
/// per sub-block (`madd` with the minimums, 4 × i32). Each token then
/// takes its two float scales in one fused multiply-add each.
///
/// # Safety
/// AVX2, FMA and F16C; `w` holds `a[k].k.d.len()` Q4_K super-blocks and
/// every `a[k].k` their activations; compiled into an entry point for `P`.
#[inline(always)]
unsafe fn q4_k_tile<P: Products, const N: usize>(w: &[u8], a: [Q8Row<'_>; N]) -> [f32; N] {
    // SAFETY (whole body): the caller's contract (AVX2); super-block s's
    // 144 bytes and each token's 256 codes and 16 sums are in bounds.
    unsafe {
        let m4 = _mm256_set1_epi8(0x0f);
        let mut acc = [_mm256_setzero_ps(); N];
        for s in 0..w.len() / q4_k::BLOCK_BYTES {
            let p = w.as_ptr().add(s * q4_k::BLOCK_BYTES);
            // 144 bytes: at most three lines.
            prefetch_ahead(p, 3);
            let (d, dmin) = (f16_at(p), f16_at(p.add(2)));
            let (sc, m) = q4_k::scales_mins(std::slice::from_raw_parts(p.add(4), 12));
            let mins = _mm_cvtepu8_epi16(_mm_loadl_epi64(m.as_ptr() as *const __m128i));
            // The eight scales as 16-bit words in both halves; sub-block
            // j's spread over every word by one byte shuffle.
            let scales = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_loadl_epi64(
                sc.as_ptr() as *const __m128i,
            )));
            let q: [*const i8; N] = std::array::from_fn(|k| a[k].k.qs.as_ptr().add(s * QK_K));
            let mut sum = [_mm256_setzero_si256(); N];
            for r in 0..4 {
                let bytes = _mm256_loadu_si256(p.add(16 + 32 * r) as *const __m256i);
                let halves = [
                    _mm256_and_si256(bytes, m4),
                    _mm256_and_si256(_mm256_srli_epi16(bytes, 4), m4),
                ];
                for (h, codes) in halves.into_iter().enumerate() {
                    let j = 2 * r + h;
                    let word = i16::from_le_bytes([2 * j as u8, 2 * j as u8 + 1]);
                    let scale = _mm256_shuffle_epi8(scales, _mm256_set1_epi16(word));
                    for (sum, q) in sum.iter_mut().zip(q) {
                        let y = _mm256_loadu_si256(q.add(32 * j) as *const __m256i);
                        let pairs = _mm256_maddubs_epi16(codes, y);
                        *sum = P::add_pairs(*sum, pairs, scale);
                    }
                }
            }
            for ((acc, sum), a) in acc.iter_mut().zip(sum).zip(&a) {
                // Σ_j m_j·Σq over sub-block j: the sums of 16 in pairs.
                let bs = _mm256_loadu_si256(a.k.bsums.as_ptr().add(16 * s) as *const __m256i);
                let pairs =
                    _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
                let summ = _mm256_set_m128i(_mm_setzero_si128(), _mm_madd_epi16(pairs, mins));
                let da = *a.k.d.get_unchecked(s);
                *acc = _mm256_fmadd_ps(_mm256_set1_ps(da * d), _mm256_cvtepi32_ps(sum), *acc);
                *acc = _mm256_fnmadd_ps(_mm256_set1_ps(da * dmin), _mm256_cvtepi32_ps(summ), *acc);
            }
        }
        acc.map(|v| hsum(v))
    }
}
// ANCHOR_END: dot_q4_k_avx2

/// One Q6_K row times `N` tokens' activation rows (blocks of 256). Per
/// super-block the six-bit codes (0..=63) are unpacked once; for each
/// token they meet its bytes (`maddubs`), are scaled by each group of 16's
/// scale (`madd`) and added as integers, the codes' offset of 32 taken off
/// with the token's sums of 16 (`32·Σ_g sc_g·Σq`); one fused multiply-add
/// per token and super-block.
///
/// # Safety
/// AVX2, FMA and F16C; `w` holds `a[k].k.d.len()` Q6_K super-blocks and
/// every `a[k].k` their activations; compiled into an entry point for `P`.
#[inline(always)]
unsafe fn q6_k_tile<P: Products, const N: usize>(w: &[u8], a: [Q8Row<'_>; N]) -> [f32; N] {
    // SAFETY (whole body): the caller's contract (AVX2); super-block s's
    // 210 bytes and each token's 256 codes and 16 sums are in bounds.
    unsafe {
        let mut acc = [_mm256_setzero_ps(); N];
        for s in 0..w.len() / q6_k::BLOCK_BYTES {
            let p = w.as_ptr().add(s * q6_k::BLOCK_BYTES);
            // 210 bytes: at most four lines.
            prefetch_ahead(p, 4);
            let d = f16_at(p.add(208));
            let scales = _mm256_cvtepi8_epi16(_mm_loadu_si128(p.add(192) as *const __m128i));
            // Words 2j and 2j + 1 (groups 2j and 2j + 1) share 32-bit lane
            // j: put it in every lane, then word 0 across the low half and
            // word 1 across the high half.
            let halves = _mm256_setr_epi8(
                0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, //
                2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3,
            );
            let q: [*const i8; N] = std::array::from_fn(|k| a[k].k.qs.as_ptr().add(s * QK_K));
            // Each token starts from minus its offset, 32·Σ_g sc_g·Σq.
            let mut sum: [__m256i; N] = std::array::from_fn(|k| {
                let bs = _mm256_loadu_si256(a[k].k.bsums.as_ptr().add(16 * s) as *const __m256i);
                let offset = _mm256_slli_epi32(_mm256_madd_epi16(bs, scales), 5);
                _mm256_sub_epi32(_mm256_setzero_si256(), offset)
            });
            for h in 0..2 {
                for (t, codes) in q6_k_codes(p, h).into_iter().enumerate() {
                    let j = 4 * h + t;
                    // The low lane holds values 0..16 of the run (group
                    // 2j), the high lane group 2j + 1.
                    let pair = _mm256_permutevar8x32_epi32(scales, _mm256_set1_epi32(j as i32));
                    let scale = _mm256_shuffle_epi8(pair, halves);
                    for (sum, q) in sum.iter_mut().zip(q) {
                        let y = _mm256_loadu_si256(q.add(32 * j) as *const __m256i);
                        let pairs = _mm256_maddubs_epi16(codes, y);
                        *sum = P::add_pairs(*sum, pairs, scale);
                    }
                }
            }
            for ((acc, sum), a) in acc.iter_mut().zip(sum).zip(&a) {
                let dd = _mm256_set1_ps(*a.k.d.get_unchecked(s) * d);
                *acc = _mm256_fmadd_ps(dd, _mm256_cvtepi32_ps(sum), *acc);
            }
        }
        acc.map(|v| hsum(v))
    }
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
