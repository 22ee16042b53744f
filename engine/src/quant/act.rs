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
//!
//! The K-quants (Q4_K, Q6_K) meet the same activations in blocks of 256
//! instead, ggml's `block_q8_K` ([`quantize_k_block`]): one f32 scale per
//! 256 values and the sums of each 16 codes, so a super-block's integer
//! sub-block scales multiply integer sums and only one or two float
//! multiplies are left per 256 products.

use half::f16;
use half::slice::HalfFloatSliceExt;

use super::QK;
use super::q4_k::QK_K;
#[cfg(target_arch = "x86_64")]
use crate::dispatch::Level;
use crate::dispatch::level;

/// Several rows of activations, each quantized to blocks of 32, of 256
/// ([`Q8Acts::k`]), or both.
#[derive(Debug, Clone, Default)]
pub struct Q8Acts {
    /// Values per row.
    pub cols: usize,
    /// Codes, `rows × cols` (empty if only blocks of 256 were asked for).
    pub qs: Vec<i8>,
    /// The same codes as unsigned bytes, `q + 128` (`q ^ 0x80`), for a
    /// kernel whose byte product takes one side unsigned and the other
    /// signed when the weights are the signed side (Q8_0's on AVX-512
    /// VNNI).
    pub qu: Vec<u8>,
    /// Block scales, `rows × cols/32`.
    pub d: Vec<f32>,
    /// `d · Σq` per block.
    pub s: Vec<f32>,
    /// `Σq` per block.
    pub isum: Vec<i32>,
    /// The same rows in blocks of 256 for the K-quants (empty unless
    /// asked for: [`Q8Acts::quantize_blocks`]).
    pub k: Q8KActs,
}

/// Activations in ggml's `block_q8_K` form: per 256 values one f32 scale,
/// 256 codes and sixteen sums of 16 codes.
#[derive(Debug, Clone, Default)]
pub struct Q8KActs {
    /// Codes, `rows × cols`.
    pub qs: Vec<i8>,
    /// Block scales, `rows × cols/256`.
    pub d: Vec<f32>,
    /// `Σq` per 16 codes, `rows × cols/16`.
    pub bsums: Vec<i16>,
}

/// One row of [`Q8KActs`] (empty slices when the row was quantized in
/// blocks of 32 only).
#[derive(Debug, Clone, Copy)]
pub struct Q8KRow<'a> {
    /// Codes (`cols`).
    pub qs: &'a [i8],
    /// Block scales, one per 256 codes.
    pub d: &'a [f32],
    /// `Σq` per 16 codes.
    pub bsums: &'a [i16],
}

/// One quantized activation row, borrowed from [`Q8Acts`] (slices of a
/// block size that was not asked for are empty).
#[derive(Debug, Clone, Copy)]
pub struct Q8Row<'a> {
    /// Codes (`cols`).
    pub qs: &'a [i8],
    /// The codes as unsigned bytes, `q + 128` (`cols`).
    pub qu: &'a [u8],
    /// Block scales.
    pub d: &'a [f32],
    /// `d · Σq` per block.
    pub s: &'a [f32],
    /// `Σq` per block.
    pub isum: &'a [i32],
    /// The row in blocks of 256, for the K-quants (empty unless the
    /// activations were quantized for them).
    pub k: Q8KRow<'a>,
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

// ANCHOR: quantize_k_block
/// One block of 256 activations as ggml's `quantize_row_q8_K` makes it:
/// the value of largest magnitude (the first, on a tie) maps to −127,
/// `q = min(127, round(x · iscale))` with `iscale = −127 / max` and halves
/// to even, and the scale is `1 / iscale` (negative when `max` is
/// positive: the codes come out sign-flipped and the scale flips them
/// back). Fills `bsums` with the sums of each 16 codes and returns the
/// scale.
pub fn quantize_k_block(x: &[f32], q: &mut [i8], bsums: &mut [i16]) -> f32 {
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let Some(&max) = x.iter().find(|v| v.abs() == amax).filter(|_| amax != 0.0) else {
        q.fill(0);
        bsums.fill(0);
        return 0.0;
    };
    let iscale = -127.0 / max;
    for (q, &v) in q.iter_mut().zip(x) {
        // ggml's nearest_int: adding 1.5·2²³ leaves the rounded integer
        // (halves to even) in the low mantissa bits, in plain float adds
        // that vectorize.
        let r = (iscale * v + 12_582_912.0).to_bits() as i32;
        *q = ((r & 0x007f_ffff) - 0x0040_0000).min(127) as i8;
    }
    for (s, q16) in bsums.iter_mut().zip(q.chunks_exact(16)) {
        *s = q16.iter().map(|&v| i16::from(v)).sum();
    }
    1.0 / iscale
}
// ANCHOR_END: quantize_k_block

#[cfg(target_arch = "x86_64")]
#[path = "act_x86.rs"]
mod x86;

/// [`quantize_block_scalar`] for every block of 32 in `x` (codes into `qs`,
/// `max|x| / 127` into `d`, `Σq` into `isum`) with the best kernel for this
/// CPU. Every level gives the plain twin's bits for finite input.
///
/// # Panics
/// If `qs` is shorter than `x` or `d` and `isum` have fewer entries than
/// `x` has blocks.
fn quantize_row_blocks(x: &[f32], qs: &mut [i8], d: &mut [f32], isum: &mut [i32]) {
    let blocks = x.len() / QK;
    assert!(qs.len() >= blocks * QK && d.len() >= blocks && isum.len() >= blocks);
    let (x, qs) = (&x[..blocks * QK], &mut qs[..blocks * QK]);
    let (d, isum) = (&mut d[..blocks], &mut isum[..blocks]);
    match level() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: level() is Avx512 only when the CPU has AVX-512F besides
        // AVX2, FMA and F16C; the lengths were cut to whole blocks above.
        Level::Avx512 => unsafe { x86::quantize_blocks_avx512(x, qs, d, isum) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: level() is Avx2 only when the CPU has AVX2, FMA and F16C.
        Level::Avx2 => unsafe { x86::quantize_blocks_avx2(x, qs, d, isum) },
        _ => quantize_row_blocks_scalar(x, qs, d, isum),
    }
}

/// The plain loop of [`quantize_row_blocks`].
fn quantize_row_blocks_scalar(x: &[f32], qs: &mut [i8], d: &mut [f32], isum: &mut [i32]) {
    let blocks = x.chunks_exact(QK).zip(qs.chunks_exact_mut(QK));
    for ((xb, qb), (d, isum)) in blocks.zip(d.iter_mut().zip(isum)) {
        (*d, *isum) = quantize_block_scalar(xb, qb);
    }
}

/// Round every value to the nearest f16 (halves to even) and back, a
/// few dozen at a time with the `half` crate's slice conversions, the
/// same bits as `f16::from_f32(x).to_f32()` for each. These are block
/// scales, one per 32 activations, so the way back need not be the
/// engine's faster widening kernel.
fn round_to_f16(v: &mut [f32]) {
    let mut buf = [f16::ZERO; 64];
    for chunk in v.chunks_mut(buf.len()) {
        let b = &mut buf[..chunk.len()];
        b.convert_from_f32_slice(chunk);
        b.convert_to_f32_slice(chunk);
    }
}

impl Q8Acts {
    /// Quantize `rows` rows of `cols` values (`cols` a multiple of 32) in
    /// blocks of 32, reusing this buffer's allocations.
    ///
    /// # Panics
    /// If `x.len() != rows·cols` or `cols` is not a multiple of 32.
    pub fn quantize(&mut self, x: &[f32], cols: usize) {
        self.quantize_blocks(x, cols, true, false);
    }

    /// Quantize `rows` rows of `cols` values in blocks of 32 (`of_32`, for
    /// the 32-value formats) and in blocks of 256 (`of_256`, [`Q8Acts::k`],
    /// for Q4_K and Q6_K), reusing this buffer's allocations; a size not
    /// asked for is left empty.
    ///
    /// # Panics
    /// If `x.len() != rows·cols`, `cols` is not a multiple of 32, or
    /// `of_256` and `cols` is not a multiple of 256.
    // ANCHOR: quantize_acts
    pub fn quantize_blocks(&mut self, x: &[f32], cols: usize, of_32: bool, of_256: bool) {
        assert!(cols.is_multiple_of(QK) && cols > 0 && x.len().is_multiple_of(cols));
        assert!(
            !of_256 || cols.is_multiple_of(QK_K),
            "blocks of 256 for {cols} columns"
        );
        self.cols = cols;
        self.size_32(if of_32 { x.len() } else { 0 });
        if of_32 {
            self.whole().quantize(x);
        }
        // The K-quants' blocks of 256.
        let k = &mut self.k;
        if of_256 {
            k.qs.resize(x.len(), 0);
            k.d.resize(x.len() / QK_K, 0.0);
            k.bsums.resize(x.len() / 16, 0);
            for (((xb, qb), d), s) in x
                .chunks_exact(QK_K)
                .zip(k.qs.chunks_exact_mut(QK_K))
                .zip(k.d.iter_mut())
                .zip(k.bsums.chunks_exact_mut(QK_K / 16))
            {
                *d = quantize_k_block(xb, qb, s);
            }
        } else {
            k.qs.clear();
            k.d.clear();
            k.bsums.clear();
        }
    }
    // ANCHOR_END: quantize_acts

    /// Room for `values` activations in blocks of 32 (their codes, both
    /// forms, and each block's scale and sums).
    fn size_32(&mut self, values: usize) {
        let blocks = values / QK;
        self.qs.resize(blocks * QK, 0);
        self.qu.resize(blocks * QK, 0);
        self.d.resize(blocks, 0.0);
        self.s.resize(blocks, 0.0);
        self.isum.resize(blocks, 0);
    }

    /// Every block of 32 as one run.
    fn whole(&mut self) -> Q8Run<'_> {
        Q8Run {
            qs: &mut self.qs,
            qu: &mut self.qu,
            d: &mut self.d,
            s: &mut self.s,
            isum: &mut self.isum,
        }
    }

    /// Room for `rows` rows of `cols` values in blocks of 32 (none of 256),
    /// handed out in runs of `chunk` values for whoever computes those
    /// values to quantize them where they are still in its cache:
    /// `runs[c][i]` is row `i`'s values `c·chunk..(c + 1)·chunk`. Once
    /// every run has been quantized, the buffer holds what
    /// [`Q8Acts::quantize`] gives the rows.
    ///
    /// # Panics
    /// If `cols` or `chunk` is not a multiple of 32.
    pub fn runs(&mut self, rows: usize, cols: usize, chunk: usize) -> Vec<Vec<Q8Run<'_>>> {
        assert!(
            cols.is_multiple_of(QK) && chunk.is_multiple_of(QK) && chunk > 0,
            "runs of {chunk} in rows of {cols}: not whole blocks of {QK}"
        );
        self.cols = cols;
        self.size_32(rows * cols);
        let k = &mut self.k;
        k.qs.clear();
        k.d.clear();
        k.bsums.clear();
        let mut runs: Vec<Vec<Q8Run<'_>>> = (0..cols.div_ceil(chunk))
            .map(|_| Vec::with_capacity(rows))
            .collect();
        let mut row = self.whole();
        for _ in 0..rows {
            let (mut this, rest) = row.split(cols);
            row = rest;
            for r in &mut runs {
                let len = chunk.min(this.qs.len());
                let (run, tail) = this.split(len);
                r.push(run);
                this = tail;
            }
        }
        runs
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.qs
            .len()
            .max(self.k.qs.len())
            .checked_div(self.cols)
            .unwrap_or(0)
    }

    /// Row `r`.
    pub fn row(&self, r: usize) -> Q8Row<'_> {
        let c = self.cols;
        let at = |len: usize, v_len: usize| {
            if v_len == 0 {
                0..0
            } else {
                r * len..(r + 1) * len
            }
        };
        let (b32, k) = (self.qs.len(), &self.k);
        let b256 = k.qs.len();
        Q8Row {
            qs: &self.qs[at(c, b32)],
            qu: &self.qu[at(c, b32)],
            d: &self.d[at(c / QK, b32)],
            s: &self.s[at(c / QK, b32)],
            isum: &self.isum[at(c / QK, b32)],
            k: Q8KRow {
                qs: &k.qs[at(c, b256)],
                d: &k.d[at(c / QK_K, b256)],
                bsums: &k.bsums[at(c / 16, b256)],
            },
        }
    }
}

/// A run of whole blocks of 32 in a [`Q8Acts`], borrowed to be filled
/// ([`Q8Acts::runs`]).
#[derive(Debug)]
pub struct Q8Run<'a> {
    qs: &'a mut [i8],
    qu: &'a mut [u8],
    d: &'a mut [f32],
    s: &'a mut [f32],
    isum: &'a mut [i32],
}

impl<'a> Q8Run<'a> {
    /// The first `values` (whole blocks) and the rest.
    fn split(self, values: usize) -> (Q8Run<'a>, Q8Run<'a>) {
        let b = values / QK;
        let (qs, qs2) = self.qs.split_at_mut(values);
        let (qu, qu2) = self.qu.split_at_mut(values);
        let (d, d2) = self.d.split_at_mut(b);
        let (s, s2) = self.s.split_at_mut(b);
        let (isum, isum2) = self.isum.split_at_mut(b);
        (
            Q8Run { qs, qu, d, s, isum },
            Q8Run {
                qs: qs2,
                qu: qu2,
                d: d2,
                s: s2,
                isum: isum2,
            },
        )
    }

    // ANCHOR: quantize_run
    /// Quantize `x`, this run's values, block by block as
    /// [`Q8Acts::quantize`] does (the same bits).
    ///
    /// # Panics
    /// If `x` is not as long as the run.
    pub fn quantize(&mut self, x: &[f32]) {
        assert_eq!(
            x.len(),
            self.qs.len(),
            "Q8Run::quantize: values for the run"
        );
        quantize_row_blocks(x, self.qs, self.d, self.isum);
        for (u, &q) in self.qu.iter_mut().zip(self.qs.iter()) {
            *u = q as u8 ^ 0x80;
        }
        for ((s, &d), &sum) in self.s.iter_mut().zip(self.d.iter()).zip(self.isum.iter()) {
            *s = d * sum as f32;
        }
        // Both scales are rounded to f16, as ggml stores them.
        round_to_f16(self.d);
        round_to_f16(self.s);
    }
    // ANCHOR_END: quantize_run
}

impl Q8Row<'_> {
    /// Values in the row (in whichever block size it was quantized).
    pub fn cols(&self) -> usize {
        self.qs.len().max(self.k.qs.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row quantizer under test: codes, scales and sums of every block.
    type RowQuantizer<'f> = &'f dyn Fn(&[f32], &mut [i8], &mut [f32], &mut [i32]);

    /// Each x86 level's row quantizer gives the plain loop's codes,
    /// scales and sums, over rows of many blocks: random values at three
    /// magnitudes, an all-zero block, and blocks of exact halves (ties for
    /// the rounding).
    #[test]
    fn row_quantizers_have_the_plain_bits_at_every_level() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x2545_f491);
        let mut next = || rng.gen_range(-1.0f32..1.0);
        let mut x = Vec::new();
        for scale in [1.0f32, 300.0, 1e-4] {
            x.extend((0..5 * QK).map(|_| next() * scale));
        }
        x.extend([0.0; QK]);
        // max|x| = 127 makes the codes the values themselves: each half
        // rounds to the even neighbour.
        x.extend((0..QK).map(|i| if i == 0 { 127.0 } else { i as f32 - 15.5 }));
        x.extend((0..QK).map(|i| -(i as f32) * 0.5));
        // The same blocks turned around, so that each one lands both among
        // sixteen blocks folded together and among the odd ones after them;
        // and the first block alone.
        let rows = [
            x.clone(),
            x.chunks_exact(QK).rev().flatten().copied().collect(),
            x[..QK].to_vec(),
        ];
        for (r, x) in rows.iter().enumerate() {
            let blocks = x.len() / QK;
            let run = |f: RowQuantizer<'_>| {
                let (mut q, mut d, mut sum) =
                    (vec![0i8; x.len()], vec![0f32; blocks], vec![0; blocks]);
                f(x, &mut q, &mut d, &mut sum);
                (q, d.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), sum)
            };
            let plain = run(&quantize_row_blocks_scalar);
            assert_eq!(run(&quantize_row_blocks), plain, "dispatched, row {r}");
            #[cfg(target_arch = "x86_64")]
            {
                if level() >= Level::Avx2 {
                    // SAFETY: the CPU has AVX2, FMA and F16C.
                    let avx2 = run(&|x, q, d, s| unsafe { x86::quantize_blocks_avx2(x, q, d, s) });
                    assert_eq!(avx2, plain, "avx2, row {r}");
                }
                if level() >= Level::Avx512 {
                    // SAFETY: the CPU has AVX-512F besides AVX2.
                    let wide =
                        run(&|x, q, d, s| unsafe { x86::quantize_blocks_avx512(x, q, d, s) });
                    assert_eq!(wide, plain, "avx512, row {r}");
                }
            }
        }
    }

    proptest::proptest! {
        /// The dispatched row quantizer gives the plain loop's bits for rows
        /// of any number of blocks (so any split into folded sixteens and
        /// single blocks), each block of its own kind: random values at a
        /// random magnitude, all zeros, or ties for the rounding.
        #[test]
        fn row_quantizer_has_the_plain_bits_for_any_row(
            blocks in proptest::collection::vec((0u8..3, 1e-6f32..1e4, proptest::prelude::any::<u64>()), 1..70)
        ) {
            use rand::{Rng, SeedableRng};
            let mut x = Vec::with_capacity(blocks.len() * QK);
            for &(kind, scale, seed) in &blocks {
                let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
                x.extend((0..QK).map(|i| match kind {
                    0 => rng.gen_range(-1.0f32..1.0) * scale,
                    1 => 0.0,
                    // max|x| = 127: every code is the value itself, halves
                    // round to the even neighbour.
                    _ => if i == 0 { 127.0 } else { rng.gen_range(-254i32..=254) as f32 * 0.5 },
                }));
            }
            let n = blocks.len();
            let run = |f: RowQuantizer<'_>| {
                let (mut q, mut d, mut sum) = (vec![0i8; x.len()], vec![0f32; n], vec![0; n]);
                f(&x, &mut q, &mut d, &mut sum);
                (q, d.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), sum)
            };
            proptest::prop_assert_eq!(run(&quantize_row_blocks), run(&quantize_row_blocks_scalar));
        }
    }

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
