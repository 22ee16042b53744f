//! Q4_1: 32 values as an f16 scale `d`, an f16 minimum `m` and 16 bytes of
//! 4-bit codes (20 bytes).
//!
//! ```text
//! byte  0..2   d (f16)
//! byte  2..4   m (f16)
//! byte  4..20  qs[j] = code[j] | code[j + 16] << 4      value i = code[i] · d + m
//! ```

use half::f16;

use super::QK;

/// Bytes per block.
pub const BLOCK_BYTES: usize = 20;

// ANCHOR: quantize_q4_1
/// Quantize 32 finite values: `m = min x`, `d = (max x − m) / 15`,
/// `code = min(15, trunc((x − m) / d + 0.5))`.
pub fn quantize_block(x: &[f32], out: &mut [u8]) {
    let (min, max) = x
        .iter()
        .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let d = (max - min) / 15.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    out[..2].copy_from_slice(&f16::from_f32(d).to_le_bytes());
    out[2..4].copy_from_slice(&f16::from_f32(min).to_le_bytes());
    let code = |v: f32| (((v - min) * id + 0.5) as u8).min(15);
    for j in 0..QK / 2 {
        out[4 + j] = code(x[j]) | (code(x[j + QK / 2]) << 4);
    }
}
// ANCHOR_END: quantize_q4_1

// ANCHOR: dequantize_q4_1
/// Dequantize one block into 32 values.
pub fn dequantize_block(block: &[u8], out: &mut [f32]) {
    let d = super::f16_at(block, 0);
    let m = super::f16_at(block, 2);
    for (j, &byte) in block[4..4 + QK / 2].iter().enumerate() {
        let (lo, hi) = super::nibbles(byte);
        out[j] = f32::from(lo) * d + m;
        out[j + QK / 2] = f32::from(hi) * d + m;
    }
}
// ANCHOR_END: dequantize_q4_1
