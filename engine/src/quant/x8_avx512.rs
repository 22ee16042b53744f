//! The regrouped decode product (llama.cpp's order, see `x8.rs`) on
//! 512-bit vectors with AVX-512 VNNI and BW: two neighbouring groups of
//! eight rows side by side, sixteen rows per `vpdpbusd`. Each lane sees
//! the float operations of the 256-bit kernel (`x8_avx2.rs`) in the same
//! order, so the bits are the same; a matrix with an odd number of groups
//! leaves its last group to that kernel.

use std::arch::x86_64::*;

use super::{QK, ROWS, block, chunks, head};
use crate::dtype::DType;
use crate::quant::act::Q8Row;
use crate::quant::x8::avx2::prefetch_next_group;
use crate::quant::x8::form::{self, Q4_0, Q4_1, Q5_0, Q8_0};

/// See `super::matmul`.
///
/// # Safety
/// AVX2, FMA, F16C, AVX-512F, BW, VL and VNNI; the lengths as
/// `super::matmul` checks them.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub unsafe fn matmul(dtype: DType, packed: &[u8], a: &[Q8Row<'_>], out: &mut [f32]) {
    let t = a.len();
    let groups = out.len() / (t * ROWS).max(1);
    let paired = groups / 2 * 2;
    let group = packed.len() / groups.max(1);
    let (pairs, last) = packed.split_at(paired * group);
    let (out_pairs, out_last) = out.split_at_mut(paired * ROWS * t);
    // SAFETY: the caller's contract; `pairs` and `out_pairs` are whole
    // pairs of groups, `last` and `out_last` one group or none.
    unsafe {
        match dtype {
            DType::Q4_1 => body::<Q4_1>(pairs, a, out_pairs),
            DType::Q5_0 => body::<Q5_0>(pairs, a, out_pairs),
            DType::Q8_0 => body::<Q8_0>(pairs, a, out_pairs),
            _ => body::<Q4_0>(pairs, a, out_pairs),
        }
        if !last.is_empty() {
            super::avx2::matmul_vnni(dtype, last, a, out_last);
        }
    }
}

/// Two 256-bit halves from `lo` and `hi` as one vector.
///
/// # Safety
/// 32 readable bytes at each; compiled into an entry point with AVX-512F.
#[inline(always)]
pub(in crate::quant) unsafe fn pair(lo: *const u8, hi: *const u8) -> __m512i {
    // SAFETY: the caller's contract.
    unsafe {
        let lo = _mm256_loadu_si256(lo as *const __m256i);
        _mm512_inserti64x4::<1>(
            _mm512_castsi256_si512(lo),
            _mm256_loadu_si256(hi as *const __m256i),
        )
    }
}

/// The sixteen f16 values at `lo` (eight) and `hi` (eight) as floats.
///
/// # Safety
/// 16 readable bytes at each; compiled into an entry point with AVX-512F.
#[inline(always)]
pub(in crate::quant) unsafe fn halves_f16(lo: *const u8, hi: *const u8) -> __m512 {
    // SAFETY: the caller's contract.
    unsafe {
        let both = _mm256_inserti128_si256::<1>(
            _mm256_castsi128_si256(_mm_loadu_si128(lo as *const __m128i)),
            _mm_loadu_si128(hi as *const __m128i),
        );
        _mm512_cvtph_ps(both)
    }
}

/// Row `j`'s sum over elements `4l..4l + 4` of a block, in lane `j`, for
/// the sixteen rows' codes `c` and the token's codes `q`, as a float
/// (`x8_avx2::part` on two groups; signed codes multiplied by sign:
/// `|c|` times `q` negated where `c` is negative).
///
/// # Safety
/// `q` holds `4l + 4` codes; compiled into an entry point with AVX-512
/// VNNI and BW.
#[inline(always)]
unsafe fn part(c: __m512i, q: *const i32, l: usize, unsigned: bool) -> __m512 {
    // SAFETY: the caller's contract.
    unsafe {
        let four = _mm512_set1_epi32(q.add(l).read_unaligned());
        let zero = _mm512_setzero_si512();
        let sums = if unsigned {
            _mm512_dpbusd_epi32(zero, c, four)
        } else {
            let signed = _mm512_mask_sub_epi8(four, _mm512_movepi8_mask(c), zero, four);
            _mm512_dpbusd_epi32(zero, _mm512_abs_epi8(c), signed)
        };
        _mm512_cvtepi32_ps(sums)
    }
}

/// Q5_0's fifth bits as 16 (or 0) under chunk `k`'s codes:
/// `x8_avx2::fifth_bit_sixteen` on two groups.
///
/// # Safety
/// Compiled into an entry point with AVX-512BW.
#[inline(always)]
pub(in crate::quant) unsafe fn fifth_bit_sixteen(qh: __m512i, k: usize, hi: bool) -> __m512i {
    // SAFETY: the caller's contract (AVX-512BW).
    unsafe {
        let at_four = match (hi, k) {
            (false, 0) => _mm512_slli_epi16::<4>(qh),
            (false, 1) => _mm512_slli_epi16::<3>(qh),
            (false, 2) => _mm512_slli_epi16::<2>(qh),
            (false, _) => _mm512_slli_epi16::<1>(qh),
            (true, 0) => qh,
            (true, 1) => _mm512_srli_epi16::<1>(qh),
            (true, 2) => _mm512_srli_epi16::<2>(qh),
            (true, _) => _mm512_srli_epi16::<3>(qh),
        };
        _mm512_and_si512(at_four, _mm512_set1_epi8(16))
    }
}

/// `super::matmul` for format `F` on whole pairs of groups.
///
/// # Safety
/// As [`matmul`]; `out` holds `t` products for every row of `packed`.
#[inline(always)]
unsafe fn body<const F: u8>(packed: &[u8], a: &[Q8Row<'_>], out: &mut [f32]) {
    let dtype = form::dtype(F);
    let t = a.len();
    let nb = a[0].d.len();
    let bs = ROWS * block(dtype).0;
    let (h, q4_1, q8_0) = (head(dtype), F == Q4_1, F == Q8_0);
    let nk = chunks(dtype);
    let group = nb * bs;
    let pairs = out.len() / (t * 2 * ROWS);
    // SAFETY (whole body): pair g's bytes are 2g·group .. (2g + 2)·group
    // of `packed`, every activation read is inside block b < nb of its
    // row, every store inside `out`; prefetches never fault.
    unsafe {
        let m4 = _mm512_set1_epi8(0x0f);
        let (eight, sixteen) = (_mm512_set1_epi8(8), _mm512_set1_epi8(16));
        for g in 0..pairs {
            let base = packed.as_ptr().add(2 * g * group);
            for (i, ai) in a.iter().enumerate() {
                let mut acc = [_mm512_setzero_ps(); 8];
                let mut mins = _mm512_setzero_ps();
                for b in 0..nb {
                    let (p0, p1) = (base.add(b * bs), base.add(group + b * bs));
                    if i == 0 {
                        prefetch_next_group::<_MM_HINT_T1>(p0, 2 * group, bs);
                        prefetch_next_group::<_MM_HINT_T1>(p1, 2 * group, bs);
                    }
                    let d = halves_f16(p0, p1);
                    let dd = _mm512_mul_ps(d, _mm512_set1_ps(*ai.d.get_unchecked(b)));
                    let q = ai.qs.as_ptr().add(b * QK) as *const i32;
                    if q8_0 {
                        for (k, acc) in acc.iter_mut().enumerate().take(nk) {
                            let c = pair(p0.add(h + 32 * k), p1.add(h + 32 * k));
                            *acc = _mm512_fmadd_ps(dd, part(c, q, k, false), *acc);
                        }
                    } else {
                        let qh = pair(p0.add(16), p1.add(16));
                        for k in 0..nk {
                            let c = pair(p0.add(h + 32 * k), p1.add(h + 32 * k));
                            let mut lo = _mm512_and_si512(c, m4);
                            let mut hi = _mm512_and_si512(_mm512_srli_epi16::<4>(c), m4);
                            if F == Q5_0 {
                                let five = |x, hi| {
                                    _mm512_sub_epi8(
                                        _mm512_or_si512(x, fifth_bit_sixteen(qh, k, hi)),
                                        sixteen,
                                    )
                                };
                                lo = five(lo, false);
                                hi = five(hi, true);
                            } else if !q4_1 {
                                lo = _mm512_sub_epi8(lo, eight);
                                hi = _mm512_sub_epi8(hi, eight);
                            }
                            acc[k] = _mm512_fmadd_ps(dd, part(lo, q, k, q4_1), acc[k]);
                            acc[4 + k] = _mm512_fmadd_ps(dd, part(hi, q, 4 + k, q4_1), acc[4 + k]);
                        }
                    }
                    if q4_1 {
                        let m = halves_f16(p0.add(16), p1.add(16));
                        mins = _mm512_fmadd_ps(m, _mm512_set1_ps(*ai.s.get_unchecked(b)), mins);
                    }
                }
                // ggml's horizontal sum of its eight lanes, here per row.
                let sum = _mm512_add_ps(
                    _mm512_add_ps(_mm512_add_ps(acc[0], acc[4]), _mm512_add_ps(acc[2], acc[6])),
                    _mm512_add_ps(_mm512_add_ps(acc[1], acc[5]), _mm512_add_ps(acc[3], acc[7])),
                );
                let v = _mm512_add_ps(sum, mins);
                let r0 = 2 * g * ROWS;
                if t == 1 {
                    _mm512_storeu_ps(out.as_mut_ptr().add(r0), v);
                } else {
                    let mut lanes = [0f32; 2 * ROWS];
                    _mm512_storeu_ps(lanes.as_mut_ptr(), v);
                    for (j, x) in lanes.into_iter().enumerate() {
                        *out.get_unchecked_mut((r0 + j) * t + i) = x;
                    }
                }
            }
        }
    }
}
