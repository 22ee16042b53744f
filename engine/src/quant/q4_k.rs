//! Q4_K: 256 values (a *super-block*) in 8 sub-blocks of 32; each sub-block
//! has a 6-bit scale `sc` and a 6-bit minimum `m`, and the super-block two
//! f16 constants that scale them (144 bytes, 4.5 bits per value).
//!
//! ```text
//! byte   0..2    d    (f16)  scale of the sub-block scales
//! byte   2..4    dmin (f16)  scale of the sub-block minimums
//! byte   4..16   scales: 8 six-bit (sc, m) pairs packed in 12 bytes
//!                  j < 4:  sc = s[j] & 63,  m = s[j + 4] & 63
//!                  j ≥ 4:  sc = s[j + 4] & 15 | (s[j − 4] >> 6) << 4
//!                          m  = s[j + 4] >> 4 | (s[j] >> 6) << 4
//! byte  16..144  qs: four runs of 32 bytes; run k holds sub-block 2k in
//!                its low nibbles and sub-block 2k + 1 in its high nibbles
//! value = d·sc · code − dmin·m
//! ```
//!
//! The quantizer is ggml's reference one (`quantize_row_q4_K_ref`): each
//! sub-block's scale and minimum come from a small search that minimises a
//! weighted squared error (weights `rms(x) + |x|`), trying 21 grid
//! stretches; the eight scales and minimums are then themselves quantized
//! to 6 bits against the largest of each, and the codes recomputed from the
//! stored constants. Integer rounding is to nearest, halves to even (ggml's
//! `nearest_int`).

use half::f16;

use super::nearest_int;

/// Values per super-block.
pub const QK_K: usize = 256;
/// Bytes per super-block.
pub const BLOCK_BYTES: usize = 144;

/// Sub-block `j`'s six-bit scale and minimum from the 12 packed bytes.
pub fn scale_min(j: usize, s: &[u8]) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        (
            (s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4),
            (s[j + 4] >> 4) | ((s[j] >> 6) << 4),
        )
    }
}

/// All eight sub-blocks' scales and minimums ([`scale_min`]), four at a
/// time in 32-bit words: bytes 0..4 hold scales 0..4 in their low six bits
/// and the top two bits of scales 4..8, bytes 4..8 the same for the
/// minimums, bytes 8..12 the low four bits of scales 4..8 (low nibbles)
/// and minimums 4..8 (high nibbles).
#[inline]
pub fn scales_mins(s: &[u8]) -> ([u8; 8], [u8; 8]) {
    let word = |i: usize| u32::from_le_bytes([s[4 * i], s[4 * i + 1], s[4 * i + 2], s[4 * i + 3]]);
    let (w0, w1, w2) = (word(0), word(1), word(2));
    let (six, four, two) = (0x3f3f_3f3f, 0x0f0f_0f0f, 0x0303_0303);
    let sc = [w0 & six, (w2 & four) | ((w0 >> 6) & two) << 4];
    let m = [w1 & six, ((w2 >> 4) & four) | ((w1 >> 6) & two) << 4];
    let bytes = |v: [u32; 2]| {
        let (a, b) = (v[0].to_le_bytes(), v[1].to_le_bytes());
        [a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3]]
    };
    (bytes(sc), bytes(m))
}

/// Fit `x ≈ scale · L − min` with `L` in `0..=nmax` and `min ≥ 0`,
/// minimising `Σ w·(scale·L − min − x)²` over a few stretched grids (ggml's
/// `make_qkx2_quants` with `rmin = −1`, `rdelta = 0.1`, 20 steps). Fills
/// `l` and returns `(scale, min)`.
fn fit_scale_min(x: &[f32], w: &[f32], nmax: u8, l: &mut [u8]) -> (f32, f32) {
    let (rmin, rdelta, nstep) = (-1.0f32, 0.1f32, 20);
    let nmaxf = f32::from(nmax);
    let mut min = x[0];
    let mut max = x[0];
    let mut sum_w = w[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..x.len() {
        min = min.min(x[i]);
        max = max.max(x[i]);
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    min = min.min(0.0);
    if max == min {
        l.fill(0);
        return (0.0, -min);
    }
    let clamp = |v: i32| v.clamp(0, i32::from(nmax)) as u8;
    let mut iscale = nmaxf / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_error = 0f32;
    for i in 0..x.len() {
        l[i] = clamp(nearest_int(iscale * (x[i] - min)));
        let diff = scale * f32::from(l[i]) + min - x[i];
        best_error += w[i] * (diff * diff);
    }
    let mut aux = [0u8; 32];
    for is in 0..=nstep {
        iscale = (rmin + rdelta * is as f32 + nmaxf) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0f32, 0f32, 0f32);
        for i in 0..x.len() {
            let li = clamp(nearest_int(iscale * (x[i] - min)));
            aux[i] = li;
            let lf = f32::from(li);
            sum_l += w[i] * lf;
            sum_l2 += w[i] * lf * lf;
            sum_xl += w[i] * lf * x[i];
        }
        let det = sum_w * sum_l2 - sum_l * sum_l;
        if det > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut err = 0f32;
            for i in 0..x.len() {
                let diff = this_scale * f32::from(aux[i]) + this_min - x[i];
                err += w[i] * (diff * diff);
            }
            if err < best_error {
                l[..x.len()].copy_from_slice(&aux[..x.len()]);
                best_error = err;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

// ANCHOR: quantize_q4_k
/// Quantize 256 finite values into one super-block.
pub fn quantize_block(x: &[f32], out: &mut [u8]) {
    let mut l = [0u8; QK_K];
    let (mut scales, mut mins) = ([0f32; 8], [0f32; 8]);
    let mut weights = [0f32; 32];
    for j in 0..8 {
        let xs = &x[32 * j..32 * (j + 1)];
        let sum_x2: f32 = xs.iter().fold(0.0, |s, v| s + v * v);
        let av_x = (sum_x2 / 32.0).sqrt();
        for (w, v) in weights.iter_mut().zip(xs) {
            *w = av_x + v.abs();
        }
        (scales[j], mins[j]) = fit_scale_min(xs, &weights, 15, &mut l[32 * j..32 * (j + 1)]);
    }
    let max_scale = scales.iter().fold(0f32, |m, &s| if s > m { s } else { m });
    let max_min = mins.iter().fold(0f32, |m, &s| if s > m { s } else { m });
    let inv_scale = if max_scale > 0.0 {
        63.0 / max_scale
    } else {
        0.0
    };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    let s = &mut out[4..16];
    s.fill(0);
    for j in 0..8 {
        let ls = (nearest_int(inv_scale * scales[j]) as u8).min(63);
        let lm = (nearest_int(inv_min * mins[j]) as u8).min(63);
        if j < 4 {
            s[j] = ls;
            s[j + 4] = lm;
        } else {
            s[j + 4] = (ls & 0x0f) | ((lm & 0x0f) << 4);
            s[j - 4] |= (ls >> 4) << 6;
            s[j] |= (lm >> 4) << 6;
        }
    }
    let d = f16::from_f32(max_scale / 63.0);
    let dmin = f16::from_f32(max_min / 63.0);
    out[..2].copy_from_slice(&d.to_le_bytes());
    out[2..4].copy_from_slice(&dmin.to_le_bytes());
    // The codes again, from the constants as stored.
    for j in 0..8 {
        let (sc, m) = scale_min(j, &out[4..16]);
        let dj = d.to_f32() * f32::from(sc);
        if dj == 0.0 {
            continue;
        }
        let dm = dmin.to_f32() * f32::from(m);
        for i in 32 * j..32 * (j + 1) {
            l[i] = nearest_int((x[i] + dm) / dj).clamp(0, 15) as u8;
        }
    }
    for (k, run) in out[16..144].chunks_exact_mut(32).enumerate() {
        for (i, b) in run.iter_mut().enumerate() {
            *b = l[64 * k + i] | (l[64 * k + 32 + i] << 4);
        }
    }
}
// ANCHOR_END: quantize_q4_k

// ANCHOR: dequantize_q4_k
/// Dequantize one super-block into 256 values.
pub fn dequantize_block(block: &[u8], out: &mut [f32]) {
    let d = super::f16_at(block, 0);
    let dmin = super::f16_at(block, 2);
    for (k, run) in block[16..144].chunks_exact(32).enumerate() {
        let (sc0, m0) = scale_min(2 * k, &block[4..16]);
        let (sc1, m1) = scale_min(2 * k + 1, &block[4..16]);
        let (d0, min0) = (d * f32::from(sc0), dmin * f32::from(m0));
        let (d1, min1) = (d * f32::from(sc1), dmin * f32::from(m1));
        for (i, &byte) in run.iter().enumerate() {
            let (lo, hi) = super::nibbles(byte);
            out[64 * k + i] = d0 * f32::from(lo) - min0;
            out[64 * k + 32 + i] = d1 * f32::from(hi) - min1;
        }
    }
}
// ANCHOR_END: dequantize_q4_k

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_mins_unpacks_as_scale_min_does() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            let s: Vec<u8> = (0..12)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let (sc, m) = scales_mins(&s);
            for j in 0..8 {
                assert_eq!((sc[j], m[j]), scale_min(j, &s), "sub-block {j} of {s:?}");
            }
        }
    }
}
