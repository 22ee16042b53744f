//! Q6_K: 256 values in 16 sub-blocks of 16; each sub-block has a signed
//! 8-bit scale under one f16 super-scale, and each value a 6-bit code
//! (210 bytes, 6.5625 bits per value).
//!
//! ```text
//! byte    0..128  ql: low 4 bits of the codes
//! byte  128..192  qh: high 2 bits of the codes
//! byte  192..208  scales (i8), one per 16 values
//! byte  208..210  d (f16)
//! ```
//! Each half of 128 values, `h`, uses 64 bytes of `ql` and 32 of `qh`;
//! for `l` in `0..32` the four values `l`, `l + 32`, `l + 64`, `l + 96`
//! of the half take the low and high nibbles of `ql[l]` and `ql[l + 32]`
//! and the bit pairs 0–1, 2–3, 4–5, 6–7 of `qh[l]`:
//!
//! ```text
//! code(l)      = ql[l]      & 15 | (qh[l] >> 0 & 3) << 4
//! code(l + 32) = ql[l + 32] & 15 | (qh[l] >> 2 & 3) << 4
//! code(l + 64) = ql[l]     >> 4  | (qh[l] >> 4 & 3) << 4
//! code(l + 96) = ql[l + 32] >> 4 | (qh[l] >> 6 & 3) << 4
//! value = d·scale · (code − 32)
//! ```
//!
//! The quantizer is ggml's reference one (`quantize_row_q6_K_ref`): each
//! sub-block's scale comes from a search over 19 grid stretches that
//! minimises `Σ x²·(scale·L − x)²`, the scales are quantized to 8 bits
//! against the one of largest magnitude, and the codes are recomputed from
//! the stored scales, rounding to nearest with halves to even.

use half::f16;

use super::nearest_int;

/// Values per super-block.
pub const QK_K: usize = 256;
/// Bytes per super-block.
pub const BLOCK_BYTES: usize = 210;

/// Fit `x ≈ scale · L` with `L` in `−nmax..nmax`, weighting each value by
/// `x²` (ggml's `make_qx_quants` with `rmse_type = 1`). Writes the codes of
/// the best fit, offset by `nmax`, into `l` (all zero for an all-zero `x`)
/// and returns the scale.
fn fit_scale(x: &[f32], nmax: i32, l: &mut [u8]) -> f32 {
    let (mut max, mut amax) = (0f32, 0f32);
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    if amax < 1e-15 {
        l.fill(0);
        return 0.0;
    }
    let code = |iscale: f32, v: f32| nearest_int(iscale * v).clamp(-nmax, nmax - 1);
    let sums = |iscale: f32| {
        let (mut sumlx, mut suml2) = (0f32, 0f32);
        for &v in x {
            let l = code(iscale, v) as f32;
            let w = v * v;
            sumlx += w * v * l;
            suml2 += w * l * l;
        }
        (sumlx, suml2)
    };
    let fill = |iscale: f32, l: &mut [u8]| {
        for (l, &v) in l.iter_mut().zip(x) {
            *l = (code(iscale, v) + nmax) as u8;
        }
    };
    let nmaxf = nmax as f32;
    let iscale = -nmaxf / max;
    fill(iscale, l);
    let (sumlx, suml2) = sums(iscale);
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in (-9..=9).filter(|&is| is != 0) {
        let iscale = -(nmaxf + 0.1 * is as f32) / max;
        let (sumlx, suml2) = sums(iscale);
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            fill(iscale, l);
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

// ANCHOR: quantize_q6_k
/// Quantize 256 finite values into one super-block.
pub fn quantize_block(x: &[f32], out: &mut [u8]) {
    let mut scales = [0f32; 16];
    let mut l = [0u8; QK_K];
    let (mut max_scale, mut max_abs) = (0f32, 0f32);
    for (j, s) in scales.iter_mut().enumerate() {
        *s = fit_scale(&x[16 * j..16 * (j + 1)], 32, &mut l[16 * j..16 * (j + 1)]);
        if s.abs() > max_abs {
            max_abs = s.abs();
            max_scale = *s;
        }
    }
    out.fill(0);
    if max_abs < 1e-15 {
        return;
    }
    let iscale = -128.0 / max_scale;
    let d = f16::from_f32(1.0 / iscale);
    out[208..210].copy_from_slice(&d.to_le_bytes());
    for (j, s) in scales.iter().enumerate() {
        out[192 + j] = nearest_int(iscale * s).min(127) as i8 as u8;
    }
    for j in 0..16 {
        let dj = d.to_f32() * f32::from(out[192 + j] as i8);
        if dj == 0.0 {
            continue;
        }
        for i in 16 * j..16 * (j + 1) {
            l[i] = (nearest_int(x[i] / dj).clamp(-32, 31) + 32) as u8;
        }
    }
    for h in 0..2 {
        let (lh, ql, qh) = (&l[128 * h..], 64 * h, 128 + 32 * h);
        for i in 0..32 {
            out[ql + i] = (lh[i] & 15) | ((lh[i + 64] & 15) << 4);
            out[ql + 32 + i] = (lh[i + 32] & 15) | ((lh[i + 96] & 15) << 4);
            out[qh + i] = (lh[i] >> 4)
                | ((lh[i + 32] >> 4) << 2)
                | ((lh[i + 64] >> 4) << 4)
                | ((lh[i + 96] >> 4) << 6);
        }
    }
}
// ANCHOR_END: quantize_q6_k

/// The 256 six-bit codes of a super-block, in element order.
pub fn codes(block: &[u8]) -> [u8; QK_K] {
    let mut c = [0u8; QK_K];
    for h in 0..2 {
        let (ql, qh) = (
            &block[64 * h..64 * h + 64],
            &block[128 + 32 * h..160 + 32 * h],
        );
        let ch = &mut c[128 * h..128 * (h + 1)];
        for i in 0..32 {
            ch[i] = (ql[i] & 15) | (qh[i] & 3) << 4;
            ch[i + 32] = (ql[i + 32] & 15) | (qh[i] >> 2 & 3) << 4;
            ch[i + 64] = (ql[i] >> 4) | (qh[i] >> 4 & 3) << 4;
            ch[i + 96] = (ql[i + 32] >> 4) | (qh[i] >> 6 & 3) << 4;
        }
    }
    c
}

// ANCHOR: dequantize_q6_k
/// Dequantize one super-block into 256 values.
pub fn dequantize_block(block: &[u8], out: &mut [f32]) {
    let d = super::f16_at(block, 208);
    for ((o, c), j) in out.iter_mut().zip(codes(block)).zip(0..) {
        let scale = f32::from(block[192 + j / 16] as i8);
        *o = d * scale * f32::from(i16::from(c) - 32);
    }
}
// ANCHOR_END: dequantize_q6_k
