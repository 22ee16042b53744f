//! The regrouped Q4_0 and Q4_1 rows ([`super::x8`]) times many tokens at
//! once, for prompts: an integer sum per block, scaled once.
//!
//! A decode step follows llama.cpp's own order for one row (eight partial
//! sums per block, each scaled apart), which keeps its logits close to
//! llama.cpp's and costs nothing while the step waits for memory. A prompt
//! of many tokens is limited by arithmetic instead, so it takes the
//! cheaper order: each block's 32 products are summed as integers (the
//! `maddubs` pairs of all eight code vectors added as 16-bit lanes, then
//! widened once), converted once and scaled once. A model whose decode
//! steps are batched can choose this order for them too
//! ([`super::SumOrder::Block`]), for every token count alike:
//!
//! `acc = (d·d_a)·p + acc`, then for Q4_1 `acc = m·s_a + acc`,
//!
//! per block, where `p = Σ code·q` over the block (Q4_0: `Σ code·q − 8·Σq`,
//! the codes taken as 0..15 and the offset removed with the activation
//! block's sum; Q8_0: the signed codes as they are). The eight rows of a group and four tokens at a time share
//! each unpacked block, so the nibbles are split once per four tokens. A
//! token's result does not depend on the others in the call, and the plain
//! twin [`matmul_scalar`] gives the same bits.
//!
//! The 16-bit lanes cannot overflow: a lane adds, over the eight code
//! vectors, two products of a code (at most 15) and an activation (at most
//! 127 in size), `8 · 2 · 15 · 127 = 30480 < 32767`. Q8_0's codes reach
//! 127 in size too, so one `maddubs` pair can reach `2 · 127 · 127 =
//! 32258`: its pairs are widened to 32 bits (`madd`) before they are
//! added, and a block costs a little more than a 4-bit one.

use super::QK;
use super::act::Q8Row;
use super::x8::{ROWS, block, check_shapes, head};
use crate::dtype::DType;
use crate::kernels::dispatch::{Level, level};

#[cfg(target_arch = "x86_64")]
#[path = "x8_prompt_avx2.rs"]
mod avx2;

/// True for the formats this kernel multiplies: the 4-bit formats and
/// Q8_0, whose codes are signed bytes (the products are summed as 32-bit
/// integers, since two of them can already fill a 16-bit lane).
pub fn supports(dtype: DType) -> bool {
    matches!(dtype, DType::Q4_0 | DType::Q4_1 | DType::Q8_0)
}

// ANCHOR: prompt_scalar
/// Plain twin of [`matmul`]: per row, token and block, the integer sum
/// `p`, then `acc = (d·d_a)·p + acc` and, for Q4_1, `acc = m·s_a + acc`.
pub fn matmul_scalar(dtype: DType, packed: &[u8], a: &[Q8Row<'_>], out: &mut [f32]) {
    let bs = ROWS * block(dtype).0;
    let h = head(dtype);
    let t = a.len();
    let nb = a.first().map_or(0, |a| a.d.len());
    let q4_1 = dtype == DType::Q4_1;
    for (g, group) in packed.chunks_exact((bs * nb).max(1)).enumerate() {
        for (i, ai) in a.iter().enumerate() {
            for j in 0..ROWS {
                let mut acc = 0f32;
                for (b, gb) in group.chunks_exact(bs).enumerate() {
                    let q = &ai.qs[b * QK..(b + 1) * QK];
                    let mut p = 0i32;
                    if dtype == DType::Q8_0 {
                        for (e, &x) in q.iter().enumerate() {
                            let code = gb[h + 32 * (e / 4) + 4 * j + e % 4] as i8;
                            p += i32::from(code) * i32::from(x);
                        }
                    } else {
                        for e in 0..QK / 2 {
                            let (lo, hi) = super::nibbles(gb[h + 32 * (e / 4) + 4 * j + e % 4]);
                            p += i32::from(lo) * i32::from(q[e])
                                + i32::from(hi) * i32::from(q[16 + e]);
                        }
                        if !q4_1 {
                            p -= 8 * ai.isum[b];
                        }
                    }
                    let dd = super::f16_at(gb, 2 * j) * ai.d[b];
                    acc = dd.mul_add(p as f32, acc);
                    if q4_1 {
                        acc = super::f16_at(gb, 16 + 2 * j).mul_add(ai.s[b], acc);
                    }
                }
                out[(g * ROWS + j) * t + i] = acc;
            }
        }
    }
}
// ANCHOR_END: prompt_scalar

/// `out[r · t + i] = row r · a[i]` for the `out.len() / t` rows of a
/// regrouped Q4_0 or Q4_1 matrix (whole groups) and `t = a.len()`
/// activation rows, with the best kernel for this CPU, in this module's
/// order (not the decode kernel's). A token's products do not depend on
/// the other tokens.
///
/// # Panics
/// If `dtype` is not Q4_0 or Q4_1 or the lengths disagree.
pub fn matmul(dtype: DType, packed: &[u8], a: &[Q8Row<'_>], out: &mut [f32]) {
    check_shapes("x8_prompt::matmul", supports(dtype), dtype, packed, a, out);
    match level() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: level() is Avx2 or Avx512 only when the CPU has AVX2,
        // FMA and F16C; the lengths were checked above.
        Level::Avx2 | Level::Avx512 => unsafe { avx2::matmul(dtype, packed, a, out) },
        _ => matmul_scalar(dtype, packed, a, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::act::Q8Acts;
    use crate::quant::x8::tests::check_kernel;
    use crate::quant::{quantize, x8};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// The kernel and its plain twin give the same bits for any number
        /// of tokens (tails of the four-token tiles included), each token
        /// the same bits alone, and the products equal the file layout's
        /// dot products up to float rounding.
        #[test]
        fn prompt_kernel_equals_its_twin_and_the_dot_products(
            groups in 1usize..4, nb in 1usize..6, t in 1usize..11, seed in any::<u64>(),
            q4_1 in any::<bool>(),
        ) {
            let dtype = if q4_1 { DType::Q4_1 } else { DType::Q4_0 };
            check_kernel(dtype, (groups, nb, t, seed), matmul, matmul_scalar)?;
            check_kernel(DType::Q8_0, (groups, nb, t, seed), matmul, matmul_scalar)?;
        }
    }

    #[test]
    fn saturating_blocks_stay_exact() {
        // Every code 15 against every activation 127 (and -127): the
        // largest 16-bit lane sums the kernel can meet.
        // Each block: one 0 (its minimum) and 31 ones, so d = 1/15 and the
        // ones get code 15.
        let cols = 2 * QK;
        let vals: Vec<f32> = (0..8 * cols)
            .map(|e| if e % QK == 0 { 0.0 } else { 1.0 })
            .collect();
        let w = quantize(DType::Q4_1, &vals).unwrap();
        let packed = x8::pack(DType::Q4_1, &w, 8, cols).unwrap();
        for sign in [1.0f32, -1.0] {
            let mut acts = Q8Acts::default();
            acts.quantize(&vec![sign; cols], cols);
            let a = [acts.row(0)];
            let (mut fast, mut plain) = (vec![0f32; 8], vec![0f32; 8]);
            matmul(DType::Q4_1, &packed, &a, &mut fast);
            matmul_scalar(DType::Q4_1, &packed, &a, &mut plain);
            assert_eq!(fast, plain);
            let want = sign * (cols - cols / QK) as f32;
            for v in fast {
                assert!((v - want).abs() < 0.01 * want.abs(), "{v} vs {want}");
            }
        }
    }
}
