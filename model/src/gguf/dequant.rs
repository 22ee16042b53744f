//! Dequantization of GGML blocks to f32, one plain loop per type.
//!
//! Layouts (ggml `ggml-common.h`): every quantized block holds 32 elements.
//! - Q8_0: f16 `d`, then 32 `i8`; `x[i] = q[i] * d`.
//! - Q4_0: f16 `d`, then 16 bytes; the low nibble of byte `j` is element `j`,
//!   the high nibble element `j + 16`; `x = (q - 8) * d`.
//! - Q4_1: f16 `d`, f16 `m`, then 16 bytes as in Q4_0; `x = q * d + m`.

use half::f16;
use rayon::prelude::*;

use super::GgmlType;

/// Elements per quantized block.
pub const QK: usize = 32;

fn f16_at(bytes: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([bytes[at], bytes[at + 1]]).to_f32()
}

// ANCHOR: dequant_q8_0
/// Dequantize one Q8_0 block (34 bytes) into 32 floats.
pub fn dequantize_block_q8_0(block: &[u8], out: &mut [f32]) {
    let d = f16_at(block, 0);
    for (o, &q) in out.iter_mut().zip(&block[2..2 + QK]) {
        *o = f32::from(q as i8) * d;
    }
}
// ANCHOR_END: dequant_q8_0

// ANCHOR: dequant_q4_0
/// Dequantize one Q4_0 block (18 bytes) into 32 floats.
pub fn dequantize_block_q4_0(block: &[u8], out: &mut [f32]) {
    let d = f16_at(block, 0);
    for (j, &byte) in block[2..2 + QK / 2].iter().enumerate() {
        out[j] = (f32::from(byte & 0x0f) - 8.0) * d;
        out[j + QK / 2] = (f32::from(byte >> 4) - 8.0) * d;
    }
}
// ANCHOR_END: dequant_q4_0

// ANCHOR: dequant_q4_1
/// Dequantize one Q4_1 block (20 bytes) into 32 floats.
pub fn dequantize_block_q4_1(block: &[u8], out: &mut [f32]) {
    let d = f16_at(block, 0);
    let m = f16_at(block, 2);
    for (j, &byte) in block[4..4 + QK / 2].iter().enumerate() {
        out[j] = f32::from(byte & 0x0f) * d + m;
        out[j + QK / 2] = f32::from(byte >> 4) * d + m;
    }
}
// ANCHOR_END: dequant_q4_1

/// Dequantize `bytes` of type `dtype` into `out`.
///
/// `bytes.len()` must be exactly `out.len() / block_size * block_bytes`
/// (the GGUF reader guarantees it); returns `false` without writing if not.
pub fn dequantize_into(dtype: GgmlType, bytes: &[u8], out: &mut [f32]) -> bool {
    let block = dtype.block_size() as usize;
    let block_bytes = dtype.block_bytes() as usize;
    if !out.len().is_multiple_of(block) || out.len() / block * block_bytes != bytes.len() {
        return false;
    }
    // Chunks of many blocks per rayon task keep the scheduling cost small.
    const BLOCKS_PER_TASK: usize = 4096;
    let out_chunk = block * BLOCKS_PER_TASK;
    let in_chunk = block_bytes * BLOCKS_PER_TASK;
    out.par_chunks_mut(out_chunk)
        .zip(bytes.par_chunks(in_chunk))
        .for_each(|(o, b)| match dtype {
            GgmlType::F32 => {
                for (x, c) in o.iter_mut().zip(b.chunks_exact(4)) {
                    *x = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                }
            }
            GgmlType::F16 => {
                for (x, c) in o.iter_mut().zip(b.chunks_exact(2)) {
                    *x = f16::from_le_bytes([c[0], c[1]]).to_f32();
                }
            }
            GgmlType::Q8_0 => {
                for (x, c) in o.chunks_exact_mut(QK).zip(b.chunks_exact(block_bytes)) {
                    dequantize_block_q8_0(c, x);
                }
            }
            GgmlType::Q4_0 => {
                for (x, c) in o.chunks_exact_mut(QK).zip(b.chunks_exact(block_bytes)) {
                    dequantize_block_q4_0(c, x);
                }
            }
            GgmlType::Q4_1 => {
                for (x, c) in o.chunks_exact_mut(QK).zip(b.chunks_exact(block_bytes)) {
                    dequantize_block_q4_1(c, x);
                }
            }
        });
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked Q4_0 block in the project's anchors: x[i] = (i - 16) / 4,
    /// d = 0.5 (f16 0x3800), qs bytes 80 91 91 a2 ... f7 f8.
    #[test]
    fn q4_0_worked_block() {
        let mut block = vec![0x00, 0x38];
        block.extend([
            0x80, 0x91, 0x91, 0xa2, 0xa2, 0xb3, 0xb3, 0xc4, 0xc4, 0xd5, 0xd5, 0xe6, 0xe6, 0xf7,
            0xf7, 0xf8,
        ]);
        let mut out = [0f32; 32];
        dequantize_block_q4_0(&block, &mut out);
        let expected = [
            -4.0, -3.5, -3.5, -3.0, -3.0, -2.5, -2.5, -2.0, -2.0, -1.5, -1.5, -1.0, -1.0, -0.5,
            -0.5, 0.0, 0.0, 0.5, 0.5, 1.0, 1.0, 1.5, 1.5, 2.0, 2.0, 2.5, 2.5, 3.0, 3.0, 3.5, 3.5,
            3.5,
        ];
        assert_eq!(out, expected);
    }

    /// The worked Q8_0 block: d stored as f16 0x2808, q = round(x / d).
    #[test]
    fn q8_0_worked_block() {
        let qs: [i8; 32] = [
            -127, -119, -111, -103, -95, -87, -79, -71, -64, -56, -48, -40, -32, -24, -16, -8, 0,
            8, 16, 24, 32, 40, 48, 56, 64, 71, 79, 87, 95, 103, 111, 119,
        ];
        let mut block = vec![0x08, 0x28];
        block.extend(qs.iter().map(|&q| q as u8));
        let mut out = [0f32; 32];
        dequantize_block_q8_0(&block, &mut out);
        for (i, (&x, &q)) in out.iter().zip(&qs).enumerate() {
            assert_eq!(
                x,
                f32::from(q) * f16::from_bits(0x2808).to_f32(),
                "element {i}"
            );
            // Within half a quantization step of the input (i - 16) / 4.
            let input = (i as f32 - 16.0) / 4.0;
            assert!((x - input).abs() <= 0.016, "element {i}: {x} vs {input}");
        }
    }

    #[test]
    fn q4_1_uses_min_and_nibble_order() {
        // d = 1.0 (0x3c00), m = -2.0 (0xc000); byte j = (hi << 4) | lo.
        let mut block = vec![0x00, 0x3c, 0x00, 0xc0];
        block.extend((0..16u8).map(|j| ((15 - j) << 4) | j));
        let mut out = [0f32; 32];
        dequantize_block_q4_1(&block, &mut out);
        for j in 0..16 {
            assert_eq!(out[j], j as f32 - 2.0);
            assert_eq!(out[j + 16], (15 - j) as f32 - 2.0);
        }
    }

    #[test]
    fn length_mismatch_is_refused() {
        let mut out = vec![0f32; 64];
        assert!(!dequantize_into(GgmlType::Q8_0, &[0u8; 34], &mut out));
        assert!(dequantize_into(GgmlType::Q8_0, &[0u8; 68], &mut out));
    }
}
