//! Q5_0: 32 values as one f16 scale `d`, 4 bytes of fifth bits and 16
//! bytes of low nibbles (22 bytes).
//!
//! ```text
//! byte  0..2   d (f16)
//! byte  2..6   qh: bit i is bit 4 of code[i] (little-endian u32)
//! byte  6..22  qs[j] = low4(code[j]) | low4(code[j + 16]) << 4
//!              value i = (code[i] − 16) · d
//! ```
//! llama.cpp's Q4_K_M files fall back to Q5_0 for a Q4_K tensor whose rows
//! are not a whole number of 256-value super-blocks (SmolLM2's 576-wide
//! rows are).

use half::f16;

use super::QK;

/// Bytes per block.
pub const BLOCK_BYTES: usize = 22;

// ANCHOR: quantize_q5_0
/// Quantize 32 finite values: `max` is the value of largest magnitude (with
/// its sign), `d = max / −16`, `code = min(31, trunc(x / d + 16.5))`.
pub fn quantize_block(x: &[f32], out: &mut [u8]) {
    let max = x
        .iter()
        .fold(0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
    let d = max / -16.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    out[..2].copy_from_slice(&f16::from_f32(d).to_le_bytes());
    let code = |v: f32| ((v * id + 16.5) as u8).min(31);
    let mut qh = 0u32;
    for j in 0..QK / 2 {
        let (lo, hi) = (code(x[j]), code(x[j + QK / 2]));
        out[6 + j] = (lo & 0x0f) | ((hi & 0x0f) << 4);
        qh |= u32::from(lo >> 4) << j | u32::from(hi >> 4) << (j + QK / 2);
    }
    out[2..6].copy_from_slice(&qh.to_le_bytes());
}
// ANCHOR_END: quantize_q5_0

/// The 32 five-bit codes of a block, in element order.
pub fn codes(block: &[u8]) -> [u8; QK] {
    let qh = u32::from_le_bytes([block[2], block[3], block[4], block[5]]);
    let mut c = [0u8; QK];
    for (j, &byte) in block[6..6 + QK / 2].iter().enumerate() {
        let (lo, hi) = super::nibbles(byte);
        c[j] = lo | (((qh >> j) & 1) as u8) << 4;
        c[j + QK / 2] = hi | (((qh >> (j + QK / 2)) & 1) as u8) << 4;
    }
    c
}

// ANCHOR: dequantize_q5_0
/// Dequantize one block into 32 values.
pub fn dequantize_block(block: &[u8], out: &mut [f32]) {
    let d = super::f16_at(block, 0);
    for (o, c) in out.iter_mut().zip(codes(block)) {
        *o = (f32::from(c) - 16.0) * d;
    }
}
// ANCHOR_END: dequantize_q5_0
