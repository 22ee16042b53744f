//! Q8_0: 32 values as one f16 scale `d` and 32 signed bytes (34 bytes).
//!
//! ```text
//! byte  0..2   d (f16)
//! byte  2..34  q[0..32] (i8)      value i = q[i] · d
//! ```

use half::f16;

use super::QK;

/// Bytes per block.
pub const BLOCK_BYTES: usize = 34;

// ANCHOR: quantize_q8_0
/// Quantize 32 finite values: `d = max|x| / 127`, `q = round(x / d)`
/// (halves away from zero), `d` stored as f16.
pub fn quantize_block(x: &[f32], out: &mut [u8]) {
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    out[..2].copy_from_slice(&f16::from_f32(d).to_le_bytes());
    for (o, &v) in out[2..2 + QK].iter_mut().zip(x) {
        *o = (v * id).round() as i8 as u8;
    }
}
// ANCHOR_END: quantize_q8_0

// ANCHOR: dequantize_q8_0
/// Dequantize one block into 32 values.
pub fn dequantize_block(block: &[u8], out: &mut [f32]) {
    let d = super::f16_at(block, 0);
    for (o, &q) in out.iter_mut().zip(&block[2..2 + QK]) {
        *o = f32::from(q as i8) * d;
    }
}
// ANCHOR_END: dequantize_q8_0
