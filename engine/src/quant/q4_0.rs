//! Q4_0: 32 values as one f16 scale `d` and 16 bytes of 4-bit codes (18 bytes).
//!
//! ```text
//! byte  0..2   d (f16)
//! byte  2..18  qs[j] = code[j] | code[j + 16] << 4      value i = (code[i] − 8) · d
//! ```
//! The low nibbles hold the first half of the block, the high nibbles the
//! second half (not adjacent pairs).

use half::f16;

use super::QK;

/// Bytes per block.
pub const BLOCK_BYTES: usize = 18;

// ANCHOR: quantize_q4_0
/// Quantize 32 finite values: `max` is the value of largest magnitude (with
/// its sign), `d = max / −8`, `code = min(15, trunc(x / d + 8.5))`.
pub fn quantize_block(x: &[f32], out: &mut [u8]) {
    let max = x
        .iter()
        .fold(0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
    let d = max / -8.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    out[..2].copy_from_slice(&f16::from_f32(d).to_le_bytes());
    let code = |v: f32| ((v * id + 8.5) as u8).min(15);
    for j in 0..QK / 2 {
        out[2 + j] = code(x[j]) | (code(x[j + QK / 2]) << 4);
    }
}
// ANCHOR_END: quantize_q4_0

// ANCHOR: dequantize_q4_0
/// Dequantize one block into 32 values.
pub fn dequantize_block(block: &[u8], out: &mut [f32]) {
    let d = super::f16_at(block, 0);
    for (j, &byte) in block[2..2 + QK / 2].iter().enumerate() {
        let (lo, hi) = super::nibbles(byte);
        out[j] = (f32::from(lo) - 8.0) * d;
        out[j + QK / 2] = (f32::from(hi) - 8.0) * d;
    }
}
// ANCHOR_END: dequantize_q4_0
