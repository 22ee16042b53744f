//! Dot products of Q5_0, Q4_K and Q6_K rows with an activation row
//! ([`Q8Row`]): the plain twins here, the AVX2 bodies in `dot_k_avx2.rs`.
//!
//! Q5_0 meets the activations in blocks of 32, as the other 32-value
//! formats do. The K-quants meet them in blocks of 256, as ggml pairs them
//! (`block_q8_K`, [`Q8Row::k`]): a super-block's sub-block scales are small
//! integers, so with one activation scale per 256 values every product and
//! scale inside the super-block stays an integer, and one float multiply
//! is left per 256 values (per 32 with activation blocks of 32). The
//! integers are then the ones llama.cpp computes.

use super::act::Q8Row;
use super::q4_k::QK_K;
use super::{QK, q4_k, q5_0, q6_k};

/// Q5_0 row · activation row, plain: per block `d_w·d_a·(Σ code·q − 16·Σq)`.
pub fn dot_q5_0_scalar(w: &[u8], a: Q8Row<'_>) -> f32 {
    let mut acc = 0f32;
    for (b, wb) in w.chunks_exact(q5_0::BLOCK_BYTES).enumerate() {
        let d = super::f16_at(wb, 0);
        let q = &a.qs[b * QK..(b + 1) * QK];
        let sum: i32 = q5_0::codes(wb)
            .iter()
            .zip(q)
            .map(|(&c, &y)| i32::from(c) * i32::from(y))
            .sum();
        acc += d * a.d[b] * (sum - 16 * a.isum[b]) as f32;
    }
    acc
}

// ANCHOR: dot_q4_k_scalar
/// Q4_K row · activation row (blocks of 256), plain: per super-block `s`,
/// with sub-block scales `sc_j` and minimums `m_j` (integers),
/// `d_a·d·Σ_j sc_j·Σ code·q − d_a·dmin·Σ_j m_j·Σq`; both sums are integers
/// and `Σq` comes from the activation block's sums of 16.
pub fn dot_q4_k_scalar(w: &[u8], a: Q8Row<'_>) -> f32 {
    let k = a.k;
    let mut acc = 0f32;
    for (s, wb) in w.chunks_exact(q4_k::BLOCK_BYTES).enumerate() {
        let (d, dmin) = (super::f16_at(wb, 0), super::f16_at(wb, 2));
        let q = &k.qs[s * QK_K..(s + 1) * QK_K];
        let (mut sumi, mut summ) = (0i32, 0i32);
        for j in 0..8 {
            let (sc, m) = q4_k::scale_min(j, &wb[4..16]);
            let run = &wb[16 + 32 * (j / 2)..16 + 32 * (j / 2 + 1)];
            let mut sum = 0i32;
            for (&byte, &y) in run.iter().zip(&q[32 * j..32 * (j + 1)]) {
                let (lo, hi) = super::nibbles(byte);
                let code = if j % 2 == 0 { lo } else { hi };
                sum += i32::from(code) * i32::from(y);
            }
            sumi += i32::from(sc) * sum;
            let bsum = i32::from(k.bsums[16 * s + 2 * j]) + i32::from(k.bsums[16 * s + 2 * j + 1]);
            summ += i32::from(m) * bsum;
        }
        acc += k.d[s] * d * sumi as f32 - k.d[s] * dmin * summ as f32;
    }
    acc
}
// ANCHOR_END: dot_q4_k_scalar

/// Q6_K row · activation row (blocks of 256), plain: per super-block `s`
/// `d_a·d·Σ_g sc_g·(Σ code·q − 32·Σq)` over its sixteen groups of 16
/// (`Σq` from the activation block's sums of 16), the sum an integer.
pub fn dot_q6_k_scalar(w: &[u8], a: Q8Row<'_>) -> f32 {
    let k = a.k;
    let mut acc = 0f32;
    for (s, wb) in w.chunks_exact(q6_k::BLOCK_BYTES).enumerate() {
        let d = super::f16_at(wb, 208);
        let codes = q6_k::codes(wb);
        let q = &k.qs[s * QK_K..(s + 1) * QK_K];
        let mut sumi = 0i32;
        for g in 0..16 {
            let sc = i32::from(wb[192 + g] as i8);
            let part: i32 = (16 * g..16 * (g + 1))
                .map(|i| i32::from(codes[i]) * i32::from(q[i]))
                .sum();
            sumi += sc * (part - 32 * i32::from(k.bsums[16 * s + g]));
        }
        acc += k.d[s] * d * sumi as f32;
    }
    acc
}
