//! The many-token regrouped product on 512-bit vectors (AVX-512 VNNI and
//! BW): two neighbouring groups of eight rows at once. The order and the
//! plain twin are in `x8_prompt.rs`, the 256-bit forms in
//! `x8_prompt_avx2.rs`.
//!
//! A 256-bit chunk holds four code bytes of each of a group's eight rows,
//! one row per 32-bit lane. Two groups' chunks side by side fill a 512-bit
//! vector with sixteen rows, and one `vpdpbusd` against a token's four
//! broadcast codes then adds the products of sixteen rows: half the
//! instructions of the 256-bit kernel for the same integers, and the
//! same float operations on each lane, so the same bits. A matrix with an
//! odd number of groups leaves its last group to the 256-bit kernel.

use std::arch::x86_64::*;

use super::{QK, ROWS, Sink, block, head};
use crate::dtype::DType;
use crate::quant::act::Q8Row;
use crate::quant::x8::avx2::prefetch_next_group;
use crate::quant::x8::avx512::{fifth_bit_sixteen, halves_f16, pair};
use crate::quant::x8::form::{self, Q4_0, Q4_1, Q5_0, Q8_0};

/// Passes products on to `sink` for rows `r0` further down (the last,
/// unpaired group of a matrix).
struct Shifted<'s, S> {
    sink: &'s mut S,
    r0: usize,
}

impl<S: Sink> Sink for Shifted<'_, S> {
    #[inline]
    fn put(&mut self, r: usize, i: usize, v: [f32; ROWS]) {
        self.sink.put(self.r0 + r, i, v);
    }
}

/// See `super::matmul`.
///
/// # Safety
/// AVX2, FMA, F16C, AVX-512F, BW, VL and VNNI; the lengths as
/// `super::matmul` or `super::matmul_into` checks them.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub unsafe fn matmul(dtype: DType, packed: &[u8], a: &[Q8Row<'_>], sink: &mut impl Sink) {
    let Some(first) = a.first() else { return };
    let group = first.d.len() * ROWS * block(dtype).0;
    let groups = packed.len() / group.max(1);
    let (paired, last) = packed.split_at(groups / 2 * 2 * group);
    // SAFETY: the caller's contract; `paired` is whole pairs of groups and
    // `last` one group or none, each with every token.
    unsafe {
        let mut i = 0;
        while i < a.len() {
            // Tiles of 8, then one of whatever is left: a step of seven
            // sequences is one pass over the weights, not three (4 + 2 + 1).
            let n = (a.len() - i).min(8);
            match n {
                8 => tile_of::<8>(dtype, paired, a, i, sink),
                7 => tile_of::<7>(dtype, paired, a, i, sink),
                6 => tile_of::<6>(dtype, paired, a, i, sink),
                5 => tile_of::<5>(dtype, paired, a, i, sink),
                4 => tile_of::<4>(dtype, paired, a, i, sink),
                3 => tile_of::<3>(dtype, paired, a, i, sink),
                2 => tile_of::<2>(dtype, paired, a, i, sink),
                _ => tile_of::<1>(dtype, paired, a, i, sink),
            }
            i += n;
        }
        if !last.is_empty() {
            let r0 = (groups - 1) * ROWS;
            let mut rest = Shifted { sink, r0 };
            super::avx2::matmul_vnni(dtype, last, a, &mut rest);
        }
    }
}

/// [`tile`] of `N` tokens for `dtype`'s format (one copy of the tile per
/// format and token count, so each has straight-line code).
///
/// # Safety
/// As [`tile`].
#[inline(always)]
unsafe fn tile_of<const N: usize>(
    dtype: DType,
    packed: &[u8],
    a: &[Q8Row<'_>],
    i0: usize,
    sink: &mut impl Sink,
) {
    // SAFETY: the caller's contract.
    unsafe {
        match dtype {
            DType::Q4_1 => tile::<Q4_1, N>(packed, a, i0, sink),
            DType::Q5_0 => tile::<Q5_0, N>(packed, a, i0, sink),
            DType::Q8_0 => tile::<Q8_0, N>(packed, a, i0, sink),
            _ => tile::<Q4_0, N>(packed, a, i0, sink),
        }
    }
}

/// Tokens `i0..i0 + N` against every pair of groups of format `F` in
/// `packed` (whole pairs), the products handed to `sink`.
///
/// # Safety
/// As [`matmul`], and `i0 + N <= a.len()`.
#[inline(always)]
unsafe fn tile<const F: u8, const N: usize>(
    packed: &[u8],
    a: &[Q8Row<'_>],
    i0: usize,
    sink: &mut impl Sink,
) {
    let dtype = form::dtype(F);
    let nb = a[0].d.len();
    let bs = ROWS * block(dtype).0;
    let h = head(dtype);
    let group = nb * bs;
    let pairs = packed.len() / (2 * group).max(1);
    let toks: [&Q8Row<'_>; N] = std::array::from_fn(|k| &a[i0 + k]);
    // SAFETY (whole body): pair g's bytes are 2g·group .. (2g + 2)·group
    // of `packed`, every activation read is inside block b < nb of its
    // row, every store inside `halves` (16 contiguous floats); prefetches never fault.
    unsafe {
        for g in 0..pairs {
            let base = packed.as_ptr().add(2 * g * group);
            let mut acc = [_mm512_setzero_ps(); N];
            for b in 0..nb {
                let (p0, p1) = (base.add(b * bs), base.add(group + b * bs));
                if i0 == 0 {
                    // The first tile streams the weights from memory.
                    prefetch_next_group::<_MM_HINT_T1>(p0, 2 * group, bs);
                    prefetch_next_group::<_MM_HINT_T1>(p1, 2 * group, bs);
                }
                let q: [*const i32; N] =
                    std::array::from_fn(|k| toks[k].qs.as_ptr().add(b * QK) as *const i32);
                // Each token's sixteen 32-bit row sums for this block.
                let isums = match F {
                    Q8_0 => {
                        let u: [*const i32; N] =
                            std::array::from_fn(|k| toks[k].qu.as_ptr().add(b * QK) as *const i32);
                        sums_q8_0::<N>(p0.add(h), p1.add(h), u)
                    }
                    Q5_0 => sums_q4::<N, true>((p0.add(h), p1.add(h)), (p0.add(16), p1.add(16)), q),
                    _ => sums_q4::<N, false>((p0.add(h), p1.add(h)), (p0, p1), q),
                };
                let d = halves_f16(p0, p1);
                let m = if F == Q4_1 {
                    halves_f16(p0.add(16), p1.add(16))
                } else {
                    _mm512_setzero_ps()
                };
                for ((acc, mut isum), ai) in acc.iter_mut().zip(isums).zip(toks) {
                    if F == Q4_0 || F == Q5_0 {
                        let offset = if F == Q5_0 { 16 } else { 8 };
                        let off = _mm512_set1_epi32(offset * *ai.isum.get_unchecked(b));
                        isum = _mm512_sub_epi32(isum, off);
                    }
                    let dd = _mm512_mul_ps(d, _mm512_set1_ps(*ai.d.get_unchecked(b)));
                    *acc = _mm512_fmadd_ps(dd, _mm512_cvtepi32_ps(isum), *acc);
                    if F == Q4_1 {
                        *acc = _mm512_fmadd_ps(m, _mm512_set1_ps(*ai.s.get_unchecked(b)), *acc);
                    }
                }
            }
            for (k, v) in acc.into_iter().enumerate() {
                // Lanes 0–7 are group 2g's rows, lanes 8–15 group 2g + 1's.
                let mut halves = [[0f32; ROWS]; 2];
                _mm512_storeu_ps(halves.as_mut_ptr().cast(), v);
                let r0 = 2 * g * ROWS;
                sink.put(r0, i0 + k, halves[0]);
                sink.put(r0 + ROWS, i0 + k, halves[1]);
            }
        }
    }
}

// ANCHOR: wide_sums
/// One block of two groups of 4-bit rows (`codes`: each group's four
/// 32-byte chunks; for Q5_0 (`FIFTH`) `qh`: each group's 32 bytes of
/// fifth bits) against each token's 32 codes (`q`): the codes as 0..15
/// (Q5_0: 0..31), each token's products added into one 32-bit sum per
/// row.
///
/// Eight tokens take 64 `vpdpbusd` per block, each on a broadcast load,
/// and about 50 other vector operations. On a 2-core Xeon (AVX-512 VNNI,
/// about 3.7 GHz) the 1,728 blocks of two groups of a 1536 × 576 Q4_1
/// matrix took 39.9 µs on one thread with the weights in L2 (`INFER_THREADS=1
/// cargo bench -p engine --bench kernels -- batch_quant/q4_1_576x1536_block_sums/8`),
/// about 85 cycles each, where the two vector ports bound it at about 58.
/// Splitting each token's chain of eight `vpdpbusd` in two
/// (separate sums for the low and high nibbles, added at the end: the same
/// integers) changed nothing measurable, so the chains' latency is not
/// what holds it back.
///
/// # Safety
/// `codes` hold 128 bytes each, `qh` 32 each (when `FIFTH`), each `q[k]`
/// 32 codes; compiled into an entry point with AVX-512 VNNI and BW.
#[inline(always)]
unsafe fn sums_q4<const N: usize, const FIFTH: bool>(
    codes: (*const u8, *const u8),
    qh: (*const u8, *const u8),
    q: [*const i32; N],
) -> [__m512i; N] {
    // SAFETY: the caller's contract.
    unsafe {
        let m4 = _mm512_set1_epi8(0x0f);
        let bits = if FIFTH {
            pair(qh.0, qh.1)
        } else {
            _mm512_setzero_si512()
        };
        let mut sums = [_mm512_setzero_si512(); N];
        for k in 0..4 {
            let c = pair(codes.0.add(32 * k), codes.1.add(32 * k));
            let mut lo = _mm512_and_si512(c, m4);
            let mut hi = _mm512_and_si512(_mm512_srli_epi16::<4>(c), m4);
            if FIFTH {
                lo = _mm512_or_si512(lo, fifth_bit_sixteen(bits, k, false));
                hi = _mm512_or_si512(hi, fifth_bit_sixteen(bits, k, true));
            }
            for (s, q) in sums.iter_mut().zip(q) {
                let ql = _mm512_set1_epi32(q.add(k).read_unaligned());
                let qh = _mm512_set1_epi32(q.add(4 + k).read_unaligned());
                *s = _mm512_dpbusd_epi32(*s, lo, ql);
                *s = _mm512_dpbusd_epi32(*s, hi, qh);
            }
        }
        sums
    }
}
// ANCHOR_END: wide_sums

/// One block of two groups of Q8_0 rows (`c0`, `c1`: each group's eight
/// 32-byte chunks) against each token's 32 codes made unsigned (`u`:
/// `q + 128`), one row per lane. `vpdpbusd` multiplies unsigned bytes by
/// signed ones, so the rows' signed codes meet `q + 128` as they are:
/// `Σ (q + 128)·c = Σ q·c + 128·Σ c`, and `Σ c` per row, the same for
/// every token, comes from one more `vpdpbusd` against bytes of 1 per
/// chunk. Each token then takes `128·Σ c` off its sums: the exact
/// integers `Σ q·c`, with one instruction per chunk and token. (No sum
/// can overflow: a block's `Σ (q + 128)·c` is at most `32 · 255 · 128`.)
///
/// # Safety
/// `c0` and `c1` hold 256 bytes each and each `u[k]` 32 codes; compiled
/// into an entry point with AVX-512 VNNI and BW.
#[inline(always)]
unsafe fn sums_q8_0<const N: usize>(
    c0: *const u8,
    c1: *const u8,
    u: [*const i32; N],
) -> [__m512i; N] {
    // SAFETY: the caller's contract.
    unsafe {
        let ones = _mm512_set1_epi8(1);
        let mut codes = _mm512_setzero_si512();
        let mut sums = [_mm512_setzero_si512(); N];
        for k in 0..8 {
            let c = pair(c0.add(32 * k), c1.add(32 * k));
            codes = _mm512_dpbusd_epi32(codes, ones, c);
            for (s, u) in sums.iter_mut().zip(u) {
                let four = _mm512_set1_epi32(u.add(k).read_unaligned());
                *s = _mm512_dpbusd_epi32(*s, four, c);
            }
        }
        let offset = _mm512_slli_epi32::<7>(codes);
        sums.map(|s| _mm512_sub_epi32(s, offset))
    }
}
