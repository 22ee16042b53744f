//! Dot products of Q5_0, Q4_K and Q6_K rows with an activation row
//! ([`Q8Row`], blocks of 32): the plain twins here, the AVX2 bodies in
//! `dot_k_avx2.rs`.
//!
//! ggml pairs its K-quants with activations quantized in blocks of 256
//! (`block_q8_K`). Here every weight format meets the same 32-value
//! activation blocks instead: a K-quant's sub-blocks of 32 (Q4_K) or two
//! of 16 (Q6_K) line up with them, the activation error is smaller (one
//! scale per 32 values, not per 256), and a layer whose stacked weights mix
//! formats (a Q4_K_M file's Q, K and V) quantizes its input once.

use super::act::Q8Row;
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
/// Q4_K row · activation row, plain: per sub-block `j` of 32 (activation
/// block `b`) `d·sc_j·d_a·Σ code·q − dmin·m_j·d_a·Σq`.
pub fn dot_q4_k_scalar(w: &[u8], a: Q8Row<'_>) -> f32 {
    let mut acc = 0f32;
    for (s, wb) in w.chunks_exact(q4_k::BLOCK_BYTES).enumerate() {
        let (d, dmin) = (super::f16_at(wb, 0), super::f16_at(wb, 2));
        for j in 0..8 {
            let b = 8 * s + j;
            let (sc, m) = q4_k::scale_min(j, &wb[4..16]);
            let run = &wb[16 + 32 * (j / 2)..16 + 32 * (j / 2 + 1)];
            let q = &a.qs[b * QK..(b + 1) * QK];
            let mut sum = 0i32;
            for (&byte, &y) in run.iter().zip(q) {
                let (lo, hi) = super::nibbles(byte);
                let code = if j % 2 == 0 { lo } else { hi };
                sum += i32::from(code) * i32::from(y);
            }
            acc += d * f32::from(sc) * a.d[b] * sum as f32
                - dmin * f32::from(m) * a.d[b] * a.isum[b] as f32;
        }
    }
    acc
}
// ANCHOR_END: dot_q4_k_scalar

/// Q6_K row · activation row, plain: per activation block `b` (two
/// sub-blocks of 16 with scales `sc₀`, `sc₁`)
/// `d·d_a·(sc₀·Σ₀ (code − 32)·q + sc₁·Σ₁ (code − 32)·q)`.
pub fn dot_q6_k_scalar(w: &[u8], a: Q8Row<'_>) -> f32 {
    let mut acc = 0f32;
    for (s, wb) in w.chunks_exact(q6_k::BLOCK_BYTES).enumerate() {
        let d = super::f16_at(wb, 208);
        let codes = q6_k::codes(wb);
        for j in 0..8 {
            let b = 8 * s + j;
            let q = &a.qs[b * QK..(b + 1) * QK];
            let mut sum = 0i32;
            for half in 0..2 {
                let sc = i32::from(wb[192 + 2 * j + half] as i8);
                let part: i32 = (0..16)
                    .map(|i| {
                        let k = 32 * j + 16 * half + i;
                        (i32::from(codes[k]) - 32) * i32::from(q[16 * half + i])
                    })
                    .sum();
                sum += sc * part;
            }
            acc += d * a.d[b] * sum as f32;
        }
    }
    acc
}
