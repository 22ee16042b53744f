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
use super::x8::{ROWS, block, check_rows, check_shapes, head};
use crate::dispatch::{Level, level};
use crate::dtype::DType;

#[cfg(target_arch = "x86_64")]
#[path = "x8_prompt_avx2.rs"]
mod avx2;
#[cfg(target_arch = "x86_64")]
#[path = "x8_prompt_avx512.rs"]
mod avx512;
#[cfg(target_arch = "aarch64")]
#[path = "x8_prompt_neon.rs"]
mod neon;

/// True for the formats this kernel multiplies: the 4-bit formats and
/// Q8_0, whose codes are signed bytes (the products are summed as 32-bit
/// integers, since two of them can already fill a 16-bit lane).
pub fn supports(dtype: DType) -> bool {
    matches!(dtype, DType::Q4_0 | DType::Q4_1 | DType::Q5_0 | DType::Q8_0)
}

/// Where a kernel puts its products: those of one group of
/// [`ROWS`] weight rows with one token at a time.
pub trait Sink {
    /// The products of weight rows `r..r + ROWS` with token `i`.
    fn put(&mut self, r: usize, i: usize, v: [f32; ROWS]);
}

/// `out[r · t + i]`: each weight row's products with the `t` tokens side
/// by side ([`matmul`]).
pub struct ByRow<'o> {
    /// The products, `rows × t`.
    pub out: &'o mut [f32],
    /// Tokens.
    pub t: usize,
}

impl Sink for ByRow<'_> {
    #[inline]
    fn put(&mut self, r: usize, i: usize, v: [f32; ROWS]) {
        for (j, x) in v.into_iter().enumerate() {
            self.out[(r + j) * self.t + i] = x;
        }
    }
}

/// Each token's products side by side, in that token's own row of
/// results: `rows[i][col + r]` is weight row `r`'s product with token `i`
/// ([`matmul_into`]). A batch's outputs then need no transposition.
pub struct TokenRows<'o, 'r> {
    /// One row of results per token.
    pub rows: &'o mut [&'r mut [f32]],
    /// Where weight row 0's product goes in each.
    pub col: usize,
}

impl Sink for TokenRows<'_, '_> {
    #[inline]
    fn put(&mut self, r: usize, i: usize, v: [f32; ROWS]) {
        let at = self.col + r;
        self.rows[i][at..at + ROWS].copy_from_slice(&v);
    }
}

/// Plain twin of [`matmul`].
pub fn matmul_scalar(dtype: DType, packed: &[u8], a: &[Q8Row<'_>], out: &mut [f32]) {
    let t = a.len();
    products_scalar(dtype, packed, a, &mut ByRow { out, t });
}

// ANCHOR: prompt_scalar
/// Plain twin of [`matmul`] and [`matmul_into`]: per row, token and
/// block, the integer sum `p`, then `acc = (d·d_a)·p + acc` and, for Q4_1,
/// `acc = m·s_a + acc`.
pub fn products_scalar(dtype: DType, packed: &[u8], a: &[Q8Row<'_>], sink: &mut impl Sink) {
    let bs = ROWS * block(dtype).0;
    let h = head(dtype);
    let nb = a.first().map_or(0, |a| a.d.len());
    let q4_1 = dtype == DType::Q4_1;
    for (g, group) in packed.chunks_exact((bs * nb).max(1)).enumerate() {
        for (i, ai) in a.iter().enumerate() {
            let mut lanes = [0f32; ROWS];
            for (j, lane) in lanes.iter_mut().enumerate() {
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
                            let (mut lo, mut hi) = (i32::from(lo), i32::from(hi));
                            if dtype == DType::Q5_0 {
                                let bits = gb[16 + 4 * j + e % 4];
                                lo += 16 * i32::from(bits >> (e / 4) & 1);
                                hi += 16 * i32::from(bits >> (4 + e / 4) & 1);
                            }
                            p += lo * i32::from(q[e]) + hi * i32::from(q[16 + e]);
                        }
                        match dtype {
                            DType::Q4_0 => p -= 8 * ai.isum[b],
                            DType::Q5_0 => p -= 16 * ai.isum[b],
                            _ => {}
                        }
                    }
                    let dd = super::f16_at(gb, 2 * j) * ai.d[b];
                    acc = dd.mul_add(p as f32, acc);
                    if q4_1 {
                        acc = super::f16_at(gb, 16 + 2 * j).mul_add(ai.s[b], acc);
                    }
                }
                *lane = acc;
            }
            sink.put(g * ROWS, i, lanes);
        }
    }
}
// ANCHOR_END: prompt_scalar

/// `out[r · t + i] = row r · a[i]` for the `out.len() / t` rows of a
/// regrouped Q4_0, Q4_1 or Q8_0 matrix (whole groups) and `t = a.len()`
/// activation rows, with the best kernel for this CPU, in this module's
/// order (not the decode kernel's). A token's products do not depend on
/// the other tokens.
///
/// # Panics
/// If `dtype` is not one of those formats or the lengths disagree.
pub fn matmul(dtype: DType, packed: &[u8], a: &[Q8Row<'_>], out: &mut [f32]) {
    check_shapes("x8_prompt::matmul", supports(dtype), dtype, packed, a, out);
    let t = a.len();
    products(dtype, packed, a, &mut ByRow { out, t });
}

/// [`matmul`] with each token's products in its own row of results:
/// `out.rows[i][out.col + r] = row r · a[i]` for the rows in `packed` (the
/// same bits as [`matmul`]).
///
/// # Panics
/// As [`matmul`], or if there is not one row of results per token, each
/// long enough.
pub fn matmul_into(dtype: DType, packed: &[u8], a: &[Q8Row<'_>], out: &mut TokenRows<'_, '_>) {
    let cols = a.first().map_or(0, |a| a.qs.len());
    let rows = dtype
        .bytes_for(cols)
        .and_then(|rb| packed.len().checked_div(rb))
        .unwrap_or(0);
    check_rows(
        "x8_prompt::matmul_into",
        supports(dtype),
        dtype,
        packed,
        a,
        rows,
    );
    assert!(
        out.rows.len() == a.len() && out.rows.iter().all(|r| r.len() >= out.col + rows),
        "x8_prompt::matmul_into: {} rows of results from column {} for {rows} rows x {}",
        out.rows.len(),
        out.col,
        a.len()
    );
    products(dtype, packed, a, out);
}

/// The kernel for this CPU, the lengths checked by the caller.
fn products(dtype: DType, packed: &[u8], a: &[Q8Row<'_>], sink: &mut impl Sink) {
    match level() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: has_vnni_512() is true only at the Avx512 level on a CPU
        // with AVX-512F, BW, VL and VNNI (and AVX2, FMA, F16C); the caller
        // checked the lengths.
        Level::Avx512 if super::dot4::has_vnni_512() => unsafe {
            avx512::matmul(dtype, packed, a, sink)
        },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: has_vnni() is true only at the Avx512 level on a CPU with
        // AVX-512 VNNI and VL (and AVX2, FMA, F16C); level() is Avx2 or
        // Avx512 only when the CPU has AVX2, FMA and F16C; the caller
        // checked the lengths.
        Level::Avx512 if super::dot4::has_vnni() => unsafe {
            avx2::matmul_vnni(dtype, packed, a, sink)
        },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Level::Avx2 | Level::Avx512 => unsafe { avx2::matmul(dtype, packed, a, sink) },
        #[cfg(target_arch = "aarch64")]
        // SAFETY: level() is Neon only on a CPU with NEON, and has_sdot()
        // is true only on one with the dot-product instructions; the
        // caller checked the lengths.
        Level::Neon if super::x8::neon::has_sdot() => unsafe {
            neon::matmul_sdot(dtype, packed, a, sink)
        },
        #[cfg(target_arch = "aarch64")]
        // SAFETY: as above.
        Level::Neon => unsafe { neon::matmul(dtype, packed, a, sink) },
        _ => products_scalar(dtype, packed, a, sink),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::act::Q8Acts;
    use crate::quant::x8::tests::check_kernel;
    #[cfg(target_arch = "x86_64")]
    use crate::quant::x8::tests::check_x86_kernels;
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
            which in 0usize..3,
        ) {
            let dtype = [DType::Q4_0, DType::Q4_1, DType::Q5_0][which];
            check_kernel(dtype, (groups, nb, t, seed), matmul, matmul_scalar)?;
            check_kernel(DType::Q8_0, (groups, nb, t, seed), matmul, matmul_scalar)?;
        }

        /// Each token's products in its own row of results (from any
        /// column) are the same bits as each row's, from the kernel and its
        /// twin, and nothing else in those rows is written.
        #[test]
        fn products_by_token_are_the_products_by_row(
            groups in 1usize..4, nb in 1usize..4, t in 1usize..11, (col, pad) in (0usize..9, 0usize..9),
            seed in any::<u64>(), which in 0usize..4,
        ) {
            let dtype = [DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q8_0][which];
            let (rows, cols) = (groups * ROWS, nb * QK);
            let w = quantize(dtype, &x8::tests::random(rows * cols, seed)).unwrap();
            let packed = x8::pack(dtype, &w, rows, cols).unwrap();
            let mut acts = Q8Acts::default();
            acts.quantize(&x8::tests::random(t * cols, seed ^ 5), cols);
            let a: Vec<_> = (0..t).map(|i| acts.row(i)).collect();
            let mut by_row = vec![0f32; rows * t];
            matmul(dtype, &packed, &a, &mut by_row);
            let width = col + rows + pad;
            let mut fast = vec![f32::NAN; t * width];
            let mut plain = fast.clone();
            let mut fr: Vec<&mut [f32]> = fast.chunks_mut(width).collect();
            matmul_into(dtype, &packed, &a, &mut TokenRows { rows: &mut fr, col });
            let mut pr: Vec<&mut [f32]> = plain.chunks_mut(width).collect();
            products_scalar(dtype, &packed, &a, &mut TokenRows { rows: &mut pr, col });
            for (e, (f, p)) in fast.iter().zip(&plain).enumerate() {
                let (i, c) = (e / width, e % width);
                if (col..col + rows).contains(&c) {
                    prop_assert_eq!(f.to_bits(), by_row[(c - col) * t + i].to_bits());
                    prop_assert_eq!(p.to_bits(), by_row[(c - col) * t + i].to_bits());
                } else {
                    prop_assert!(f.is_nan() && p.is_nan(), "written outside at {}", e);
                }
            }
        }
    }

    /// AVX2's kernel, called directly (the dispatcher may pick VNNI's).
    #[cfg(target_arch = "x86_64")]
    fn avx2_kernel(dtype: DType, packed: &[u8], a: &[Q8Row<'_>], out: &mut [f32]) {
        assert!(crate::dispatch::detect() >= Level::Avx2);
        let t = a.len();
        // SAFETY: the CPU has AVX2, FMA and F16C (checked above), and
        // `check_kernel` passes lengths that agree.
        unsafe { avx2::matmul(dtype, packed, a, &mut ByRow { out, t }) }
    }

    /// AVX-512 VNNI's kernel, called directly.
    #[cfg(target_arch = "x86_64")]
    fn vnni_kernel(dtype: DType, packed: &[u8], a: &[Q8Row<'_>], out: &mut [f32]) {
        assert!(crate::quant::dot4::has_vnni());
        let t = a.len();
        // SAFETY: the CPU has AVX-512 VNNI and VL besides AVX2 (checked
        // above), and `check_kernel` passes lengths that agree.
        unsafe { avx2::matmul_vnni(dtype, packed, a, &mut ByRow { out, t }) }
    }

    /// The 512-bit VNNI kernel (two groups at once), called directly.
    #[cfg(target_arch = "x86_64")]
    fn vnni_512_kernel(dtype: DType, packed: &[u8], a: &[Q8Row<'_>], out: &mut [f32]) {
        assert!(crate::quant::dot4::has_vnni_512());
        let t = a.len();
        // SAFETY: the CPU has AVX-512F, BW, VL and VNNI besides AVX2
        // (checked above), and `check_kernel` passes lengths that agree.
        unsafe { avx512::matmul(dtype, packed, a, &mut ByRow { out, t }) }
    }

    #[cfg(target_arch = "x86_64")]
    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Every x86 kernel this CPU can run, not only the one the
        /// dispatcher picks, gives its plain twin's bits (VNNI's only on a
        /// CPU that has it; the 512-bit one on odd and even numbers of
        /// groups).
        #[test]
        fn each_x86_kernel_equals_the_plain_twin(
            groups in 1usize..6, nb in 1usize..6, t in 1usize..11, seed in any::<u64>(),
            which in 0usize..4,
        ) {
            let dtype = [DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q8_0][which];
            let case = (groups, nb, t, seed);
            let kernels = [avx2_kernel, vnni_kernel, vnni_512_kernel];
            check_x86_kernels(dtype, case, kernels, matmul_scalar)?;
        }
    }

    /// The NEON kernel with `sdot`, called directly.
    #[cfg(target_arch = "aarch64")]
    fn sdot_kernel(dtype: DType, packed: &[u8], a: &[Q8Row<'_>], out: &mut [f32]) {
        assert!(x8::neon::has_sdot());
        let t = a.len();
        // SAFETY: the CPU has NEON and the dot-product instructions
        // (checked above), and `check_kernel` passes lengths that agree.
        unsafe { neon::matmul_sdot(dtype, packed, a, &mut ByRow { out, t }) }
    }

    /// The NEON kernel without `sdot`, called directly.
    #[cfg(target_arch = "aarch64")]
    fn widening_kernel(dtype: DType, packed: &[u8], a: &[Q8Row<'_>], out: &mut [f32]) {
        assert!(crate::dispatch::detect() == Level::Neon);
        let t = a.len();
        // SAFETY: the CPU has NEON (checked above), and `check_kernel`
        // passes lengths that agree.
        unsafe { neon::matmul(dtype, packed, a, &mut ByRow { out, t }) }
    }

    #[cfg(target_arch = "aarch64")]
    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Both NEON kernels, not only the one the dispatcher picks, give
        /// their plain twin's bits (`sdot`'s only on a CPU that has it).
        #[test]
        fn each_neon_kernel_equals_the_plain_twin(
            groups in 1usize..6, nb in 1usize..6, t in 1usize..11, seed in any::<u64>(),
            which in 0usize..4,
        ) {
            let dtype = [DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q8_0][which];
            let case = (groups, nb, t, seed);
            if crate::dispatch::detect() == Level::Neon {
                check_kernel(dtype, case, widening_kernel, matmul_scalar)?;
            }
            if x8::neon::has_sdot() {
                check_kernel(dtype, case, sdot_kernel, matmul_scalar)?;
            }
        }
    }

    #[test]
    fn saturating_blocks_stay_exact() {
        // Every code at its largest against every activation 127 (and
        // -127): the largest 16-bit lane sums the kernel can meet. Q4_1:
        // each block one 0 (its minimum) and 31 ones, so d = 1/15 and the
        // ones get code 15. Q5_0: one -1 and 31 ones, so d = -1/16 and the
        // ones get code 31 (fifth bit and nibble 15), worth 15/16 each.
        let cols = 2 * QK;
        for (dtype, first, one) in [(DType::Q4_1, 0.0, 1.0), (DType::Q5_0, -1.0, 0.9375f32)] {
            let vals: Vec<f32> = (0..8 * cols)
                .map(|e| if e % QK == 0 { first } else { 1.0 })
                .collect();
            let w = quantize(dtype, &vals).unwrap();
            let packed = x8::pack(dtype, &w, 8, cols).unwrap();
            for sign in [1.0f32, -1.0] {
                let mut acts = Q8Acts::default();
                acts.quantize(&vec![sign; cols], cols);
                let a = [acts.row(0)];
                let (mut fast, mut plain) = (vec![0f32; 8], vec![0f32; 8]);
                matmul(dtype, &packed, &a, &mut fast);
                matmul_scalar(dtype, &packed, &a, &mut plain);
                assert_eq!(fast, plain, "{dtype}");
                let per_block = (QK - 1) as f32 * one + first;
                let want = sign * per_block * (cols / QK) as f32;
                for v in fast {
                    assert!(
                        (v - want).abs() < 0.01 * want.abs(),
                        "{dtype}: {v} vs {want}"
                    );
                }
            }
        }
    }
}
