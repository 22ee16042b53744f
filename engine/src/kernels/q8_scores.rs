//! Attention scores over a Q8_0 key cache, as llama.cpp computes them: each
//! query head quantized to 8-bit blocks, each score an integer sum per
//! block of 32, scaled once by the key block's and the query block's
//! scales, the blocks added in order ([`dot_q8_0_scalar`], the plain
//! twin). The x86 bodies take eight key rows at a time. With AVX-512
//! VNNI, the eight rows' block is transposed once and each query head
//! needs eight `vpdpbusd`s for the eight sums (module `vnni`); with AVX2
//! alone, each row's block meets the query's in `maddubs` and `madd` and
//! the eight rows' lanes are added across. Both apply the scales on eight
//! lanes with the twin's operations in the twin's order, and the integers
//! are exact, so every CPU gives the same bits.

use crate::quant::act::Q8Acts;
use crate::quant::dot::dot_q8_0_scalar;

#[cfg(target_arch = "x86_64")]
use super::{Level, level};

/// Bytes of one Q8_0 block (an f16 scale and 32 codes).
pub(super) const Q8_0_BLOCK_BYTES: usize = 34;

/// `scores[h · len + p] = (key row p · query head h) · scale` for the
/// `len` rows of `k` (Q8_0 rows of `rb` bytes) and the first `group` rows
/// of `queries` (the query heads, quantized in blocks of 32). The rows of
/// `values` are asked for (a hint) as the keys beside them are read.
pub(super) fn q8_0_scores(
    (k, values): (&[u8], &[u8]),
    rb: usize,
    queries: &Q8Acts,
    (group, scale): (usize, f32),
    scores: &mut [f32],
) {
    let len = k.len() / rb.max(1);
    assert!(
        rb > 0 && rb.is_multiple_of(Q8_0_BLOCK_BYTES) && scores.len() >= group * len,
        "q8_0_scores: rows of {rb} bytes, {group} heads, {} scores",
        scores.len()
    );
    #[cfg(target_arch = "x86_64")]
    let keys = Keys {
        k,
        values,
        rb,
        queries,
        group,
        scale,
    };
    #[cfg(target_arch = "x86_64")]
    let first = match level() {
        // SAFETY: has_vnni() says the CPU has AVX-512 F, VL and VNNI
        // besides AVX2 and F16C.
        Level::Avx512 if group <= vnni::MAX_GROUP && crate::quant::has_vnni() => unsafe {
            vnni::eights(keys, scores)
        },
        // SAFETY: the level says the CPU has AVX2 and F16C.
        Level::Avx2 | Level::Avx512 => unsafe { avx2::eights(keys, scores) },
        _ => 0,
    };
    #[cfg(not(target_arch = "x86_64"))]
    let first = {
        // Only the x86 bodies ask for the values ahead.
        let _ = values;
        0
    };
    for (p, kr) in k.chunks_exact(rb).enumerate().skip(first) {
        for h in 0..group {
            scores[h * len + p] = dot_q8_0_scalar(kr, queries.row(h)) * scale;
        }
    }
}

/// What [`q8_0_scores`] hands its x86 bodies: the key rows (`rb` bytes
/// each), the value rows to ask for, the quantized query heads and the
/// scale.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Keys<'a> {
    k: &'a [u8],
    values: &'a [u8],
    rb: usize,
    queries: &'a Q8Acts,
    group: usize,
    scale: f32,
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{Keys, Q8_0_BLOCK_BYTES};
    use crate::quant::QK;
    use crate::quant::act::Q8Row;

    /// [`super::q8_0_scores`] for the rows in whole eights (returns how
    /// many): one pass of eight rows at a time per query head.
    ///
    /// # Safety
    /// AVX2 and F16C; the lengths as [`super::q8_0_scores`] checks them.
    #[target_feature(enable = "avx2,f16c")]
    pub(super) unsafe fn eights(c: Keys<'_>, scores: &mut [f32]) -> usize {
        let (k, rb) = (c.k, c.rb);
        let (values, queries, group, scale) = (c.values, c.queries, c.group, c.scale);
        let len = k.len() / rb;
        let eights = len / 8 * 8;
        for h in 0..group {
            let q = queries.row(h);
            for p0 in (0..eights).step_by(8) {
                if h == 0 {
                    // The first head's pass streams the rows from memory:
                    // it asks for the keys sixteen rows on and for these
                    // rows' values, which the weighted sum reads next.
                    crate::kernels::ask_for(
                        k.get((p0 + 16) * rb..(p0 + 24) * rb).unwrap_or_default(),
                    );
                    crate::kernels::ask_for(values.get(p0 * rb..(p0 + 8) * rb).unwrap_or_default());
                }
                let out = &mut scores[h * len + p0..h * len + p0 + 8];
                // SAFETY: the caller's contract covers the features.
                unsafe { eight_rows(&k[p0 * rb..(p0 + 8) * rb], rb, q, scale, out) };
            }
        }
        eights
    }

    /// A query head's (`q`) scores against eight key rows (`k`: eight
    /// rows of `rb` bytes) into `out`, with [`super::dot_q8_0_scalar`]'s
    /// bits times `scale`.
    ///
    /// # Safety
    /// Compiled into a function with AVX2 and F16C.
    ///
    /// # Panics
    /// If `k` holds fewer than eight rows, `out` fewer than eight floats,
    /// or `q` fewer than `rb / 34` blocks.
    #[inline(always)]
    unsafe fn eight_rows(k: &[u8], rb: usize, q: Q8Row<'_>, scale: f32, out: &mut [f32]) {
        let nb = rb / Q8_0_BLOCK_BYTES;
        assert!(k.len() >= 8 * rb && out.len() >= 8 && q.qs.len() >= nb * QK && q.d.len() >= nb);
        // SAFETY: every load is inside `k` or `q.qs` (checked above), the
        // store inside `out`; the caller's contract covers the features.
        unsafe {
            let ones = _mm256_set1_epi16(1);
            let mut acc = _mm256_setzero_ps();
            for b in 0..nb {
                let at = b * Q8_0_BLOCK_BYTES;
                let qb = _mm256_loadu_si256(q.qs.as_ptr().add(b * QK).cast());
                // Row r's 32 products, as eight 32-bit partial sums.
                let sums: [__m256i; 8] = std::array::from_fn(|r| {
                    let kb = _mm256_loadu_si256(k.as_ptr().add(r * rb + at + 2).cast());
                    let pairs = _mm256_maddubs_epi16(_mm256_abs_epi8(kb), _mm256_sign_epi8(qb, kb));
                    _mm256_madd_epi16(pairs, ones)
                });
                let isum = across(sums);
                // The eight rows' key scales, widened exactly.
                let dk: [u16; 8] = std::array::from_fn(|r| {
                    u16::from_le_bytes([k[r * rb + at], k[r * rb + at + 1]])
                });
                let dk = _mm256_cvtph_ps(_mm_loadu_si128(dk.as_ptr().cast()));
                // The twin's `acc += d * a.d[b] * sum as f32`, lane by lane.
                let t = _mm256_mul_ps(dk, _mm256_set1_ps(q.d[b]));
                acc = _mm256_add_ps(acc, _mm256_mul_ps(t, _mm256_cvtepi32_ps(isum)));
            }
            _mm256_storeu_ps(out.as_mut_ptr(), _mm256_mul_ps(acc, _mm256_set1_ps(scale)));
        }
    }

    /// Lane `r` of the result: the sum of `v[r]`'s eight lanes (exact
    /// integers, so any order gives the same).
    #[inline(always)]
    unsafe fn across(v: [__m256i; 8]) -> __m256i {
        // SAFETY: compiled into `eight_rows`, which has AVX2.
        unsafe {
            let t0 = _mm256_hadd_epi32(v[0], v[1]);
            let t1 = _mm256_hadd_epi32(v[2], v[3]);
            let t2 = _mm256_hadd_epi32(v[4], v[5]);
            let t3 = _mm256_hadd_epi32(v[6], v[7]);
            // Each 128-bit half: rows 0–3 (or 4–7), that half's lanes.
            let u0 = _mm256_hadd_epi32(t0, t1);
            let u1 = _mm256_hadd_epi32(t2, t3);
            let lo = _mm256_permute2x128_si256::<0x20>(u0, u1);
            let hi = _mm256_permute2x128_si256::<0x31>(u0, u1);
            _mm256_add_epi32(lo, hi)
        }
    }
}

/// Eight key rows at a time with `vpdpbusd`: each block of the eight rows
/// is transposed once (lane `r` of vector `i` holds code bytes `4i..4i + 4`
/// of row `r`), so each query head's eight broadcast groups of four codes
/// give the eight rows' sums in their own lanes, with nothing to add
/// across. `vpdpbusd` multiplies unsigned bytes by signed ones, so the
/// keys go in as `k + 128`, and each sum gives back `128 · Σq`, the query
/// block's sum. The same integers as the AVX2 body, the same float steps.
#[cfg(target_arch = "x86_64")]
mod vnni {
    use std::arch::x86_64::*;

    use super::{Keys, Q8_0_BLOCK_BYTES};
    use crate::kernels::avx2::transpose8;
    use crate::quant::QK;

    /// The most query heads per KV head this body takes (their sums stay
    /// in registers); more take the AVX2 body.
    pub(super) const MAX_GROUP: usize = 8;

    /// [`super::q8_0_scores`] for the rows in whole eights (returns how
    /// many).
    ///
    /// # Safety
    /// AVX-512 F, VL and VNNI, AVX2 and F16C.
    ///
    /// # Panics
    /// If `group > MAX_GROUP`, `scores` is short, or a query head has
    /// fewer blocks than a key row.
    #[target_feature(enable = "avx2,f16c,avx512f,avx512vl,avx512vnni")]
    pub(super) unsafe fn eights(c: Keys<'_>, scores: &mut [f32]) -> usize {
        let Keys { k, rb, group, .. } = c;
        let (values, queries, scale) = (c.values, c.queries, c.scale);
        let len = k.len() / rb;
        let nb = rb / Q8_0_BLOCK_BYTES;
        let eights = len / 8 * 8;
        assert!(group <= MAX_GROUP && scores.len() >= group * len);
        if group == 0 {
            return 0;
        }
        let heads: [_; MAX_GROUP] = std::array::from_fn(|h| queries.row(h.min(group - 1)));
        let fits = |q: &crate::quant::act::Q8Row<'_>| {
            q.qs.len() >= nb * QK && q.d.len() >= nb && q.isum.len() >= nb
        };
        assert!(
            heads.iter().all(fits),
            "q8_0 scores: a query head shorter than a key row"
        );
        // SAFETY: every load is inside `k` (rows p0..p0 + 8 <= len) or a
        // head's codes (checked above), every store inside `scores`; the
        // caller's contract covers the features.
        unsafe {
            let flip = _mm256_set1_epi8(-128);
            for p0 in (0..eights).step_by(8) {
                crate::kernels::ask_for(k.get((p0 + 16) * rb..(p0 + 24) * rb).unwrap_or_default());
                crate::kernels::ask_for(values.get(p0 * rb..(p0 + 8) * rb).unwrap_or_default());
                let mut acc = [_mm256_setzero_ps(); MAX_GROUP];
                for b in 0..nb {
                    let at = b * Q8_0_BLOCK_BYTES;
                    let row = |r: usize| k.as_ptr().add((p0 + r) * rb + at);
                    let rows: [__m256i; 8] =
                        std::array::from_fn(|r| _mm256_loadu_si256(row(r).add(2).cast()));
                    // Lane r of column i: codes 4i..4i + 4 of row r.
                    let cols = transpose8(rows.map(|r| _mm256_castsi256_ps(r)))
                        .map(|c| _mm256_xor_si256(_mm256_castps_si256(c), flip));
                    let dk: [u16; 8] =
                        std::array::from_fn(|r| row(r).cast::<u16>().read_unaligned());
                    let dk = _mm256_cvtph_ps(_mm_loadu_si128(dk.as_ptr().cast()));
                    for (acc, q) in acc.iter_mut().zip(&heads).take(group) {
                        let qp = q.qs.as_ptr().add(b * QK).cast::<i32>();
                        let mut s = _mm256_setzero_si256();
                        for (i, c) in cols.iter().enumerate() {
                            let four = _mm256_set1_epi32(qp.add(i).read_unaligned());
                            s = _mm256_dpbusd_epi32(s, *c, four);
                        }
                        let isum = _mm256_sub_epi32(s, _mm256_set1_epi32(128 * q.isum[b]));
                        // The plain loop's `acc += d * a.d[b] * sum as f32`.
                        let t = _mm256_mul_ps(dk, _mm256_set1_ps(q.d[b]));
                        *acc = _mm256_add_ps(*acc, _mm256_mul_ps(t, _mm256_cvtepi32_ps(isum)));
                    }
                }
                for (h, acc) in acc.iter().enumerate().take(group) {
                    let out = scores[h * len + p0..h * len + p0 + 8].as_mut_ptr();
                    _mm256_storeu_ps(out, _mm256_mul_ps(*acc, _mm256_set1_ps(scale)));
                }
            }
        }
        eights
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::QK;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    /// Every score has the plain dot product's bits, for several head
    /// widths and groups, position counts around multiples of eight, and
    /// keys with all-zero blocks and codes of −127 and 127.
    #[test]
    fn scores_have_the_plain_dot_products_bits() {
        let mut rng = StdRng::seed_from_u64(9);
        for hd in [32, 64, 128] {
            for group in [1, 3, 4] {
                for len in [0, 1, 7, 8, 9, 16, 23] {
                    let mut keys: Vec<f32> =
                        (0..len * hd).map(|_| rng.gen_range(-3.0f32..3.0)).collect();
                    if len > 2 {
                        keys[..QK].fill(0.0);
                        keys[hd..hd + QK]
                            .iter_mut()
                            .enumerate()
                            .for_each(|(i, x)| *x = if i % 2 == 0 { 4.0 } else { -4.0 });
                    }
                    let k = crate::quant::quantize(crate::DType::Q8_0, &keys).unwrap();
                    let qs: Vec<f32> = (0..group * hd)
                        .map(|_| rng.gen_range(-2.0f32..2.0))
                        .collect();
                    let mut queries = Q8Acts::default();
                    queries.quantize(&qs, hd);
                    let rb = hd / QK * Q8_0_BLOCK_BYTES;
                    let scale = 1.0 / (hd as f32).sqrt();
                    let mut got = vec![f32::NAN; group * len];
                    q8_0_scores((&k, &k), rb, &queries, (group, scale), &mut got);
                    let check = |got: &[f32], upto: usize, body: &str| {
                        for h in 0..group {
                            for (p, kr) in k.chunks_exact(rb).enumerate().take(upto) {
                                let want = dot_q8_0_scalar(kr, queries.row(h)) * scale;
                                assert_eq!(
                                    got[h * len + p].to_bits(),
                                    want.to_bits(),
                                    "{body}: hd {hd} group {group} len {len} head {h} row {p}"
                                );
                            }
                        }
                    };
                    check(&got, len, "dispatched");
                    // Each x86 body this CPU has, whichever the dispatcher
                    // picks, on the rows in whole eights.
                    #[cfg(target_arch = "x86_64")]
                    {
                        let keys = Keys {
                            k: &k,
                            values: &k,
                            rb,
                            queries: &queries,
                            group,
                            scale,
                        };
                        if crate::dispatch::detect() >= Level::Avx2 {
                            let mut got = vec![f32::NAN; group * len];
                            // SAFETY: the CPU has AVX2 and F16C (checked).
                            let n = unsafe { avx2::eights(keys, &mut got) };
                            check(&got, n, "avx2");
                        }
                        if crate::quant::has_vnni() {
                            let mut got = vec![f32::NAN; group * len];
                            // SAFETY: has_vnni() says the CPU has AVX-512
                            // F, VL and VNNI.
                            let n = unsafe { vnni::eights(keys, &mut got) };
                            check(&got, n, "vnni");
                        }
                    }
                }
            }
        }
    }
}
