//! Grouped-query attention over an f16 cache on 512-bit vectors, with the
//! bits of the AVX2 kernel (`avx2::attend_group_f16`).
//!
//! That kernel keeps, for each key row and query head, eight lanes that
//! each sum every eighth column in order, then adds the lanes with
//! `hsum`. Here one 512-bit vector holds two key rows' eight lanes side by
//! side (row `p` in lanes 0–7, row `p + 1` in lanes 8–15), multiplied by
//! the query's eight columns repeated in both halves: the same
//! multiply-adds in the same order, half the instructions. The halves are
//! then split and summed exactly as the AVX2 kernel sums two rows.
//!
//! The weighted sum of the values needs no such care: each output column
//! adds its positions one after another at any vector width, so sixteen
//! columns go in one vector. The softmax between them runs its `exp` on
//! sixteen lanes, adding each vector's halves to the running sum in turn.
//!
//! With the cache in L2 this takes 41 % less time than the AVX2 kernel
//! (SmolLM2's nine heads over 1024 positions, one thread: 29.1 → 17.2 µs,
//! `cargo bench -p engine --bench kernels -- attention_decode_1024/f16`).
//! In a batched step the cache comes from memory, and the gain shrinks to
//! about a seventh of the attention's time.

use std::arch::x86_64::*;

use super::avx2::{by_group_size, exp8, group_shape, hsum, hsum2};
use super::avx512::half;

/// Lanes per 512-bit vector.
const W: usize = 16;

/// The query heads of one group (`q`: `g × hd`, `g ≤ 4`, `hd` a multiple of
/// 32) against their shared f16 keys and values, as
/// `avx2::attend_group_f16` computes them (the same bits): `scores` ends
/// up `g × len`, `out` is `g × hd`.
///
/// # Safety
/// The CPU must support AVX2, FMA, F16C and AVX-512F.
#[target_feature(enable = "avx2,fma,f16c,avx512f")]
pub(crate) unsafe fn attend_group_f16(
    q: &[f32],
    k: &[half::f16],
    v: &[half::f16],
    g: usize,
    scores: &mut Vec<f32>,
    out: &mut [f32],
) {
    // SAFETY: same CPU features as this function.
    unsafe { by_group_size!(g, group(q, k, v, scores, out)) }
}

/// The body of [`attend_group_f16`] for `G` heads.
///
/// # Safety
/// Compiled into [`attend_group_f16`]'s features.
#[inline(always)]
unsafe fn group<const G: usize>(
    q: &[f32],
    k: &[half::f16],
    v: &[half::f16],
    scores: &mut Vec<f32>,
    out: &mut [f32],
) {
    let (hd, len, scale) = group_shape(G, q, (k, v), scores, out);
    let (qp, kp, vp) = (q.as_ptr(), k.as_ptr(), v.as_ptr());
    // SAFETY (the loops): every row index passed is below `len`, so each
    // offset is inside `k`, `v` and `scores`; prefetches never fault.
    unsafe {
        let mut p = 0;
        // Four pairs of rows at a time, then one: the pairs' chains of
        // multiply-adds overlap instead of waiting on each other, and the
        // lane sums of eight rows are finished together.
        while p + 8 <= len {
            key_block::<G>(qp, kp, vp, p, hd, len, scale, scores);
            p += 8;
        }
        while p + 2 <= len {
            key_pair::<G>(qp, kp, vp, p, 1, hd, len, scale, scores);
            p += 2;
        }
        if p < len {
            // The last row paired with itself; only its first half is kept.
            key_pair::<G>(qp, kp, vp, p, 0, hd, len, scale, scores);
        }
        for row in scores.chunks_exact_mut(len.max(1)) {
            softmax_wide(row);
        }
        if hd.is_multiple_of(4 * W) {
            weigh_values::<G, 4>(scores, vp, len, hd, out);
        } else {
            weigh_values::<G, 2>(scores, vp, len, hd, out);
        }
    }
}

/// Columns `c..c + 8` of key rows `a` and `b`, widened into lanes 0–7 and
/// 8–15 of one vector.
///
/// # Safety
/// Both rows lie inside the keys `kp` points to (`hd` halves each);
/// compiled into [`attend_group_f16`]'s features.
#[inline(always)]
unsafe fn two_rows(kp: *const half::f16, a: usize, b: usize, hd: usize, c: usize) -> __m512 {
    // SAFETY: the caller's contract.
    unsafe {
        let lo = _mm_loadu_si128(kp.add(a * hd + c).cast());
        let hi = _mm_loadu_si128(kp.add(b * hd + c).cast());
        _mm512_cvtph_ps(_mm256_inserti128_si256::<1>(_mm256_castsi128_si256(lo), hi))
    }
}

/// The scores of rows `s` and `s + second` (`second` is 0 for a last row
/// paired with itself) for the `G` heads of a group, into
/// `scores[j·len + s..]`, each summed as `avx2::hsum` sums one row's
/// lanes. Asks for the value rows the weighted sum reads later, and for
/// the keys sixteen rows on (a sequence's cache has left the caches since
/// it was written: the weights stream through them every step). The hint
/// is T1, into L2 (`ask_for` gives the figures). A non-temporal one, meant
/// to keep the caches for the weights, made SmolLM2's eight-client decode
/// steps about a fifth slower than T0 (`infer bench-batch --clients 8`,
/// alternated with the T0 build, on a 2-core Xeon), and about a twelfth
/// slower on the keys alone.
///
/// # Safety
/// Rows `s..=s + second` lie inside `k` and `v`, `q` holds `G × hd`
/// floats and `scores` `G × len`; compiled into [`attend_group_f16`]'s
/// features.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn key_pair<const G: usize>(
    qp: *const f32,
    kp: *const half::f16,
    vp: *const half::f16,
    s: usize,
    second: usize,
    hd: usize,
    len: usize,
    scale: f32,
    scores: &mut [f32],
) {
    // SAFETY: the caller's contract.
    unsafe {
        for line in (0..(1 + second) * hd).step_by(32) {
            _mm_prefetch::<_MM_HINT_T1>(vp.wrapping_add(s * hd + line).cast());
            _mm_prefetch::<_MM_HINT_T1>(kp.wrapping_add((s + 16) * hd + line).cast());
        }
        let mut acc = [_mm512_setzero_ps(); G];
        for c in (0..hd).step_by(8) {
            let kv = two_rows(kp, s, s + second, hd, c);
            for (j, a) in acc.iter_mut().enumerate() {
                // Head j's eight columns in both halves.
                let q8 = _mm256_loadu_pd(qp.add(j * hd + c).cast());
                let qv = _mm512_castpd_ps(_mm512_broadcast_f64x4(q8));
                *a = _mm512_fmadd_ps(kv, qv, *a);
            }
        }
        for (j, a) in acc.iter().enumerate() {
            let two = _mm_mul_ps(hsum2(half(*a, false), half(*a, true)), _mm_set1_ps(scale));
            let at = scores.as_mut_ptr().add(j * len + s);
            if second == 1 {
                _mm_store_sd(at.cast(), _mm_castps_pd(two));
            } else {
                _mm_store_ss(at, two);
            }
        }
    }
}

/// The scores of key rows `p..p + 8` for the `G` heads of a group, as
/// [`key_pair`] gives them, with the lane sums of all eight rows and two
/// heads finished together in one vector ([`sums_of_eight_rows`]).
///
/// # Safety
/// As for [`key_pair`], with rows `p..p + 8`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn key_block<const G: usize>(
    qp: *const f32,
    kp: *const half::f16,
    vp: *const half::f16,
    p: usize,
    hd: usize,
    len: usize,
    scale: f32,
    scores: &mut [f32],
) {
    // SAFETY: the caller's contract.
    unsafe {
        for line in (0..8 * hd).step_by(32) {
            _mm_prefetch::<_MM_HINT_T1>(vp.wrapping_add(p * hd + line).cast());
            _mm_prefetch::<_MM_HINT_T1>(kp.wrapping_add((p + 16) * hd + line).cast());
        }
        // acc[j][i]: head j, rows p + 2i and p + 2i + 1.
        let mut acc = [[_mm512_setzero_ps(); 4]; G];
        for c in (0..hd).step_by(8) {
            let kv: [__m512; 4] =
                std::array::from_fn(|i| two_rows(kp, p + 2 * i, p + 2 * i + 1, hd, c));
            for (j, a) in acc.iter_mut().enumerate() {
                let q8 = _mm256_loadu_pd(qp.add(j * hd + c).cast());
                let qv = _mm512_castpd_ps(_mm512_broadcast_f64x4(q8));
                for (a, kv) in a.iter_mut().zip(kv) {
                    *a = _mm512_fmadd_ps(kv, qv, *a);
                }
            }
        }
        let vs = _mm512_set1_ps(scale);
        for j in (0..G).step_by(2) {
            // An odd last head is paired with itself; one half is kept.
            let k = (j + 1).min(G - 1);
            let both = _mm512_mul_ps(sums_of_eight_rows(&acc[j], &acc[k]), vs);
            _mm256_storeu_ps(scores.as_mut_ptr().add(j * len + p), half(both, false));
            if k != j {
                _mm256_storeu_ps(scores.as_mut_ptr().add(k * len + p), half(both, true));
            }
        }
    }
}

/// The lane sums of eight rows for two heads, `[a's rows 0–7, b's rows
/// 0–7]`, where `a[i]` holds row `2i` in lanes 0–7 and row `2i + 1` in
/// lanes 8–15 (and `b` likewise). Each row's eight lanes are added in
/// `avx2::hsum`'s order, `((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7))`,
/// so the same bits, but sixteen rows share each instruction's work
/// instead of one or two.
#[inline]
#[target_feature(enable = "avx512f")]
fn sums_of_eight_rows(a: &[__m512; 4], b: &[__m512; 4]) -> __m512 {
    // Step 1, lane l + lane l + 4 of each row: four rows to a vector, each
    // in a 128-bit quarter (0x88 takes quarters 0 and 2 of each operand,
    // the rows' low halves; 0xDD quarters 1 and 3, their high halves).
    let first = |x: &[__m512; 4], h: usize| {
        let (u, v) = (x[2 * h], x[2 * h + 1]);
        _mm512_add_ps(
            _mm512_shuffle_f32x4::<0x88>(u, v),
            _mm512_shuffle_f32x4::<0xDD>(u, v),
        )
    };
    // Step 2, the four sums s to (s0 + s2, s1 + s3): quarter k then holds
    // rows k and k + 4.
    let second = |x: &[__m512; 4]| {
        let (lo, hi) = (first(x, 0), first(x, 1));
        _mm512_add_ps(
            _mm512_shuffle_ps::<0x44>(lo, hi),
            _mm512_shuffle_ps::<0xEE>(lo, hi),
        )
    };
    let (ua, ub) = (second(a), second(b));
    // Step 3, the two partial sums of each row added: quarter k holds a's
    // rows k and k + 4, then b's.
    let sums = _mm512_add_ps(
        _mm512_shuffle_ps::<0x88>(ua, ub),
        _mm512_shuffle_ps::<0xDD>(ua, ub),
    );
    // Rows in order, a's then b's.
    let order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    _mm512_permutexvar_ps(order, sums)
}

/// `avx2::softmax_inplace` sixteen lanes at a time, with its bits: the
/// maximum is exact in any order, `exp` is computed lane by lane exactly
/// as `avx2::exp8` computes it, the running sum takes each vector's two
/// halves in turn (the eight-lane sum's order), and the scale is one
/// product per value.
///
/// # Safety
/// Compiled into [`attend_group_f16`]'s features.
#[inline(always)]
unsafe fn softmax_wide(x: &mut [f32]) {
    let n = x.len();
    let p = x.as_mut_ptr();
    // SAFETY: every vector access below is at `i + 16 <= n` (or `i + 8`),
    // inside `x`.
    unsafe {
        let mut mv = _mm512_set1_ps(f32::NEG_INFINITY);
        let mut i = 0;
        while i + W <= n {
            mv = _mm512_max_ps(mv, _mm512_loadu_ps(p.add(i)));
            i += W;
        }
        let m = x[i..]
            .iter()
            .copied()
            .fold(_mm512_reduce_max_ps(mv), f32::max);
        let vm = _mm512_set1_ps(m);
        let mut acc = _mm256_setzero_ps();
        i = 0;
        while i + W <= n {
            let e = exp16(_mm512_sub_ps(_mm512_loadu_ps(p.add(i)), vm));
            _mm512_storeu_ps(p.add(i), e);
            acc = _mm256_add_ps(acc, half(e, false));
            acc = _mm256_add_ps(acc, half(e, true));
            i += W;
        }
        if i + 8 <= n {
            let e = exp8(_mm256_sub_ps(_mm256_loadu_ps(p.add(i)), _mm256_set1_ps(m)));
            _mm256_storeu_ps(p.add(i), e);
            acc = _mm256_add_ps(acc, e);
            i += 8;
        }
        let mut sum = hsum(acc);
        for v in &mut x[i..] {
            *v = (*v - m).exp();
            sum += *v;
        }
        let s = 1.0 / sum;
        let vs = _mm512_set1_ps(s);
        i = 0;
        while i + W <= n {
            _mm512_storeu_ps(p.add(i), _mm512_mul_ps(_mm512_loadu_ps(p.add(i)), vs));
            i += W;
        }
        for v in &mut x[i..] {
            *v *= s;
        }
    }
}

/// `avx2::exp8` on sixteen lanes: the same operations in the same order,
/// so each lane has the same bits.
#[inline]
#[target_feature(enable = "avx512f")]
fn exp16(x: __m512) -> __m512 {
    let underflow = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, _mm512_set1_ps(-87.336_55));
    let x = _mm512_max_ps(
        _mm512_min_ps(x, _mm512_set1_ps(88.376_26)),
        _mm512_set1_ps(-87.336_55),
    );
    // Round to the nearest integer (mode 0, exceptions suppressed), as
    // `_mm256_round_ps` does there.
    let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
        _mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E)),
    );
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_359_4), x);
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.121_944_4e-4), r);
    let mut p = _mm512_set1_ps(1.987_569_1e-4);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.398_199_9e-3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.333_452e-3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.166_579_6e-2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.666_666_5e-1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5));
    let p = _mm512_fmadd_ps(
        p,
        _mm512_mul_ps(r, r),
        _mm512_add_ps(r, _mm512_set1_ps(1.0)),
    );
    let pow2 = _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_add_epi32(
        _mm512_cvtps_epi32(n),
        _mm512_set1_epi32(127),
    )));
    _mm512_maskz_mov_ps(!underflow, _mm512_mul_ps(p, pow2))
}

/// `out[j] = Σₚ scores[j][p] · v[p]` for the `G` heads of a group, `C`
/// vectors of sixteen columns at a time (each output column adds its
/// positions in order, as at every width).
///
/// # Safety
/// `v` holds `len` rows of `hd` halves, `scores` `G × len` values and
/// `out` `G × hd`, with `hd` a multiple of `16 · C`; compiled into
/// [`attend_group_f16`]'s features.
#[inline(always)]
unsafe fn weigh_values<const G: usize, const C: usize>(
    scores: &[f32],
    vp: *const half::f16,
    len: usize,
    hd: usize,
    out: &mut [f32],
) {
    // SAFETY: the caller's contract.
    unsafe {
        for c0 in (0..hd).step_by(C * W) {
            let mut acc = [[_mm512_setzero_ps(); C]; G];
            for p in 0..len {
                let row = vp.add(p * hd + c0);
                let vv: [__m512; C] = std::array::from_fn(|i| {
                    _mm512_cvtph_ps(_mm256_loadu_si256(row.add(i * W).cast()))
                });
                for (j, acc) in acc.iter_mut().enumerate() {
                    let s = _mm512_set1_ps(*scores.get_unchecked(j * len + p));
                    for (a, x) in acc.iter_mut().zip(vv) {
                        *a = _mm512_fmadd_ps(s, x, *a);
                    }
                }
            }
            for (j, acc) in acc.iter().enumerate() {
                for (i, a) in acc.iter().enumerate() {
                    _mm512_storeu_ps(out[j * hd + c0 + i * W..][..W].as_mut_ptr(), *a);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    /// Every group size, head width and count of positions (odd counts
    /// and fewer than a block of pairs included), with scores near and
    /// far apart, gives the AVX2 kernel's bits, scores and outputs alike.
    #[test]
    fn has_the_bits_of_the_avx2_kernel() {
        let features = ["avx2", "fma", "f16c", "avx512f"];
        let have = is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c")
            && is_x86_feature_detected!("avx512f");
        if !have {
            eprintln!("skipped: this CPU lacks one of {features:?}");
            return;
        }
        let mut rng = StdRng::seed_from_u64(0x9e37_79b9);
        for g in 1..=4 {
            for hd in [32, 64, 96, 128] {
                for len in 0..=37 {
                    let mut next = |n: usize| -> Vec<f32> {
                        (0..n).map(|_| rng.gen_range(-1.0f32..1.0)).collect()
                    };
                    // Large queries make scores far apart, so that some
                    // exponentials underflow to zero.
                    let mag = [1.0, 12.0, 200.0][len % 3];
                    let q: Vec<f32> = next(g * hd).into_iter().map(|x| x * mag).collect();
                    let half_of = |x: Vec<f32>| -> Vec<half::f16> {
                        x.into_iter().map(half::f16::from_f32).collect()
                    };
                    let (k, v) = (half_of(next(len * hd)), half_of(next(len * hd)));
                    let (mut want, mut got) = (vec![0.0; g * hd], vec![0.0; g * hd]);
                    let (mut s_want, mut s_got) = (Vec::new(), Vec::new());
                    // SAFETY: every feature both kernels need was detected.
                    unsafe {
                        super::super::avx2::attend_group_f16(&q, &k, &v, g, &mut s_want, &mut want);
                        attend_group_f16(&q, &k, &v, g, &mut s_got, &mut got);
                    }
                    let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                    assert_eq!(
                        bits(&s_got),
                        bits(&s_want),
                        "scores, g {g} hd {hd} len {len}"
                    );
                    assert_eq!(bits(&got), bits(&want), "out, g {g} hd {hd} len {len}");
                }
            }
        }
    }
}
