//! AVX2 body of the regrouped Q4_0/Q4_1/Q8_0 product (the plain twin and
//! the layout are in `x8.rs`), and its AVX-512 VNNI form. Per group of
//! eight rows, token and block: four 32-byte loads hold every 4-bit code,
//! `and`/shift split them into low and high nibbles (Q8_0: eight loads,
//! one byte per code), and each of the eight code vectors meets four of
//! the token's codes broadcast to every lane (`maddubs` + `madd`, or one
//! `vpdpbusd`: the same integers, see `dot4.rs`): lane `j` is row `j`'s
//! sum over those four elements, the partial sum ggml's kernel keeps in
//! its lane `l`. Eight accumulators take those partial sums times `d·d_a`,
//! a ninth Q4_1's `m·s_a`, and they are added up in ggml's order at the
//! end.

use std::arch::x86_64::*;

use super::{QK, ROWS, block, chunks, head};
use crate::dtype::DType;
use crate::quant::act::Q8Row;
use crate::quant::dot4::{Avx2, Products, Vnni};
use crate::quant::x8::form::{self, Q4_0, Q4_1, Q5_0, Q8_0};

// ANCHOR: matmul_avx2
/// See [`super::matmul`].
///
/// # Safety
/// AVX2, FMA and F16C; the lengths as `super::matmul` checks them.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn matmul(dtype: DType, packed: &[u8], a: &[Q8Row<'_>], out: &mut [f32]) {
    // SAFETY: the caller's contract.
    unsafe { by_format::<Avx2>(dtype, packed, a, out) }
}

/// [`matmul`] with AVX-512 VNNI's `vpdpbusd` for the byte products (the
/// same bits).
///
/// # Safety
/// As [`matmul`], and AVX-512 VNNI and VL.
#[target_feature(enable = "avx2,fma,f16c,avx512vl,avx512vnni")]
pub unsafe fn matmul_vnni(dtype: DType, packed: &[u8], a: &[Q8Row<'_>], out: &mut [f32]) {
    // SAFETY: the caller's contract.
    unsafe { by_format::<Vnni>(dtype, packed, a, out) }
}

/// One copy of the body per format, so each has straight-line code (its
/// chunk loop unrolled, no test of the format inside it).
///
/// # Safety
/// As [`matmul`], compiled into an entry point for `P`'s instruction set.
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

// ANCHOR: prefetch_next_group
/// Ask for the same block of the next group (`group` bytes on from the
/// block at `p`, `block` bytes long), so that the weights stream in while
/// this group is multiplied, into the cache level `HINT` names
/// (`_MM_HINT_T0`: L1, `_MM_HINT_T1`: L2). Prefetches never fault; the
/// address is only computed (`wrapping_add`), never dereferenced.
///
/// Which level is faster depends on the kernel, and was measured on a
/// two-core Zen 4 guest (32 MB L3, so the model streams from memory every
/// token; `infer bench --quick`, builds alternated). The 256-bit kernels
/// ask into L1: forced onto them (`INFER_KERNELS=avx2`), one-sequence
/// decode ran at 321–334 tokens a second with `T0` and 260–286 with `T1`.
/// The 512-bit kernels, which multiply two groups at once and so ask for
/// two streams of lines, ask into L2: 210–238 with `T0` against 249–295
/// with `T1` (one thread 118–130 against 156–197), most likely because
/// twice the prefetches into L1 fill its few miss buffers and the loads
/// of the block being multiplied wait behind them. On a Xeon whose L3
/// holds the model the two hints measured alike.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(in crate::quant) fn prefetch_next_group<const HINT: i32>(
    p: *const u8,
    group: usize,
    block: usize,
) {
    let ahead = p.wrapping_add(group);
    for line in (0..block).step_by(64) {
        _mm_prefetch::<HINT>(ahead.wrapping_add(line) as *const i8);
    }
}
// ANCHOR_END: prefetch_next_group

// ANCHOR: fifth_bit_sixteen
/// Q5_0's fifth bits as 16 (or 0) under each code of chunk `k`, its low
/// nibbles' or (`hi`) its high nibbles', from the group's fifth bits `qh`
/// (32 bytes, four per row, as `x8` arranges them: bit `k` of each byte for
/// chunk `k`'s low nibbles, bit `4 + k` for its high ones): one shift to
/// bit 4 and one mask. (The 16-bit shifts carry bits across bytes, but
/// never into bit 4.)
///
/// # Safety
/// Compiled into an entry point with AVX2.
#[inline(always)]
pub(in crate::quant) unsafe fn fifth_bit_sixteen(qh: __m256i, k: usize, hi: bool) -> __m256i {
    // SAFETY: the caller's contract (AVX2).
    unsafe {
        let at_four = match (hi, k) {
            (false, 0) => _mm256_slli_epi16(qh, 4),
            (false, 1) => _mm256_slli_epi16(qh, 3),
            (false, 2) => _mm256_slli_epi16(qh, 2),
            (false, _) => _mm256_slli_epi16(qh, 1),
            (true, 0) => qh,
            (true, 1) => _mm256_srli_epi16(qh, 1),
            (true, 2) => _mm256_srli_epi16(qh, 2),
            (true, _) => _mm256_srli_epi16(qh, 3),
        };
        _mm256_and_si256(at_four, _mm256_set1_epi8(16))
    }
}
// ANCHOR_END: fifth_bit_sixteen

/// Q5_0's codes minus 16 from `nibbles` and [`fifth_bit_sixteen`]'s
/// `sixteen`: the code `nibble + 16·bit`, less 16 (ggml's `nibble | 0xF0`
/// where the bit is clear).
///
/// # Safety
/// Compiled into an entry point with AVX2.
#[inline(always)]
unsafe fn minus_sixteen(nibbles: __m256i, sixteen: __m256i) -> __m256i {
    // SAFETY: the caller's contract (AVX2).
    unsafe { _mm256_sub_epi8(_mm256_or_si256(nibbles, sixteen), _mm256_set1_epi8(16)) }
}

/// Row `j`'s sum over elements `4l..4l + 4` of a block, in lane `j`, for
/// the eight rows' codes `c` (one nibble half or, for Q8_0, one chunk)
/// and the token's codes `q`, as a float.
///
/// # Safety
/// `q` holds `4l + 4` codes; compiled into an entry point for `P`.
#[inline(always)]
unsafe fn part<P: Products>(c: __m256i, q: *const i32, l: usize, unsigned: bool) -> __m256 {
    // SAFETY: the caller's contract.
    unsafe {
        let four = _mm256_set1_epi32(q.add(l).read_unaligned());
        let zero = _mm256_setzero_si256();
        let sums = if unsigned {
            P::add4(zero, c, four)
        } else {
            // Signed codes (Q4_0's minus 8, Q8_0's), multiplied by sign as
            // ggml does (|c| times q carrying c's sign).
            P::add4(zero, _mm256_sign_epi8(c, c), _mm256_sign_epi8(four, c))
        };
        _mm256_cvtepi32_ps(sums)
    }
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
    let (h, q4_1, q8_0) = (head(dtype), F == Q4_1, F == Q8_0);
    let nk = chunks(dtype);
    let groups = out.len() / (t * ROWS);
    // SAFETY (whole body): group g's bytes are g·nb·bs .. (g + 1)·nb·bs
    // of `packed`, every activation read is inside block b < nb of its
    // row, every store inside `out`; prefetches never fault.
    unsafe {
        let m4 = _mm256_set1_epi8(0x0f);
        let eight = _mm256_set1_epi8(8);
        for g in 0..groups {
            let base = packed.as_ptr().add(g * nb * bs);
            for (i, ai) in a.iter().enumerate() {
                let mut acc = [_mm256_setzero_ps(); 8];
                let mut mins = _mm256_setzero_ps();
                for b in 0..nb {
                    let p = base.add(b * bs);
                    if i == 0 {
                        prefetch_next_group::<_MM_HINT_T0>(p, nb * bs, bs);
                    }
                    let d = _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i));
                    let dd = _mm256_mul_ps(d, _mm256_set1_ps(*ai.d.get_unchecked(b)));
                    let q = ai.qs.as_ptr().add(b * QK) as *const i32;
                    if q8_0 {
                        for (k, acc) in acc.iter_mut().enumerate().take(nk) {
                            let c = _mm256_loadu_si256(p.add(h + 32 * k) as *const __m256i);
                            *acc = _mm256_fmadd_ps(dd, part::<P>(c, q, k, false), *acc);
                        }
                    } else {
                        let qh = _mm256_loadu_si256(p.add(16) as *const __m256i);
                        for k in 0..nk {
                            let c = _mm256_loadu_si256(p.add(h + 32 * k) as *const __m256i);
                            let mut lo = _mm256_and_si256(c, m4);
                            let mut hi = _mm256_and_si256(_mm256_srli_epi16(c, 4), m4);
                            if F == Q5_0 {
                                lo = minus_sixteen(lo, fifth_bit_sixteen(qh, k, false));
                                hi = minus_sixteen(hi, fifth_bit_sixteen(qh, k, true));
                            } else if !q4_1 {
                                lo = _mm256_sub_epi8(lo, eight);
                                hi = _mm256_sub_epi8(hi, eight);
                            }
                            acc[k] = _mm256_fmadd_ps(dd, part::<P>(lo, q, k, q4_1), acc[k]);
                            acc[4 + k] =
                                _mm256_fmadd_ps(dd, part::<P>(hi, q, 4 + k, q4_1), acc[4 + k]);
                        }
                    }
                    if q4_1 {
                        let m = _mm256_cvtph_ps(_mm_loadu_si128(p.add(16) as *const __m128i));
                        mins = _mm256_fmadd_ps(m, _mm256_set1_ps(*ai.s.get_unchecked(b)), mins);
                    }
                }
                // ggml's horizontal sum of its eight lanes, here per row.
                let sum = _mm256_add_ps(
                    _mm256_add_ps(_mm256_add_ps(acc[0], acc[4]), _mm256_add_ps(acc[2], acc[6])),
                    _mm256_add_ps(_mm256_add_ps(acc[1], acc[5]), _mm256_add_ps(acc[3], acc[7])),
                );
                let v = _mm256_add_ps(sum, mins);
                let r0 = g * ROWS;
                if t == 1 {
                    _mm256_storeu_ps(out.as_mut_ptr().add(r0), v);
                } else {
                    let mut lanes = [0f32; ROWS];
                    _mm256_storeu_ps(lanes.as_mut_ptr(), v);
                    for (j, x) in lanes.into_iter().enumerate() {
                        *out.get_unchecked_mut((r0 + j) * t + i) = x;
                    }
                }
            }
        }
    }
}
// ANCHOR_END: matmul_avx2
