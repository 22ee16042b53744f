//! Block formats and quantized products: golden blocks from ggml's reference
//! rounding, error bounds, edge blocks, and SIMD kernels against their
//! plain twins.

use engine::quant::SumOrder::{Block, Ggml};
use engine::quant::act::Q8Acts;
use engine::quant::{self, dot};
use engine::{DType, EngineError, Tensor, nn};
use half::f16;
use proptest::prelude::*;

const QUANT: [DType; 6] = [
    DType::Q8_0,
    DType::Q4_0,
    DType::Q4_1,
    DType::Q5_0,
    DType::Q4_K,
    DType::Q6_K,
];

/// The anchors' worked block: x[i] = (i - 16) / 4.
fn worked() -> Vec<f32> {
    (0..32).map(|i| (i as f32 - 16.0) / 4.0).collect()
}

#[test]
fn q8_0_worked_block_is_byte_exact() {
    let b = quant::quantize(DType::Q8_0, &worked()).unwrap();
    assert_eq!(&b[..2], &0x2808u16.to_le_bytes());
    let qs: Vec<i8> = b[2..].iter().map(|&x| x as i8).collect();
    assert_eq!(
        qs,
        [
            -127, -119, -111, -103, -95, -87, -79, -71, -64, -56, -48, -40, -32, -24, -16, -8, 0,
            8, 16, 24, 32, 40, 48, 56, 64, 71, 79, 87, 95, 103, 111, 119
        ]
    );
}

#[test]
fn q4_0_worked_block_is_byte_exact() {
    let b = quant::quantize(DType::Q4_0, &worked()).unwrap();
    assert_eq!(&b[..2], &0x3800u16.to_le_bytes());
    assert_eq!(
        &b[2..],
        &[
            0x80, 0x91, 0x91, 0xa2, 0xa2, 0xb3, 0xb3, 0xc4, 0xc4, 0xd5, 0xd5, 0xe6, 0xe6, 0xf7,
            0xf7, 0xf8
        ]
    );
}

/// NaN (with any payload or sign), +inf or -inf.
fn non_finite() -> impl Strategy<Value = f32> {
    prop::sample::select(vec![
        f32::NAN,
        -f32::NAN,
        f32::from_bits(0x7f80_0001), // signalling
        f32::from_bits(0xffa1_2345), // negative, with a payload
        f32::INFINITY,
        f32::NEG_INFINITY,
    ])
}

/// A constant: zero of either sign, or a value of any sign and magnitude
/// from 2⁻²⁰ to 2¹⁵ (small ones make f16 scales subnormal; past f16's
/// largest, 65504, Q4_1's f16 minimum is infinite, as in ggml).
fn constant() -> impl Strategy<Value = f32> {
    prop_oneof![
        1 => Just(0.0f32),
        1 => Just(-0.0f32),
        4 => (-20i32..=14, 1.0f32..2.0, any::<bool>())
            .prop_map(|(e, m, neg)| if neg { -m } else { m } * 2f32.powi(e)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A NaN or an infinity anywhere in any number of blocks is refused,
    /// naming the first one (a second may follow it), in every format.
    #[test]
    fn non_finite_values_are_refused(
        blocks in 1usize..9, x in prop::collection::vec(-8.0f32..8.0, 8 * 256),
        bad in non_finite(), at in any::<prop::sample::Index>(),
        second in prop::option::of((non_finite(), any::<prop::sample::Index>())),
    ) {
        for dt in QUANT {
            let mut x = x[..blocks * dt.block_len()].to_vec();
            let first = at.index(x.len());
            x[first] = bad;
            if let Some((v, after)) = second {
                let i = first + after.index(x.len() - first);
                if i > first {
                    x[i] = v;
                }
            }
            let e = quant::quantize(dt, &x).unwrap_err();
            prop_assert!(
                matches!(e, EngineError::NonFinite { index, value, .. }
                    if index == first && value.to_bits() == bad.to_bits()),
                "{dt}, {blocks} blocks, {bad} at {first}: {e}"
            );
        }
    }

    /// A length that is not a whole number of blocks is refused, in every
    /// format (a K-quant's 32, 64, ... values included).
    #[test]
    fn partial_blocks_are_refused(blocks in 0usize..4, rest in 0usize..255) {
        for dt in QUANT {
            let n = dt.block_len();
            let len = blocks * n + 1 + rest % (n - 1);
            let e = quant::quantize(dt, &vec![0.5; len]).unwrap_err();
            prop_assert!(matches!(e, EngineError::BadShape { .. }), "{dt}, {len} values: {e}");
        }
    }

    /// Any number of blocks of one constant, zero and negative ones
    /// included, come back as that constant in every format: exactly zero
    /// for zero, one value throughout for any other, and within the f16
    /// rounding of the stored scale (and minimum) of the constant.
    #[test]
    fn zero_and_constant_blocks(blocks in 1usize..9, c in constant()) {
        for dt in QUANT {
            let x = vec![c; blocks * dt.block_len()];
            let q = quant::quantize(dt, &x).unwrap();
            let mut out = vec![9.0f32; x.len()];
            quant::dequantize(dt, &q, &mut out).unwrap();
            // f16 rounding of the scale (and Q4_K's 6-bit scales and
            // minimums: a constant is stored as a code times d·sc minus
            // dmin·m): 2⁻¹¹ relative per f16 (2⁻¹⁰ allowed), and where
            // the scale is a subnormal f16, up to 2⁻²⁵ absolute times the
            // largest multiple of it a value takes (127 for Q8_0, 16 for
            // Q5_0, 8 for Q4_0, 1 for Q4_1's minimum; 63 · 15 of d plus 63
            // of dmin for Q4_K; |sc · (code − 32)| ≤ 128 · 32 for Q6_K).
            let tol = match dt {
                DType::Q4_K => c.abs() * 2e-2 + (63.0 * 15.0 + 63.0) * 2f32.powi(-25),
                DType::Q6_K => c.abs() * 2f32.powi(-10) + 4096.0 * 2f32.powi(-25),
                _ => c.abs() * 2f32.powi(-10) + 128.0 * 2f32.powi(-25),
            };
            for (i, &v) in out.iter().enumerate() {
                if c == 0.0 {
                    prop_assert_eq!(v, 0.0, "{} element {}: zero came back as {}", dt, i, v);
                }
                prop_assert_eq!(v.to_bits(), out[0].to_bits(), "{} element {}: {} vs {} at 0", dt, i, v, out[0]);
                prop_assert!((v - c).abs() <= tol, "{dt}: constant {c} came back as {v} (tolerance {tol})");
            }
        }
    }
}

/// Plain dtypes have no blocks to quantize into.
#[test]
fn plain_dtypes_are_not_quantized() {
    for dt in [DType::F32, DType::F16, DType::BF16] {
        let e = quant::quantize(dt, &[0.0; 256]).unwrap_err();
        assert!(
            matches!(e, EngineError::UnsupportedDType { .. }),
            "{dt}: {e}"
        );
    }
}

/// The worst error a block may have, with `d` and `m` as stored (f16):
/// half a step, a whole step where Q4_0 clamps its top code, plus what
/// rounding the f32 scale and minimum to f16 moves.
fn bound(dt: DType, block: &[u8]) -> f32 {
    let d = f16::from_le_bytes([block[0], block[1]]).to_f32().abs();
    let f16_slack = 2f32.powi(-10);
    match dt {
        DType::Q8_0 => d * (0.5 + 127.0 * f16_slack) + 1e-7,
        DType::Q4_0 => d * (1.0 + 8.0 * f16_slack) + 1e-7,
        DType::Q5_0 => d * (1.0 + 16.0 * f16_slack) + 1e-7,
        _ => {
            let m = f16::from_le_bytes([block[2], block[3]]).to_f32().abs();
            d * (0.5 + 15.0 * f16_slack) + m * f16_slack + 1e-7
        }
    }
}

/// `blocks` super-blocks of 256 values (a whole number of blocks in
/// every format).
fn vec_strategy(blocks: std::ops::Range<usize>) -> impl Strategy<Value = Vec<f32>> {
    blocks.prop_flat_map(|n| prop::collection::vec(-8.0f32..8.0, n * 256))
}

/// The largest error a K-quant value may have. The reference quantizers
/// fit each sub-block's scale (and Q4_K's minimum) to a weighted squared
/// error, not to the extremes, which leaves an extreme value up to about
/// one step of a plain grid past the grid's end (`(max − min(0, min)) / 15`
/// for Q4_K's sub-blocks of 32, `2·max|x| / 63` for Q6_K's of 16); the
/// bound allows two. Then they round the fitted constants to integers in
/// units of the super-block's `d` (and `dmin`), which moves the grid's far
/// end by up to half a unit per code: 15·d/2 + dmin/2 for Q4_K, 32·d/2 for
/// Q6_K. Those terms are read from the stored block. Over a million
/// super-blocks of the shapes the test draws (uniform, and uniform with
/// sub-blocks of eight sizes) the error stayed under 0.62 of this bound.
fn k_bound(dt: DType, sub: &[f32], block: &[u8]) -> f32 {
    let (lo, hi) = sub
        .iter()
        .fold((0f32, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    let amax = sub.iter().fold(0f32, |m, v| m.max(v.abs()));
    let half = |at: usize| {
        f16::from_le_bytes([block[at], block[at + 1]])
            .to_f32()
            .abs()
    };
    let (step, rounding) = if dt == DType::Q4_K {
        ((hi - lo) / 15.0, 7.5 * half(0) + 0.5 * half(2))
    } else {
        (2.0 * amax / 63.0, 16.0 * half(208))
    };
    2.0 * step + rounding + 1e-6
}

/// Q4_K spends about the same bits per value as Q4_1 (4.5 against 5) and,
/// over many super-blocks, has the smaller squared error: its sub-block
/// constants are fitted, not taken from the extremes. This is a claim about
/// a distribution, not about every block (a single super-block can lose by
/// a few per cent, because the fit weights large values more and the
/// scales are rounded to 6 bits), so it is checked on 512 fixed
/// pseudo-random super-blocks of each shape: uniform, uniform with
/// sub-blocks of eight different sizes, and normal like trained weights.
/// The measured ratios are 0.81–0.83.
#[test]
fn q4_k_has_less_error_than_q4_1_over_many_blocks() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x9E37_79B9_7F4A_7C15);
    let mut uniform = move || rng.r#gen::<f32>();
    let n = 512 * 256;
    let flat: Vec<f32> = (0..n).map(|_| uniform() * 16.0 - 8.0).collect();
    let spread: Vec<f32> = flat
        .iter()
        .enumerate()
        .map(|(i, v)| v * (1 + i / 32 % 8) as f32 / 8.0)
        .collect();
    let normal: Vec<f32> = (0..n)
        .map(|_| {
            let (u, v) = (uniform().max(1e-7), uniform());
            (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos() * 0.02
        })
        .collect();
    for (name, x) in [("uniform", flat), ("spread", spread), ("normal", normal)] {
        let sq = |dt: DType| -> f64 {
            let q = quant::quantize(dt, &x).unwrap();
            let mut out = vec![0f32; x.len()];
            quant::dequantize(dt, &q, &mut out).unwrap();
            x.iter()
                .zip(&out)
                .map(|(a, b)| f64::from((a - b) * (a - b)))
                .sum()
        };
        let ratio = sq(DType::Q4_K) / sq(DType::Q4_1);
        assert!(
            ratio < 0.9,
            "{name}: Q4_K squared error is {ratio:.3} of Q4_1's"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn per_block_error_is_bounded(x in vec_strategy(1..3)) {
        for dt in QUANT.into_iter().filter(|dt| dt.block_len() == 32) {
            let q = quant::quantize(dt, &x).unwrap();
            let mut out = vec![0f32; x.len()];
            quant::dequantize(dt, &q, &mut out).unwrap();
            for (b, block) in q.chunks_exact(dt.unit_bytes()).enumerate() {
                let e = bound(dt, block);
                for i in b * 32..(b + 1) * 32 {
                    prop_assert!((x[i] - out[i]).abs() <= e,
                        "{dt} block {b} element {i}: {} vs {} (bound {e})", x[i], out[i]);
                }
            }
        }
    }

    /// K-quant values stay within two plain steps of their sub-block.
    #[test]
    fn k_quant_error_is_bounded(x in vec_strategy(1..3), spread in 0usize..2) {
        // Sub-blocks of very different size when `spread` is 1.
        let x: Vec<f32> = x.iter().enumerate().map(|(i, v)| if spread == 1 { v * (1 + i / 32 % 8) as f32 / 8.0 } else { *v }).collect();
        for (dt, sub) in [(DType::Q4_K, 32), (DType::Q6_K, 16)] {
            let q = quant::quantize(dt, &x).unwrap();
            let mut out = vec![0f32; x.len()];
            quant::dequantize(dt, &q, &mut out).unwrap();
            for (j, (xs, ys)) in x.chunks_exact(sub).zip(out.chunks_exact(sub)).enumerate() {
                let block = &q[j * sub / 256 * dt.unit_bytes()..][..dt.unit_bytes()];
                let e = k_bound(dt, xs, block);
                for (i, (a, b)) in xs.iter().zip(ys).enumerate() {
                    prop_assert!((a - b).abs() <= e, "{dt} sub-block {j} element {i}: {a} vs {b} (bound {e})");
                }
            }
        }
    }

    /// The dispatched (SIMD) dot product equals its plain twin, on odd
    /// numbers of blocks, and both stay near the f32 product of the
    /// dequantized weight with the activations.
    #[test]
    fn dot_matches_plain_twin_and_f32(w in vec_strategy(1..4), seed in 0u64..1000) {
        let n = w.len();
        let x: Vec<f32> = (0..n).map(|i| (((i as u64 * 7919 + seed * 104729) % 2000) as f32 / 1000.0) - 1.0).collect();
        let mut acts = Q8Acts::default();
        acts.quantize_blocks(&x, n, true, n.is_multiple_of(256));
        for dt in QUANT {
            let q = quant::quantize(dt, &w).unwrap();
            let fast = dot::dot(dt, &q, acts.row(0));
            let plain = dot::dot_scalar(dt, &q, acts.row(0));
            let mag: f32 = w.iter().zip(&x).map(|(a, b)| (a * b).abs()).sum();
            prop_assert!((fast - plain).abs() <= 1e-5 * mag.max(1.0), "{dt}: {fast} vs {plain}");
            let mut deq = vec![0f32; n];
            quant::dequantize(dt, &q, &mut deq).unwrap();
            let exact: f32 = deq.iter().zip(&x).map(|(a, b)| a * b).sum();
            // Only the activations' 8-bit rounding separates the two.
            prop_assert!((fast - exact).abs() <= 0.01 * mag.max(1.0), "{dt}: {fast} vs f32 {exact}");
        }
    }

    /// `nn::linear` over stacked weights of every dtype, for batch sizes on
    /// both sides of the sgemm threshold, against a plain f32 product of
    /// the widened weights.
    #[test]
    fn linear_matches_widened_reference(
        blocks in 1usize..3, rows_a in 1usize..40, rows_b in 1usize..40,
        t in prop_oneof![3 => 1usize..12, 1 => nn::SGEMM_MIN_TOKENS..nn::SGEMM_MIN_TOKENS + 6], seed in 0u64..100
    ) {
        let cols = blocks * 256;
        let val = |i: usize| ((((i as u64) * 2654435761 + seed) % 1000) as f32 / 500.0) - 1.0;
        let x: Vec<f32> = (0..t * cols).map(|i| val(i + 17)).collect();
        let kinds = [DType::F32, DType::F16, DType::BF16].into_iter().chain(QUANT).map(|d| (d, None));
        let regrouped = [(DType::Q4_0, Ggml), (DType::Q4_1, Ggml), (DType::Q8_0, Ggml), (DType::Q4_0, Block), (DType::Q4_1, Block)];
        for (dt, order) in kinds.chain(regrouped.map(|(d, o)| (d, Some(o)))) {
            let regroup = order.is_some();
            let a = Tensor::from_vec((0..rows_a * cols).map(val).collect(), &[rows_a, cols]).unwrap().to_dtype(dt).unwrap();
            let b = Tensor::from_vec((0..rows_b * cols).map(|i| val(i + 5)).collect(), &[rows_b, cols]).unwrap().to_dtype(dt).unwrap();
            // Regrouped where the rows come in eights, as a model's are.
            let (a, b) = match order {
                Some(o) => (a.regrouped().with_sum_order(o), b.regrouped().with_sum_order(o)),
                None => (a, b),
            };
            let rows = rows_a + rows_b;
            let mut out = vec![0f32; t * rows];
            nn::linear(&x, t, &[&a, &b], &mut out).unwrap();
            let w: Vec<f32> = [a.to_vec_f32().unwrap(), b.to_vec_f32().unwrap()].concat();
            for i in 0..t {
                for r in 0..rows {
                    let xi = &x[i * cols..(i + 1) * cols];
                    let wr = &w[r * cols..(r + 1) * cols];
                    let exact: f32 = xi.iter().zip(wr).map(|(p, q)| p * q).sum();
                    let mag: f32 = xi.iter().zip(wr).map(|(p, q)| (p * q).abs()).sum();
                    // 8-bit activations: every quantized product below the
                    // sgemm threshold, and a prompt's through the regrouped
                    // integer kernel (both matrices regroup only in eights).
                    let int8 = dt.is_quantized()
                        && (t < nn::SGEMM_MIN_TOKENS
                            || (regroup && rows_a % 8 == 0 && rows_b % 8 == 0));
                    let tol = if int8 { 0.01 } else { 1e-4 };
                    let got = out[i * rows + r];
                    prop_assert!((got - exact).abs() <= tol * mag.max(1.0),
                        "{dt} (regrouped {order:?}) t={t} row {r} token {i}: {got} vs {exact}");
                }
            }
        }
    }

    /// A batch of sequences: every row's products are bit for bit those of
    /// the row's own sequence run alone, whatever else is in the batch
    /// (prompts of `SGEMM_MIN_TOKENS`+ rows take the sgemm path, shorter
    /// ones the row path; weights summed by block take every row in one
    /// pass).
    #[test]
    fn linear_batch_rows_do_not_depend_on_the_batch(
        lens in proptest::collection::vec(prop_oneof![1usize..3, nn::SGEMM_MIN_TOKENS..nn::SGEMM_MIN_TOKENS + 3], 1..5),
        rows_a in 1usize..3, seed in 0u64..100
    ) {
        let (cols, rows_a) = (256, rows_a * 8);
        let rows = rows_a + 16;
        let val = |i: usize| ((((i as u64) * 2654435761 + seed) % 1000) as f32 / 500.0) - 1.0;
        let t: usize = lens.iter().sum();
        let x: Vec<f32> = (0..t * cols).map(|i| val(i + 3)).collect();
        let kinds = [DType::F32, DType::F16, DType::Q8_0, DType::Q4_1, DType::Q4_K].map(|d| (d, None));
        let regrouped = [(DType::Q4_1, Ggml), (DType::Q8_0, Ggml), (DType::Q4_0, Block), (DType::Q4_1, Block), (DType::Q8_0, Block)];
        for (dt, regroup) in kinds.into_iter().chain(regrouped.map(|(d, o)| (d, Some(o)))) {
            let a = Tensor::from_vec((0..rows_a * cols).map(val).collect(), &[rows_a, cols]).unwrap().to_dtype(dt).unwrap();
            let b = Tensor::from_vec((0..16 * cols).map(|i| val(i + 9)).collect(), &[16, cols]).unwrap().to_dtype(dt).unwrap();
            let (a, b) = match regroup {
                Some(o) => (a.regrouped().with_sum_order(o), b.regrouped().with_sum_order(o)),
                None => (a, b),
            };
            let mut all = vec![0f32; t * rows];
            nn::linear_batch(&x, &lens, &[&a, &b], &mut all).unwrap();
            let mut at = 0;
            for &n in &lens {
                let mut alone = vec![0f32; n * rows];
                nn::linear(&x[at * cols..(at + n) * cols], n, &[&a, &b], &mut alone).unwrap();
                prop_assert_eq!(&all[at * rows..(at + n) * rows], &alone[..], "{} {:?} lens {:?}", dt, regroup, &lens);
                if n == 2 {
                    // Two decode steps side by side (two sequences of one
                    // row) equal each step alone.
                    let mut two = vec![0f32; 2 * rows];
                    nn::linear_batch(&x[at * cols..(at + 2) * cols], &[1, 1], &[&a, &b], &mut two).unwrap();
                    for i in 0..2 {
                        let mut one = vec![0f32; rows];
                        nn::linear(&x[(at + i) * cols..(at + i + 1) * cols], 1, &[&a, &b], &mut one).unwrap();
                        prop_assert_eq!(&two[i * rows..(i + 1) * rows], &one[..], "{} {:?} row {}", dt, regroup, i);
                    }
                }
                at += n;
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// The SwiGLU half of an MLP gives each row the bits of the two
    /// products followed by the gate (`swiglu_rows`), whether a batch's
    /// tasks apply the gate (weights the many-token kernel multiplies) or
    /// it follows the products, and each sequence the bits it gets alone.
    #[test]
    fn linear_swiglu_is_the_products_then_the_gate(
        lens in proptest::collection::vec(prop_oneof![1usize..3, nn::SGEMM_MIN_TOKENS..nn::SGEMM_MIN_TOKENS + 2], 1..4),
        groups in prop_oneof![1usize..3, 17usize..26], which in 0usize..6, seed in 0u64..100
    ) {
        let (cols, ffn) = (256, groups * 8);
        let val = |i: usize| ((((i as u64) * 2654435761 + seed) % 1000) as f32 / 500.0) - 1.0;
        let t: usize = lens.iter().sum();
        let x: Vec<f32> = (0..t * cols).map(|i| val(i + 3) * 4.0).collect();
        let (dt, order) = [
            (DType::F32, None), (DType::Q4_1, None), (DType::Q4_1, Some(Ggml)),
            (DType::Q4_0, Some(Block)), (DType::Q4_1, Some(Block)), (DType::Q8_0, Some(Block)),
        ][which];
        let make = |k: usize| {
            let w = Tensor::from_vec((0..ffn * cols).map(|i| val(i + k)).collect(), &[ffn, cols]).unwrap().to_dtype(dt).unwrap();
            match order {
                Some(o) => w.regrouped().with_sum_order(o),
                None => w,
            }
        };
        let (gate, up) = (make(5), make(11));
        let mut gu = vec![0f32; t * 2 * ffn];
        nn::linear_batch(&x, &lens, &[&gate, &up], &mut gu).unwrap();
        let mut want = vec![0f32; t * ffn];
        engine::kernels::swiglu_rows(&mut gu, ffn, &mut want);
        let mut got = vec![f32::NAN; t * ffn];
        nn::linear_swiglu(&x, &lens, (&gate, &up), &mut got).unwrap();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        prop_assert_eq!(bits(&got), bits(&want), "{} {:?} lens {:?}", dt, order, &lens);
        let mut at = 0;
        for &n in &lens {
            let mut alone = vec![0f32; n * ffn];
            nn::linear_swiglu(&x[at * cols..(at + n) * cols], &[n], (&gate, &up), &mut alone).unwrap();
            prop_assert_eq!(bits(&got[at * ffn..(at + n) * ffn]), bits(&alone));
            at += n;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// A Llama MLP after its norm (`swiglu_down_add`) gives the bits of the
    /// SwiGLU half followed by the down product added to the rows, whether
    /// a batch's tasks quantize the SwiGLU rows for the down product (long
    /// runs of whole blocks: 1,024 or 1,088 SwiGLU values a row, on one or
    /// two threads) or the product quantizes them itself.
    #[test]
    fn swiglu_down_add_is_the_swiglu_then_the_down_product_added(
        lens in prop_oneof![
            proptest::collection::vec(1usize..2, 2..9),
            proptest::collection::vec(prop_oneof![1usize..3, nn::SGEMM_MIN_TOKENS..nn::SGEMM_MIN_TOKENS + 2], 1..5),
        ],
        groups in prop_oneof![1usize..7, 32usize..36], which in 0usize..6, seed in 0u64..100
    ) {
        swiglu_down_add_matches((&lens, 256, groups * 32), which, seed)?;
    }
}

/// A decode batch of eight in SmolLM2's MLP shape (576 → 1,536 → 576),
/// whose SwiGLU tasks quantize their rows for the down product, in every
/// weight format that sums by block: the bits of the two steps.
#[test]
fn swiglu_down_add_in_smollm2_shape_matches_the_two_steps() {
    for which in 3..6 {
        swiglu_down_add_matches((&[1; 8], 576, 1536), which, 7).unwrap();
    }
}

/// `nn::swiglu_down_add` against `nn::linear_swiglu`, then the down
/// product added, bit for bit, for rows `lens` of `cols` values, an MLP of
/// `ffn` and weight format `which` (as below).
fn swiglu_down_add_matches(
    (lens, cols, ffn): (&[usize], usize, usize),
    which: usize,
    seed: u64,
) -> Result<(), TestCaseError> {
    let val = |i: usize| ((((i as u64) * 2654435761 + seed) % 1000) as f32 / 500.0) - 1.0;
    let t: usize = lens.iter().sum();
    let xn: Vec<f32> = (0..t * cols).map(|i| val(i + 3) * 4.0).collect();
    let x0: Vec<f32> = (0..t * cols).map(|i| val(i + 7)).collect();
    let (dt, order) = [
        (DType::F32, None),
        (DType::Q4_1, None),
        (DType::Q4_1, Some(Ggml)),
        (DType::Q4_0, Some(Block)),
        (DType::Q4_1, Some(Block)),
        (DType::Q8_0, Some(Block)),
    ][which];
    let make = |k: usize, rows: usize, cols: usize| {
        let w = Tensor::from_vec(
            (0..rows * cols).map(|i| val(i + k)).collect(),
            &[rows, cols],
        )
        .unwrap()
        .to_dtype(dt)
        .unwrap();
        match order {
            Some(o) => w.regrouped().with_sum_order(o),
            None => w,
        }
    };
    let (gate, up, down) = (make(5, ffn, cols), make(11, ffn, cols), make(17, cols, ffn));
    let mut act_want = vec![0f32; t * ffn];
    nn::linear_swiglu(&xn, lens, (&gate, &up), &mut act_want).unwrap();
    let mut product = vec![0f32; t * cols];
    nn::linear_batch(&act_want, lens, &[&down], &mut product).unwrap();
    let want: Vec<f32> = x0.iter().zip(&product).map(|(a, b)| a + b).collect();
    let (mut act, mut x) = (vec![f32::NAN; t * ffn], x0.clone());
    nn::swiglu_down_add(&xn, lens, (&gate, &up, &down), &mut act, &mut x).unwrap();
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    prop_assert_eq!(
        bits(&act),
        bits(&act_want),
        "{} {:?} lens {:?}",
        dt,
        order,
        lens
    );
    prop_assert_eq!(bits(&x), bits(&want), "{} {:?} lens {:?}", dt, order, lens);
    // `linear_add` alone is the same product added.
    let mut added = x0.clone();
    nn::linear_add(&act_want, lens, &down, &mut added).unwrap();
    prop_assert_eq!(bits(&added), bits(&want));
    Ok(())
}

#[test]
fn swiglu_down_add_rejects_bad_shapes() {
    let w =
        |rows: usize, cols: usize| Tensor::from_vec(vec![0.5; rows * cols], &[rows, cols]).unwrap();
    let (gate, up, down) = (w(32, 64), w(32, 64), w(64, 32));
    let xn = vec![1.0; 2 * 64];
    let (mut act, mut x) = (vec![0.0; 2 * 32], vec![0.0; 2 * 64]);
    nn::swiglu_down_add(&xn, &[1, 1], (&gate, &up, &down), &mut act, &mut x).unwrap();
    // The rows to add to, the SwiGLU rows and the down weight must fit.
    assert!(
        nn::swiglu_down_add(&xn, &[1, 1], (&gate, &up, &down), &mut act, &mut x[..64]).is_err()
    );
    assert!(
        nn::swiglu_down_add(&xn, &[1, 1], (&gate, &up, &down), &mut act[..32], &mut x).is_err()
    );
    assert!(nn::swiglu_down_add(&xn, &[1, 1], (&gate, &up, &w(64, 16)), &mut act, &mut x).is_err());
}

#[test]
fn linear_swiglu_rejects_bad_shapes() {
    let w = |r: usize| Tensor::from_vec(vec![0.5; r * 32], &[r, 32]).unwrap();
    let (g, u) = (w(8), w(8));
    let x = [1.0f32; 64];
    let mut out = vec![0.0; 16];
    nn::linear_swiglu(&x, &[1, 1], (&g, &u), &mut out).unwrap();
    assert!(nn::linear_swiglu(&x, &[1, 1], (&g, &w(16)), &mut out).is_err());
    assert!(nn::linear_swiglu(&x, &[1, 1], (&w(0), &w(0)), &mut []).is_err());
    assert!(nn::linear_swiglu(&x[..63], &[1, 1], (&g, &u), &mut out).is_err());
    assert!(nn::linear_swiglu(&x, &[1, 1], (&g, &u), &mut out[..15]).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// In the block order a decode step's products are bit for bit the
    /// same row's products inside a prompt (which always sums by block),
    /// and within float rounding of llama.cpp's order.
    #[test]
    fn block_order_decodes_as_prompts_multiply(
        groups in 1usize..4, blocks in 1usize..4, q4_1 in any::<bool>(), seed in 0u64..100
    ) {
        let (rows, cols, t) = (groups * 8, blocks * 64, nn::SGEMM_MIN_TOKENS + 1);
        let dt = if q4_1 { DType::Q4_1 } else { DType::Q4_0 };
        let val = |i: usize| ((((i as u64) * 2654435761 + seed) % 1000) as f32 / 500.0) - 1.0;
        let x: Vec<f32> = (0..t * cols).map(|i| val(i + 3)).collect();
        let w = Tensor::from_vec((0..rows * cols).map(val).collect(), &[rows, cols]).unwrap().to_dtype(dt).unwrap().regrouped();
        let (ggml, block) = (w.with_sum_order(Ggml), w.with_sum_order(Block));
        let mut prompt = vec![0f32; t * rows];
        nn::linear(&x, t, &[&block], &mut prompt).unwrap();
        for i in [0, t / 2, t - 1] {
            let xi = &x[i * cols..(i + 1) * cols];
            let (mut b1, mut g1) = (vec![0f32; rows], vec![0f32; rows]);
            nn::linear(xi, 1, &[&block], &mut b1).unwrap();
            nn::linear(xi, 1, &[&ggml], &mut g1).unwrap();
            prop_assert_eq!(&b1[..], &prompt[i * rows..(i + 1) * rows]);
            for (b, g) in b1.iter().zip(&g1) {
                prop_assert!((b - g).abs() <= 1e-4 * (1.0 + g.abs()), "{b} vs {g}");
            }
        }
    }
}

#[test]
fn linear_and_embed_reject_bad_shapes() {
    let w = Tensor::from_vec(vec![0.0; 64], &[2, 32]).unwrap();
    let v = Tensor::from_vec(vec![0.0; 32], &[1, 32]).unwrap();
    let mut out = vec![0.0; 3];
    assert!(nn::linear(&[0.0; 32], 1, &[&w, &v], &mut out).is_ok());
    assert!(nn::linear(&[0.0; 31], 1, &[&w], &mut out[..2]).is_err());
    assert!(nn::linear(&[0.0; 32], 1, &[], &mut out).is_err());
    let mut e = vec![0.0; 32];
    assert!(matches!(
        nn::embed(&w, &[2], &mut e),
        Err(EngineError::OutOfRange {
            index: 2,
            size: 2,
            ..
        })
    ));
    let q = w.to_dtype(DType::Q4_1).unwrap();
    nn::embed(&q, &[1], &mut e).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The multi-row SIMD matvec equals its plain twin on odd row counts
    /// (the four-row body plus its tail) and odd block counts.
    #[test]
    /// The many-token kernel gives, bit for bit, each token's lone matvec,
    /// and agrees with its plain twin, for any number of tokens and rows.
    fn matmul_is_matvec_per_token(rows in 1usize..23, t in 1usize..8, w in vec_strategy(1..3), seed in 0u64..1000) {
        let cols = w.len();
        let x: Vec<f32> = (0..t * cols).map(|i| (((i as u64 * 7919 + seed * 104729) % 2000) as f32 / 1000.0) - 1.0).collect();
        let mut acts = Q8Acts::default();
        acts.quantize_blocks(&x, cols, true, cols.is_multiple_of(256));
        let m: Vec<f32> = (0..rows).flat_map(|r| w.iter().map(move |v| v * (1.0 + r as f32 * 0.37) - r as f32 * 0.1)).collect();
        let a: Vec<_> = (0..t).map(|i| acts.row(i)).collect();
        for dt in QUANT {
            let q = quant::quantize(dt, &m).unwrap();
            let (mut fast, mut plain) = (vec![0f32; rows * t], vec![0f32; rows * t]);
            dot::matmul(dt, &q, &a, &mut fast);
            dot::matmul_scalar(dt, &q, &a, &mut plain);
            for i in 0..t {
                let mut one = vec![0f32; rows];
                dot::matvec(dt, &q, acts.row(i), &mut one);
                for r in 0..rows {
                    prop_assert_eq!(fast[r * t + i].to_bits(), one[r].to_bits(), "{} t={} row {} token {}", dt, t, r, i);
                    prop_assert!((fast[r * t + i] - plain[r * t + i]).abs() <= 1e-3 * (1.0 + one[r].abs()));
                }
            }
        }
    }

    #[test]
    fn matvec_matches_plain_twin(rows in 1usize..23, w in vec_strategy(1..3), seed in 0u64..1000) {
        let cols = w.len();
        let x: Vec<f32> = (0..cols).map(|i| (((i as u64 * 7919 + seed * 104729) % 2000) as f32 / 1000.0) - 1.0).collect();
        let mut acts = Q8Acts::default();
        acts.quantize_blocks(&x, cols, true, cols.is_multiple_of(256));
        let m: Vec<f32> = (0..rows).flat_map(|r| w.iter().map(move |v| v * (1.0 + r as f32 * 0.37) - r as f32 * 0.1)).collect();
        for dt in QUANT {
            let q = quant::quantize(dt, &m).unwrap();
            let (mut fast, mut plain) = (vec![0f32; rows], vec![0f32; rows]);
            dot::matvec(dt, &q, acts.row(0), &mut fast);
            dot::matvec_scalar(dt, &q, acts.row(0), &mut plain);
            for r in 0..rows {
                let row = &m[r * cols..(r + 1) * cols];
                let mag: f32 = row.iter().zip(&x).map(|(a, b)| (a * b).abs()).sum();
                prop_assert!((fast[r] - plain[r]).abs() <= 1e-5 * mag.max(1.0), "{dt} row {r}: {} vs {}", fast[r], plain[r]);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The SIMD activation quantizer equals its plain twin exactly (same
    /// codes, same scale, same sum), halves and zeros included.
    #[test]
    fn activation_quantizer_matches_plain_twin(
        x in prop::collection::vec(prop_oneof![-3.0f32..3.0, Just(0.0f32), Just(0.5f32), Just(-1.5f32)], 32..33),
        scale in prop_oneof![Just(1.0f32), Just(127.0f32), Just(1e-3f32)],
    ) {
        let x: Vec<f32> = x.iter().map(|v| v * scale).collect();
        let mut acts = Q8Acts::default();
        acts.quantize(&x, 32);
        let mut q = [0i8; 32];
        let (d, sum) = engine::quant::act::quantize_block_scalar(&x, &mut q);
        prop_assert_eq!(&acts.qs[..], &q[..]);
        prop_assert_eq!(acts.isum[0], sum);
        prop_assert_eq!(acts.d[0], f16::from_f32(d).to_f32());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The dispatched (SIMD) dequantizer gives exactly the plain twin's floats.
    #[test]
    fn dequantize_matches_plain_twin(x in vec_strategy(1..3)) {
        for dt in QUANT {
            let q = quant::quantize(dt, &x).unwrap();
            let (mut fast, mut plain) = (vec![0f32; x.len()], vec![0f32; x.len()]);
            quant::dequantize(dt, &q, &mut fast).unwrap();
            quant::dequantize_scalar(dt, &q, &mut plain);
            prop_assert_eq!(&fast, &plain, "{}", dt);
        }
    }
}

/// Q4_1's nibble order on a hand-made block: d = 1 (f16 0x3c00),
/// m = −2 (0xc000), byte j = (15 − j) << 4 | j: element j is j − 2, element
/// j + 16 is (15 − j) − 2.
#[test]
fn q4_1_uses_min_and_nibble_order() {
    let mut block = vec![0x00, 0x3c, 0x00, 0xc0];
    block.extend((0..16u8).map(|j| ((15 - j) << 4) | j));
    let mut out = [0f32; 32];
    quant::dequantize(DType::Q4_1, &block, &mut out).unwrap();
    for j in 0..16 {
        assert_eq!(out[j], j as f32 - 2.0);
        assert_eq!(out[j + 16], (15 - j) as f32 - 2.0);
    }
}

/// A regrouped weight reads back as the original (values and, ungrouped,
/// bytes), and a tensor it cannot regroup comes back unchanged.
#[test]
fn regrouped_tensors_read_back_as_the_original() {
    let val = |i: usize| ((i * 37 % 101) as f32 / 50.0) - 1.0;
    for dt in [DType::Q4_0, DType::Q4_1, DType::Q8_0] {
        let t = Tensor::from_vec((0..16 * 64).map(val).collect(), &[16, 64])
            .unwrap()
            .to_dtype(dt)
            .unwrap();
        let r = t.regrouped();
        assert!(matches!(
            r.storage(),
            engine::tensor::Storage::Regrouped { .. }
        ));
        assert_eq!(r.to_vec_f32().unwrap(), t.to_vec_f32().unwrap());
        assert_eq!(r.ungrouped().storage(), t.storage());
        assert_eq!((r.dtype(), r.shape()), (dt, t.shape()));
    }
    let odd = Tensor::from_vec((0..12 * 32).map(val).collect(), &[12, 32])
        .unwrap()
        .to_dtype(DType::Q4_1)
        .unwrap();
    assert_eq!(odd.regrouped().storage(), odd.storage());
    let k = Tensor::from_vec((0..8 * 256).map(val).collect(), &[8, 256])
        .unwrap()
        .to_dtype(DType::Q4_K)
        .unwrap();
    assert_eq!(k.regrouped().storage(), k.storage());
}

/// Weights of different block sizes stacked in one product (a K-quant
/// beside 32-value formats, as a Q4_K_M file of a wider model stacks Q, K
/// and V): the input is quantized in blocks of 32 and of 256, each weight
/// reads its own, and every row equals that weight's product alone, bit
/// for bit, for a decode step and a short prompt.
#[test]
fn stacked_weights_of_both_block_sizes() {
    let cols = 512;
    let val = |i: usize, s: usize| (((i * 2654435761 + s) % 1000) as f32 / 500.0) - 1.0;
    let mats: Vec<Tensor> = [(DType::Q4_K, 8), (DType::Q5_0, 16), (DType::Q6_K, 8)]
        .iter()
        .enumerate()
        .map(|(n, &(dt, rows))| {
            let w = Tensor::from_vec((0..rows * cols).map(|i| val(i, n)).collect(), &[rows, cols]);
            let w = w.unwrap().to_dtype(dt).unwrap();
            if dt == DType::Q5_0 { w.regrouped() } else { w }
        })
        .collect();
    let rows: usize = mats.iter().map(|m| m.shape()[0]).sum();
    for t in [1usize, 3] {
        let x: Vec<f32> = (0..t * cols).map(|i| val(i, 7)).collect();
        let mut all = vec![0f32; t * rows];
        nn::linear(&x, t, &mats.iter().collect::<Vec<_>>(), &mut all).unwrap();
        let mut at = 0;
        for m in &mats {
            let n = m.shape()[0];
            let mut alone = vec![0f32; t * n];
            nn::linear(&x, t, &[m], &mut alone).unwrap();
            for i in 0..t {
                for r in 0..n {
                    assert_eq!(
                        all[i * rows + at + r].to_bits(),
                        alone[i * n + r].to_bits(),
                        "{} row {r} token {i} of {t}",
                        m.dtype()
                    );
                }
            }
            at += n;
        }
    }
}

/// An activation row whose parts disagree in length (its fields are
/// public) is refused before any SIMD body indexes it unchecked.
#[test]
#[should_panic(expected = "quant::dot")]
fn dot_refuses_a_short_activation_row() {
    let x: Vec<f32> = (0..512).map(|i| (i % 17) as f32 - 8.0).collect();
    let w = quant::quantize(DType::Q4_K, &x).unwrap();
    let mut acts = Q8Acts::default();
    acts.quantize_blocks(&x, 512, false, true);
    let mut row = acts.row(0);
    row.k.bsums = &row.k.bsums[..8];
    dot::dot(DType::Q4_K, &w, row);
}
