//! Activations quantized on the fly to 8-bit blocks, so a quantized weight
//! meets an integer vector in the dot product.
//!
//! Each block of 32 activations gets `d = max|x| / 127` and
//! `q = round(x · 127 / max|x|)`, halves to even, as ggml's AVX2 quantizer
//! (the one llama.cpp runs on x86) does for its Q8_0/Q8_1 blocks. The block also carries
//! `isum = Σq` and `s = d · Σq` (ggml's Q8_1 sum): Q4_1's minimum then folds
//! into one multiply per block (`m · s`) and Q4_0's offset of 8 into one
//! subtraction (`8 · isum`). `d` and `s` are rounded to f16 as ggml stores
//! them, so the products match llama.cpp's.

use half::f16;
use half::slice::HalfFloatSliceExt;

use super::QK;
use crate::kernels::dispatch::{Level, level};

/// Several rows of activations, each quantized to blocks of 32.
#[derive(Debug, Clone, Default)]
pub struct Q8Acts {
    /// Values per row.
    pub cols: usize,
    /// Codes, `rows × cols`.
    pub qs: Vec<i8>,
    /// Block scales, `rows × cols/32`.
    pub d: Vec<f32>,
    /// `d · Σq` per block.
    pub s: Vec<f32>,
    /// `Σq` per block.
    pub isum: Vec<i32>,
}

/// One quantized activation row, borrowed from [`Q8Acts`].
#[derive(Debug, Clone, Copy)]
pub struct Q8Row<'a> {
    /// Codes (`cols`).
    pub qs: &'a [i8],
    /// Block scales.
    pub d: &'a [f32],
    /// `d · Σq` per block.
    pub s: &'a [f32],
    /// `Σq` per block.
    pub isum: &'a [i32],
}

// ANCHOR: quantize_block_scalar
/// One block of 32 activations: `d = max|x| / 127`, `q = round(x · 127 /
/// max|x|)` with halves to even, and `Σq`. Returns `(d, Σq)`.
pub fn quantize_block_scalar(x: &[f32], q: &mut [i8]) -> (f32, i32) {
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
    let mut sum = 0i32;
    for (q, &v) in q.iter_mut().zip(x) {
        // NaN (from a broken model) becomes 0 rather than poisoning the
        // integer sums; `as` saturates ±inf.
        *q = (v * id).round_ties_even() as i8;
        sum += i32::from(*q);
    }
    (amax / 127.0, sum)
}
// ANCHOR_END: quantize_block_scalar

/// [`quantize_block_scalar`] with the best kernel for this CPU.
fn quantize_block(x: &[f32], q: &mut [i8]) -> (f32, i32) {
    match (
        level(),
        <&[f32; QK]>::try_from(x),
        <&mut [i8; QK]>::try_from(q),
    ) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: level() is Avx2 or Avx512 only when the CPU has AVX2,
        // FMA and F16C.
        (Level::Avx2 | Level::Avx512, Ok(x), Ok(q)) => unsafe {
            super::dot::quantize_block_q8(x, q)
        },
        (_, Ok(x), Ok(q)) => quantize_block_scalar(x, q),
        _ => unreachable!("blocks are 32 long"),
    }
}

/// Round every value to the nearest f16 (halves to even) and back, a
/// few dozen at a time (one F16C instruction per eight where the CPU has
/// it), the same bits as `f16::from_f32(x).to_f32()` for each.
fn round_to_f16(v: &mut [f32]) {
    let mut buf = [f16::ZERO; 64];
    for chunk in v.chunks_mut(buf.len()) {
        let b = &mut buf[..chunk.len()];
        b.convert_from_f32_slice(chunk);
        b.convert_to_f32_slice(chunk);
    }
}

impl Q8Acts {
    /// Quantize `rows` rows of `cols` values (`cols` a multiple of 32),
    /// reusing this buffer's allocations.
    ///
    /// # Panics
    /// If `x.len() != rows·cols` or `cols` is not a multiple of 32.
    // ANCHOR: quantize_acts
    pub fn quantize(&mut self, x: &[f32], cols: usize) {
        assert!(cols.is_multiple_of(QK) && cols > 0 && x.len().is_multiple_of(cols));
        let blocks = x.len() / QK;
        self.cols = cols;
        self.qs.resize(x.len(), 0);
        self.d.resize(blocks, 0.0);
        self.s.resize(blocks, 0.0);
        self.isum.resize(blocks, 0);
        for (b, (xb, qb)) in x
            .chunks_exact(QK)
            .zip(self.qs.chunks_exact_mut(QK))
            .enumerate()
        {
            let (d, sum) = quantize_block(xb, qb);
            self.d[b] = d;
            self.s[b] = d * sum as f32;
            self.isum[b] = sum;
        }
        // Both scales are rounded to f16, as ggml stores them.
        round_to_f16(&mut self.d);
        round_to_f16(&mut self.s);
    }
    // ANCHOR_END: quantize_acts

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.qs.len().checked_div(self.cols).unwrap_or(0)
    }

    /// Row `r`.
    pub fn row(&self, r: usize) -> Q8Row<'_> {
        let (c, nb) = (self.cols, self.cols / QK);
        Q8Row {
            qs: &self.qs[r * c..(r + 1) * c],
            d: &self.d[r * nb..(r + 1) * nb],
            s: &self.s[r * nb..(r + 1) * nb],
            isum: &self.isum[r * nb..(r + 1) * nb],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_in_bulk_matches_one_value_at_a_time() {
        let mut s = 0x9e37_79b9u32;
        let mut v: Vec<f32> = (0..300)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                // Magnitudes from f16's subnormals to past its largest
                // value (NaN payloads aside: no scale is ever NaN).
                let x = f32::from_bits(s);
                if x.is_nan() {
                    0.0
                } else {
                    x.clamp(-1e6, 1e6) * 1e-3
                }
            })
            .chain([
                0.0,
                -0.0,
                65504.0,
                65520.0,
                1e-8,
                5.96e-8,
                2.98e-8,
                f32::INFINITY,
            ])
            .collect();
        let want: Vec<u32> = v
            .iter()
            .map(|&x| f16::from_f32(x).to_f32().to_bits())
            .collect();
        round_to_f16(&mut v);
        let got: Vec<u32> = v.iter().map(|x| x.to_bits()).collect();
        assert_eq!(got, want);
    }
}
