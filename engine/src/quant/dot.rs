//! Dot products of one quantized weight row with one quantized activation
//! row ([`Q8Row`]): integer multiply-adds inside each block (of 32, or of
//! 256 for the K-quants), the scales applied once per block.
//!
//! Each format has a plain twin here ([`dot_q8_0_scalar`], …) and an AVX2
//! body in `dot_avx2.rs` (`maddubs` + `madd`), chosen once at run time
//! by [`crate::dispatch::level`]; a property test keeps them equal.
//! (AVX-512 machines with VNNI run the same bodies with `vpdpbusd`,
//! `dot4.rs`; on aarch64, the bodies in `dot_neon.rs`, with `sdot` where
//! the CPU has it, give the twins' bits.) Q5_0 and the K-quants
//! live in [`super::dot_k`]; Q5_0 shares the four-row matrix kernels of
//! the 4-bit formats, the K-quants' matrix products take one row at a time
//! and up to four tokens, which share its unpacked codes.

use super::QK;
use super::act::Q8Row;
use crate::dispatch::{Level, level};
use crate::dtype::DType;

#[cfg(target_arch = "x86_64")]
#[path = "dot_avx2.rs"]
mod avx2;

#[cfg(target_arch = "x86_64")]
#[path = "dot_k_avx2.rs"]
mod avx2_k;

#[cfg(target_arch = "aarch64")]
#[path = "dot_neon.rs"]
mod neon;

#[cfg(target_arch = "x86_64")]
pub(crate) use avx2::dequantize as dequantize_avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) use avx2_k::{
    dequantize_q4_k as dequantize_q4_k_avx2, dequantize_q6_k as dequantize_q6_k_avx2,
};

use super::dot_k::{dot_q4_k_scalar, dot_q5_0_scalar, dot_q6_k_scalar};

/// True if `a` carries, whole, what `dtype`'s dot product reads: the
/// K-quants read the activations in blocks of 256 ([`Q8Row::k`]: codes,
/// scales, sums of 16), the others in blocks of 32 (codes, scales, sums).
/// The SIMD bodies index them unchecked, so every length is checked here.
fn acts_fit(dtype: DType, a: &Q8Row<'_>) -> bool {
    let cols = a.cols();
    if dtype.block_len() == super::q4_k::QK_K {
        let k = a.k;
        k.qs.len() == cols && k.d.len() * super::q4_k::QK_K == cols && k.bsums.len() * 16 == cols
    } else {
        let nb = cols / QK;
        a.qs.len() == cols && a.d.len() == nb && a.s.len() == nb && a.isum.len() == nb
    }
}

/// True for the formats with four-row matrix kernels (the K-quants' share
/// each row's unpacked codes among up to four tokens instead).
#[cfg(target_arch = "x86_64")]
fn has_row_kernels(dtype: DType) -> bool {
    matches!(dtype, DType::Q8_0 | DType::Q4_0 | DType::Q4_1 | DType::Q5_0)
}

// ANCHOR: dot_q4_1_scalar
/// Q4_1 row · activation row, plain: per block
/// `d_w·d_a·Σ code·q + m_w·s_a`.
pub fn dot_q4_1_scalar(w: &[u8], a: Q8Row<'_>) -> f32 {
    let mut acc = 0f32;
    for (b, wb) in w.chunks_exact(20).enumerate() {
        let (d, m) = (super::f16_at(wb, 0), super::f16_at(wb, 2));
        let q = &a.qs[b * QK..(b + 1) * QK];
        let mut sum = 0i32;
        for (j, &byte) in wb[4..20].iter().enumerate() {
            let (lo, hi) = super::nibbles(byte);
            sum += i32::from(lo) * i32::from(q[j]) + i32::from(hi) * i32::from(q[j + QK / 2]);
        }
        acc += d * a.d[b] * sum as f32 + m * a.s[b];
    }
    acc
}
// ANCHOR_END: dot_q4_1_scalar

/// Q4_0 row · activation row, plain: per block `d_w·d_a·(Σ code·q − 8·Σq)`.
pub fn dot_q4_0_scalar(w: &[u8], a: Q8Row<'_>) -> f32 {
    let mut acc = 0f32;
    for (b, wb) in w.chunks_exact(18).enumerate() {
        let d = super::f16_at(wb, 0);
        let q = &a.qs[b * QK..(b + 1) * QK];
        let mut sum = 0i32;
        for (j, &byte) in wb[2..18].iter().enumerate() {
            let (lo, hi) = super::nibbles(byte);
            sum += i32::from(lo) * i32::from(q[j]) + i32::from(hi) * i32::from(q[j + QK / 2]);
        }
        acc += d * a.d[b] * (sum - 8 * a.isum[b]) as f32;
    }
    acc
}

/// Q8_0 row · activation row, plain: per block `d_w·d_a·Σ q_w·q_a`.
/// (A Q8_0 KV cache's attention scores are these, a key row times a
/// quantized query head: `kernels::q8_scores`.)
pub fn dot_q8_0_scalar(w: &[u8], a: Q8Row<'_>) -> f32 {
    let mut acc = 0f32;
    for (b, wb) in w.chunks_exact(34).enumerate() {
        let d = super::f16_at(wb, 0);
        let q = &a.qs[b * QK..(b + 1) * QK];
        let sum: i32 = wb[2..34]
            .iter()
            .zip(q)
            .map(|(&x, &y)| i32::from(x as i8) * i32::from(y))
            .sum();
        acc += d * a.d[b] * sum as f32;
    }
    acc
}

/// The plain twin for `dtype` (a quantized dtype).
pub fn dot_scalar(dtype: DType, w: &[u8], a: Q8Row<'_>) -> f32 {
    match dtype {
        DType::Q8_0 => dot_q8_0_scalar(w, a),
        DType::Q4_0 => dot_q4_0_scalar(w, a),
        DType::Q4_1 => dot_q4_1_scalar(w, a),
        DType::Q5_0 => dot_q5_0_scalar(w, a),
        DType::Q4_K => dot_q4_k_scalar(w, a),
        DType::Q6_K => dot_q6_k_scalar(w, a),
        _ => unreachable!("dot_scalar: plain dtype {dtype}"),
    }
}

// ANCHOR: dot_dispatch
/// Quantized row · activation row with the best kernel for this CPU.
/// `w` holds the blocks of `dtype` for `a.cols()` values.
///
/// # Panics
/// If `dtype` is not quantized or the lengths disagree.
pub fn dot(dtype: DType, w: &[u8], a: Q8Row<'_>) -> f32 {
    assert!(
        dtype.is_quantized() && dtype.bytes_for(a.cols()) == Some(w.len()) && acts_fit(dtype, &a),
        "quant::dot: {} bytes of {dtype} for {} activations (or not in this format's block size)",
        w.len(),
        a.cols()
    );
    match level() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: has_vnni() is true only at the Avx512 level on a CPU with
        // AVX-512 VNNI and VL (and AVX2, FMA, F16C); the lengths were
        // checked above.
        Level::Avx512 if super::dot4::has_vnni() => unsafe { avx2::dot_vnni(dtype, w, a) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: level() is Avx2 or Avx512 only when the CPU has AVX2,
        // FMA and F16C; the lengths were checked above.
        Level::Avx2 | Level::Avx512 => unsafe { avx2::dot(dtype, w, a) },
        #[cfg(target_arch = "aarch64")]
        // SAFETY: level() is Neon only on a CPU with NEON, has_sdot() only
        // on one with the dot-product instructions; the lengths were
        // checked above.
        Level::Neon if super::x8::neon::has_sdot() => unsafe { neon::dot_sdot(dtype, w, a) },
        #[cfg(target_arch = "aarch64")]
        // SAFETY: as above.
        Level::Neon => unsafe { neon::dot(dtype, w, a) },
        _ => dot_scalar(dtype, w, a),
    }
}
// ANCHOR_END: dot_dispatch

/// `out[r · t + i] = f(dtype, row r of w, a[i])` for every row of `w` and
/// token of `a` (`t = a.len()`): the plain twins' matrix products, and
/// NEON's, one dot product at a time.
fn each_row_and_token(
    dtype: DType,
    w: &[u8],
    a: &[Q8Row<'_>],
    out: &mut [f32],
    f: impl Fn(DType, &[u8], Q8Row<'_>) -> f32,
) {
    let rb = dtype
        .bytes_for(a.first().map_or(0, |a| a.cols()))
        .unwrap_or(0);
    let t = a.len().max(1);
    for (o, row) in out.chunks_exact_mut(t).zip(w.chunks_exact(rb.max(1))) {
        for (x, ai) in o.iter_mut().zip(a) {
            *x = f(dtype, row, *ai);
        }
    }
}

/// Plain twin of [`matvec`]: one [`dot_scalar`] per row.
pub fn matvec_scalar(dtype: DType, w: &[u8], a: Q8Row<'_>, out: &mut [f32]) {
    let rb = dtype.bytes_for(a.cols()).unwrap_or(0);
    for (o, row) in out.iter_mut().zip(w.chunks_exact(rb.max(1))) {
        *o = dot_scalar(dtype, row, a);
    }
}

/// `out[r] = row r of w · a` for a matrix of `out.len()` quantized rows,
/// with the best kernel for this CPU (AVX2: four rows at a time).
///
/// # Panics
/// If `dtype` is not quantized or the lengths disagree.
pub fn matvec(dtype: DType, w: &[u8], a: Q8Row<'_>, out: &mut [f32]) {
    let rb = dtype.bytes_for(a.cols());
    assert!(
        dtype.is_quantized()
            && rb.and_then(|rb| rb.checked_mul(out.len())) == Some(w.len())
            && acts_fit(dtype, &a),
        "quant::matvec: {} bytes of {dtype} for {} rows of {} activations (or not in this format's block size)",
        w.len(),
        out.len(),
        a.cols()
    );
    match level() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `dot` (a K-quant: the blocks of 256 were checked
        // above); has_vnni() only where the CPU has AVX-512 VNNI and VL.
        Level::Avx512 if !has_row_kernels(dtype) && super::dot4::has_vnni() => unsafe {
            avx2_k::matmul_vnni(dtype, w, &[a], out)
        },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `dot` (a K-quant: the blocks of 256 were checked
        // above).
        Level::Avx2 | Level::Avx512 if !has_row_kernels(dtype) => unsafe {
            avx2_k::matmul(dtype, w, &[a], out)
        },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `dot`; the lengths were checked above.
        Level::Avx2 | Level::Avx512 => unsafe {
            avx2::matmul_step(super::dot4::has_vnni(), dtype, w, &[a], out, (1, 0))
        },
        #[cfg(target_arch = "aarch64")]
        Level::Neon => each_row_and_token(dtype, w, &[a], out, dot),
        _ => matvec_scalar(dtype, w, a, out),
    }
}

/// Plain twin of [`matmul`]: one [`dot_scalar`] per row and token.
pub fn matmul_scalar(dtype: DType, w: &[u8], a: &[Q8Row<'_>], out: &mut [f32]) {
    each_row_and_token(dtype, w, a, out, dot_scalar);
}

/// `out[r · t + i] = row r of w · a[i]` for `out.len() / t` quantized rows
/// and `t = a.len()` activation rows, with the best kernel for this CPU
/// (AVX2: four rows, or one K-quant row, by up to four tokens at a time,
/// each block's codes unpacked once for every token). Every product is
/// computed exactly as
/// [`matvec`] computes it for its token alone.
///
/// # Panics
/// If `dtype` is not quantized or the lengths disagree.
pub fn matmul(dtype: DType, w: &[u8], a: &[Q8Row<'_>], out: &mut [f32]) {
    let t = a.len();
    let cols = a.first().map_or(0, |a| a.cols());
    let rows = out.len().checked_div(t).unwrap_or(0);
    let rb = dtype.bytes_for(cols);
    assert!(
        dtype.is_quantized()
            && t > 0
            && out.len() == rows * t
            && a.iter().all(|x| x.cols() == cols && acts_fit(dtype, x))
            && rb.and_then(|rb| rb.checked_mul(rows)) == Some(w.len()),
        "quant::matmul: {} bytes of {dtype} for {rows} rows of {cols} activations x {t} (or not in this format's block size)",
        w.len(),
    );
    match level() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `dot` (a K-quant: the blocks of 256 were checked
        // above); has_vnni() only where the CPU has AVX-512 VNNI and VL.
        Level::Avx512 if !has_row_kernels(dtype) && super::dot4::has_vnni() => unsafe {
            avx2_k::matmul_vnni(dtype, w, a, out)
        },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `dot` (a K-quant: the blocks of 256 were checked
        // above).
        Level::Avx2 | Level::Avx512 if !has_row_kernels(dtype) => unsafe {
            avx2_k::matmul(dtype, w, a, out)
        },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `dot`; the lengths were checked above.
        Level::Avx2 | Level::Avx512 => {
            let vnni = super::dot4::has_vnni();
            let mut i = 0;
            while i < t {
                let step = match t - i {
                    1 => 1,
                    2 | 3 => 2,
                    _ => 4,
                };
                // SAFETY: as in `dot` (VNNI only where has_vnni() says
                // so); tokens i..i + step are columns i.. of rows of t.
                unsafe { avx2::matmul_step(vnni, dtype, w, &a[i..i + step], out, (t, i)) };
                i += step;
            }
        }
        #[cfg(target_arch = "aarch64")]
        Level::Neon => each_row_and_token(dtype, w, a, out, dot),
        _ => matmul_scalar(dtype, w, a, out),
    }
}

/// Random weights of `dtype` (`rows` rows of `blocks` blocks) and `t`
/// random activation rows quantized for them: the case the kernels'
/// property tests run on.
#[cfg(test)]
fn random_case(
    dtype: DType,
    rows: usize,
    blocks: usize,
    t: usize,
    seed: u64,
) -> (Vec<u8>, super::act::Q8Acts) {
    use super::x8::tests::random;
    let cols = blocks * dtype.block_len();
    let w = super::quantize(dtype, &random(rows * cols, seed)).expect("finite values quantize");
    let mut acts = super::act::Q8Acts::default();
    acts.quantize_blocks(
        &random(t * cols, seed ^ 3),
        cols,
        true,
        cols.is_multiple_of(256),
    );
    (w, acts)
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::dispatch::detect;
    use crate::quant::dot4;
    use proptest::prelude::*;

    const FORMATS: [DType; 6] = [
        DType::Q4_0,
        DType::Q4_1,
        DType::Q5_0,
        DType::Q8_0,
        DType::Q4_K,
        DType::Q6_K,
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Every x86 entry point this CPU can run, not only the one the
        /// dispatcher picks: AVX2's dot products and four-row products stay
        /// within rounding of the plain twin, and VNNI's (on a CPU that has
        /// it) give AVX2's bits, the K-quants' matrix products too.
        #[test]
        fn each_x86_kernel_agrees_with_the_plain_twin(
            rows in 1usize..11, blocks in 1usize..4, t in 1usize..6, seed in any::<u64>(),
        ) {
            if detect() < Level::Avx2 {
                return Ok(());
            }
            let vnni = dot4::has_vnni();
            for dtype in FORMATS {
                let (w, acts) = random_case(dtype, rows, blocks, t, seed);
                let rb = w.len() / rows;
                let a: Vec<_> = (0..t).map(|i| acts.row(i)).collect();
                for r in 0..rows {
                    let row = &w[r * rb..(r + 1) * rb];
                    for ai in &a {
                        let plain = dot_scalar(dtype, row, *ai);
                        // SAFETY: AVX2 (checked above); the row holds the
                        // activations' blocks.
                        let fast = unsafe { avx2::dot(dtype, row, *ai) };
                        prop_assert!((fast - plain).abs() <= 1e-4 * (1.0 + plain.abs()), "{dtype}: {fast} vs {plain}");
                        if vnni {
                            // SAFETY: as above, and has_vnni().
                            let v = unsafe { avx2::dot_vnni(dtype, row, *ai) };
                            prop_assert_eq!(v.to_bits(), fast.to_bits(), "{} dot", dtype);
                        }
                    }
                }
                if !has_row_kernels(dtype) {
                    // The K-quants' matrix products give each token its
                    // own dot product's bits, every tile size among them
                    // (a short prompt's rows rely on it), and VNNI's give
                    // AVX2's.
                    let mut narrow = vec![0f32; rows * t];
                    // SAFETY: AVX2 (checked above); `t` tokens into rows
                    // of `t` floats.
                    unsafe { avx2_k::matmul(dtype, &w, &a, &mut narrow) };
                    for (o, row) in narrow.chunks_exact(t).zip(w.chunks_exact(rb)) {
                        for (x, ai) in o.iter().zip(&a) {
                            // SAFETY: as above; the row holds the
                            // activations' blocks.
                            let one = unsafe { avx2::dot(dtype, row, *ai) };
                            prop_assert_eq!(x.to_bits(), one.to_bits(), "{} tile", dtype);
                        }
                    }
                    if vnni {
                        let mut wide = vec![0f32; rows * t];
                        // SAFETY: as above, and AVX-512 VNNI and VL
                        // (has_vnni()).
                        unsafe { avx2_k::matmul_vnni(dtype, &w, &a, &mut wide) };
                        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                        prop_assert_eq!(bits(&wide), bits(&narrow), "{} products", dtype);
                    }
                    continue;
                }
                for step in [1usize, 2, 4].into_iter().filter(|&s| s <= t) {
                    let (mut fast, mut wide) = (vec![0f32; rows * step], vec![0f32; rows * step]);
                    // SAFETY: AVX2; `step` tokens into rows of `step` floats.
                    unsafe { avx2::matmul_step(false, dtype, &w, &a[..step], &mut fast, (step, 0)) };
                    for (o, row) in fast.chunks_exact(step).zip(w.chunks_exact(rb)) {
                        for (x, ai) in o.iter().zip(&a) {
                            let plain = dot_scalar(dtype, row, *ai);
                            prop_assert!((x - plain).abs() <= 1e-4 * (1.0 + plain.abs()), "{dtype}: {x} vs {plain}");
                        }
                    }
                    if vnni {
                        // SAFETY: as above, and has_vnni().
                        unsafe { avx2::matmul_step(true, dtype, &w, &a[..step], &mut wide, (step, 0)) };
                        prop_assert_eq!(&wide, &fast);
                    }
                }
            }
        }
    }
}

#[cfg(all(test, target_arch = "aarch64"))]
mod neon_tests {
    use super::*;
    use crate::dispatch::detect;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Both NEON dot products (`sdot`'s only on a CPU that has it) give
        /// the plain twin's bits for every format, and the matrix products
        /// give each row's dot product.
        #[test]
        fn each_neon_dot_equals_the_plain_twin(
            rows in 1usize..6, blocks in 1usize..4, t in 1usize..4, seed in any::<u64>(),
        ) {
            for dtype in [DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q8_0, DType::Q4_K, DType::Q6_K] {
                let (w, acts) = random_case(dtype, rows, blocks, t, seed);
                let rb = w.len() / rows;
                let a: Vec<_> = (0..t).map(|i| acts.row(i)).collect();
                let mut by_rows = vec![0f32; rows * t];
                matmul(dtype, &w, &a, &mut by_rows);
                for r in 0..rows {
                    let row = &w[r * rb..(r + 1) * rb];
                    for (i, ai) in a.iter().enumerate() {
                        let plain = dot_scalar(dtype, row, *ai).to_bits();
                        if detect() == Level::Neon {
                            // SAFETY: NEON (checked above); the row holds
                            // the activations' blocks.
                            prop_assert_eq!(unsafe { neon::dot(dtype, row, *ai) }.to_bits(), plain, "{}", dtype);
                        }
                        if super::super::x8::neon::has_sdot() {
                            // SAFETY: as above, and the CPU has `sdot`.
                            prop_assert_eq!(unsafe { neon::dot_sdot(dtype, row, *ai) }.to_bits(), plain, "{}", dtype);
                        }
                        prop_assert_eq!(by_rows[r * t + i].to_bits(), dot(dtype, row, *ai).to_bits());
                    }
                }
            }
        }
    }
}
