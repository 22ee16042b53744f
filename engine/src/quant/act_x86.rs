//! The activation quantizer's x86 bodies ([`super::quantize_block_scalar`]
//! is the plain twin): each block of 32 gets `max|x|`, codes
//! `round(x · 127/max)` with halves to even (the instruction's own
//! rounding, as ggml's AVX2 quantizer) and `Σq`. A whole row of blocks runs
//! in one call, so the blocks' reductions overlap in the pipeline instead
//! of waiting on each other through a call per block.

use std::arch::x86_64::*;

use super::QK;

/// Every block of 32 in `x`: codes into `qs`, `max|x| / 127` into `d`,
/// `Σq` into `isum`, one block at a time on 256-bit vectors.
///
/// # Safety
/// AVX2, FMA and F16C; `qs` as long as `x`, `d` and `isum` one entry per
/// 32 values of `x`, and `x` whole blocks.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn quantize_blocks_avx2(x: &[f32], qs: &mut [i8], d: &mut [f32], isum: &mut [i32]) {
    let blocks = x.chunks_exact(QK).zip(qs.chunks_exact_mut(QK));
    for ((xb, qb), (d, isum)) in blocks.zip(d.iter_mut().zip(isum)) {
        // SAFETY: `xb` holds 32 floats and `qb` 32 bytes: four 8-lane
        // loads and one 32-byte store, all in bounds.
        unsafe {
            let p = xb.as_ptr();
            let v = [
                _mm256_loadu_ps(p),
                _mm256_loadu_ps(p.add(8)),
                _mm256_loadu_ps(p.add(16)),
                _mm256_loadu_ps(p.add(24)),
            ];
            let sign = _mm256_set1_ps(-0.0);
            let mut m = _mm256_andnot_ps(sign, v[0]);
            for x in &v[1..] {
                m = _mm256_max_ps(m, _mm256_andnot_ps(sign, *x));
            }
            let m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
            let m2 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
            let amax = _mm_cvtss_f32(_mm_max_ss(m2, _mm_movehdup_ps(m2)));
            let id = _mm256_set1_ps(if amax != 0.0 { 127.0 / amax } else { 0.0 });
            let round = |x: __m256| {
                _mm256_cvtps_epi32(_mm256_round_ps::<
                    { _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC },
                >(_mm256_mul_ps(x, id)))
            };
            let (i0, i1, i2, i3) = (round(v[0]), round(v[1]), round(v[2]), round(v[3]));
            let sum = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
            let s4 = _mm_add_epi32(
                _mm256_castsi256_si128(sum),
                _mm256_extracti128_si256(sum, 1),
            );
            let s2 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0b01_00_11_10));
            let s1 = _mm_add_epi32(s2, _mm_shuffle_epi32(s2, 0b10_11_00_01));
            // Pack 32 × i32 to i8 (the packs interleave lanes; the permute
            // puts the four groups of eight back in order).
            let w01 = _mm256_packs_epi32(i0, i1);
            let w23 = _mm256_packs_epi32(i2, i3);
            let b = _mm256_packs_epi16(w01, w23);
            let b = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            _mm256_storeu_si256(qb.as_mut_ptr() as *mut __m256i, b);
            *d = amax / 127.0;
            *isum = _mm_cvtsi128_si32(s1);
        }
    }
}

/// [`quantize_blocks_avx2`] on 512-bit vectors: sixteen blocks at a
/// time, then one block at a time for the rest. The maximum and the sum
/// are exact in any order and the narrowing saturates once where AVX2's
/// two packs saturate twice, so the results are AVX2's bits for every
/// finite input.
///
/// A block's reductions are what cost: finished one block at a time, each
/// maximum and each sum is a chain of shuffles of its own. Sixteen blocks'
/// lanes are folded together instead ([`fold_sixteen`]), so one chain of
/// fifteen shuffle pairs finishes sixteen maxima, another sixteen sums,
/// and one division makes sixteen scales.
///
/// # Safety
/// AVX-512F besides AVX2; the lengths as [`quantize_blocks_avx2`].
#[target_feature(enable = "avx2,fma,f16c,avx512f")]
pub unsafe fn quantize_blocks_avx512(x: &[f32], qs: &mut [i8], d: &mut [f32], isum: &mut [i32]) {
    const N: usize = 16;
    let whole = x.len() / (N * QK) * N;
    let (x16, x1) = x.split_at(whole * QK);
    let (q16, q1) = qs.split_at_mut(whole * QK);
    let (d16, d1) = d.split_at_mut(whole);
    let (s16, s1) = isum.split_at_mut(whole);
    let groups = x16.chunks_exact(N * QK).zip(q16.chunks_exact_mut(N * QK));
    for ((xg, qg), (dg, sg)) in groups.zip(d16.chunks_exact_mut(N).zip(s16.chunks_exact_mut(N))) {
        // SAFETY: `xg` holds sixteen blocks of 32 floats, `qg` their 512
        // codes, `dg` and `sg` sixteen entries each: every load and store
        // below is inside them.
        unsafe {
            let p = xg.as_ptr();
            let load = |j: usize| {
                (
                    _mm512_loadu_ps(p.add(j * QK)),
                    _mm512_loadu_ps(p.add(j * QK + 16)),
                )
            };
            let lanes: [__m512; N] = std::array::from_fn(|j| {
                let (v0, v1) = load(j);
                _mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1))
            });
            let amax = fold_sixteen(lanes, |a, b| _mm512_max_ps(a, b));
            let nonzero = _mm512_cmp_ps_mask::<_CMP_NEQ_OQ>(amax, _mm512_setzero_ps());
            let id = _mm512_maskz_div_ps(nonzero, _mm512_set1_ps(127.0), amax);
            _mm512_storeu_ps(dg.as_mut_ptr(), _mm512_div_ps(amax, _mm512_set1_ps(127.0)));
            let sums: [__m512; N] = std::array::from_fn(|j| {
                let (v0, v1) = load(j);
                let idj = _mm512_permutexvar_ps(_mm512_set1_epi32(j as i32), id);
                let round = |x: __m512| {
                    _mm512_cvt_roundps_epi32::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
                        _mm512_mul_ps(x, idj),
                    )
                };
                let (i0, i1) = (round(v0), round(v1));
                let q = qg.as_mut_ptr().add(j * QK) as *mut __m128i;
                _mm_storeu_si128(q, _mm512_cvtsepi32_epi8(i0));
                _mm_storeu_si128(q.add(1), _mm512_cvtsepi32_epi8(i1));
                _mm512_castsi512_ps(_mm512_add_epi32(i0, i1))
            });
            let total = fold_sixteen(sums, |a, b| {
                _mm512_castsi512_ps(_mm512_add_epi32(
                    _mm512_castps_si512(a),
                    _mm512_castps_si512(b),
                ))
            });
            _mm512_storeu_ps(sg.as_mut_ptr().cast(), total);
        }
    }
    let blocks = x1.chunks_exact(QK).zip(q1.chunks_exact_mut(QK));
    for ((xb, qb), (d, isum)) in blocks.zip(d1.iter_mut().zip(s1)) {
        // SAFETY: `xb` holds 32 floats and `qb` 32 bytes: two 16-lane
        // loads and two 16-byte stores, all in bounds.
        unsafe {
            let p = xb.as_ptr();
            let (v0, v1) = (_mm512_loadu_ps(p), _mm512_loadu_ps(p.add(16)));
            let amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
            let id = _mm512_set1_ps(if amax != 0.0 { 127.0 / amax } else { 0.0 });
            let round = |x: __m512| {
                _mm512_cvt_roundps_epi32::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
                    _mm512_mul_ps(x, id),
                )
            };
            let (i0, i1) = (round(v0), round(v1));
            let q = qb.as_mut_ptr() as *mut __m128i;
            _mm_storeu_si128(q, _mm512_cvtsepi32_epi8(i0));
            _mm_storeu_si128(q.add(1), _mm512_cvtsepi32_epi8(i1));
            *d = amax / 127.0;
            *isum = _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
        }
    }
}

/// Lane `j` of the result is `op` over the sixteen lanes of `v[j]`, for
/// an `op` whose result does not depend on the order (the maximum of
/// magnitudes, an integer sum in float lanes). Each step halves the
/// vectors, pairing them and folding the halves of each pair's lanes
/// into one vector: 16 → 8 → 4 → 2 → 1, fifteen shuffle pairs in all.
#[inline]
#[target_feature(enable = "avx512f")]
fn fold_sixteen(v: [__m512; 16], op: impl Fn(__m512, __m512) -> __m512) -> __m512 {
    // Quarters 0–1 of each result hold vector 2i's eight partials, 2–3
    // vector 2i + 1's.
    let eights: [__m512; 8] = std::array::from_fn(|i| {
        let (a, b) = (v[2 * i], v[2 * i + 1]);
        op(
            _mm512_shuffle_f32x4::<0x44>(a, b),
            _mm512_shuffle_f32x4::<0xEE>(a, b),
        )
    });
    // Quarter k holds vector 4i + k's four partials.
    let fours: [__m512; 4] = std::array::from_fn(|i| {
        let (a, b) = (eights[2 * i], eights[2 * i + 1]);
        op(
            _mm512_shuffle_f32x4::<0x88>(a, b),
            _mm512_shuffle_f32x4::<0xDD>(a, b),
        )
    });
    // Quarter k: two partials of vector 8i + k, then two of 8i + 4 + k.
    let twos: [__m512; 2] = std::array::from_fn(|i| {
        let (a, b) = (fours[2 * i], fours[2 * i + 1]);
        op(
            _mm512_shuffle_ps::<0x44>(a, b),
            _mm512_shuffle_ps::<0xEE>(a, b),
        )
    });
    // Lane 4k + m: vector 4m + k, whole.
    let (a, b) = (twos[0], twos[1]);
    let folded = op(
        _mm512_shuffle_ps::<0x88>(a, b),
        _mm512_shuffle_ps::<0xDD>(a, b),
    );
    let order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    _mm512_permutexvar_ps(order, folded)
}
