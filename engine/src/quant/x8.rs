//! Q4_0, Q4_1, Q5_0 and Q8_0 rows regrouped eight at a time, the layout
//! the integer kernels read fastest.
//!
//! In a GGUF file every row is its own run of blocks, so a kernel that
//! multiplies one row by an activation block gets 32 products spread over
//! the lanes of a register and must add them across the register
//! (`hadd`) before it can scale them: costly shuffles for every block.
//! Regrouped, the `b`-th blocks of eight consecutive rows lie together:
//!
//! | bytes | Q4_0 | Q4_1 | Q5_0 | Q8_0 |
//! |---|---|---|---|---|
//! | scales | `d` of rows 0–7 (8 × f16) | `d` of rows 0–7, then `m` of rows 0–7 | as Q4_0 | as Q4_0 |
//! | fifth bits | — | — | 4 bytes per row (below) | — |
//! | codes | 4 chunks of 32 bytes | the same | the same | 8 chunks of 32 bytes |
//!
//! Chunk `k` holds code bytes `4k..4k + 4` of row 0, then of row 1, …, row
//! 7. For the 4-bit formats low nibbles are elements `4k..4k + 4` of the
//! block and high nibbles elements `16 + 4k..16 + 4k + 4`; for Q8_0 each
//! byte is one element, `4k..4k + 4`. Q5_0's fifth bits are rearranged to
//! match the code bytes: byte `e` of a row's four holds the fifth bits of
//! the codes in byte `e` of every chunk, bit `k` that of element `4k + e`
//! (chunk `k`'s low nibble) and bit `4 + k` that of element `16 + 4k + e`
//! (its high nibble), so one shift and one mask put chunk `k`'s fifth bits
//! under its codes. One 32-byte load then puts four
//! elements of each of the eight rows in its own 32-bit lane; multiplied by
//! those four activation codes broadcast to every lane, each lane sums one
//! row's products, and after the eight chunk halves the eight lanes are the
//! eight rows' integer sums, ready to be scaled, with no adding across
//! lanes. A group of a block is exactly as long as the eight rows' blocks
//! were, so the regrouped matrix has the file's size; it is made once at
//! load ([`pack`]) and every row can be put back ([`unpack_row`]).
//!
//! Each product is computed the same way whatever the number of tokens,
//! and in the order of ggml's own AVX2 dot product for one row (eight
//! partial sums per block, scaled and accumulated apart, added up at the
//! end; see [`matmul_scalar`]), so the plain twin and the AVX2 body (and
//! the NEON ones, `x8_neon.rs`) give the same bits, and follow the operations of llama.cpp's row-by-row
//! AVX2 kernels (`ggml_vec_dot_q4_1_q8_1` and its siblings, as read in its
//! source).

use super::QK;
use super::act::Q8Row;
use crate::dispatch::{Level, level};
use crate::dtype::DType;

#[cfg(target_arch = "x86_64")]
#[path = "x8_avx2.rs"]
pub(super) mod avx2;
#[cfg(target_arch = "x86_64")]
#[path = "x8_avx512.rs"]
pub(super) mod avx512;
#[cfg(target_arch = "aarch64")]
#[path = "x8_neon.rs"]
pub(super) mod neon;

/// Rows per group.
pub const ROWS: usize = 8;

/// The regrouped formats as the const parameter of the x86 and NEON kernel
/// bodies, which are compiled once per format so that every test of the
/// format is settled at compile time.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(super) mod form {
    use crate::dtype::DType;

    /// Q4_0.
    pub const Q4_0: u8 = 0;
    /// Q4_1.
    pub const Q4_1: u8 = 1;
    /// Q8_0.
    pub const Q8_0: u8 = 2;
    /// Q5_0.
    pub const Q5_0: u8 = 3;

    /// The dtype of format `f`.
    pub const fn dtype(f: u8) -> DType {
        match f {
            Q4_1 => DType::Q4_1,
            Q5_0 => DType::Q5_0,
            Q8_0 => DType::Q8_0,
            _ => DType::Q4_0,
        }
    }
}

/// True for the formats that have a regrouped layout.
pub fn supports(dtype: DType) -> bool {
    matches!(dtype, DType::Q4_0 | DType::Q4_1 | DType::Q5_0 | DType::Q8_0)
}

/// Bytes of scales (and minimums, or fifth bits) at the head of a group's
/// block.
#[inline]
pub(super) const fn head(dtype: DType) -> usize {
    match dtype {
        DType::Q4_1 => 32,
        DType::Q5_0 => 48,
        _ => 16,
    }
}

/// Bytes of one row's block in the file's layout, and where its codes
/// start.
#[inline]
pub(super) const fn block(dtype: DType) -> (usize, usize) {
    match dtype {
        DType::Q4_1 => (20, 4),
        DType::Q5_0 => (22, 6),
        DType::Q8_0 => (34, 2),
        _ => (18, 2),
    }
}

/// Chunks of four code bytes per row and block (32 bytes each, regrouped).
#[inline]
const fn chunks(dtype: DType) -> usize {
    let (bs, codes_at) = block(dtype);
    (bs - codes_at) / 4
}

/// Whether [`pack`] regroups `rows` rows of `cols` values of `dtype` held
/// in `len` bytes: a format with a regrouped layout, whole groups of rows,
/// whole blocks, and the lengths agreeing.
pub fn packs(dtype: DType, len: usize, rows: usize, cols: usize) -> bool {
    supports(dtype)
        && rows.is_multiple_of(ROWS)
        && cols.is_multiple_of(QK)
        && dtype
            .bytes_for(cols)
            .is_some_and(|rb| rows.checked_mul(rb) == Some(len))
}

// ANCHOR: pack
/// Regroup `rows` rows of `cols` values of `dtype`, stored as in the file,
/// eight at a time. `None` if the format has no regrouped layout, `rows`
/// is not a multiple of 8, or the lengths disagree.
pub fn pack(dtype: DType, bytes: &[u8], rows: usize, cols: usize) -> Option<Vec<u8>> {
    let mut out = vec![0u8; bytes.len()];
    pack_into(dtype, bytes, rows, cols, &mut out)?;
    Some(out)
}

/// [`pack`] into `out`, which has as many bytes as `bytes` (a weight's
/// piece of a [`Home`](crate::tensor::home::Home), say). `None`, with
/// `out` untouched, where `pack` gives `None` or `out` has another length.
pub fn pack_into(
    dtype: DType,
    bytes: &[u8],
    rows: usize,
    cols: usize,
    out: &mut [u8],
) -> Option<()> {
    if !packs(dtype, bytes.len(), rows, cols) || out.len() != bytes.len() {
        return None;
    }
    let rb = dtype.bytes_for(cols)?;
    let (bs, codes_at) = block(dtype);
    let (nb, h) = (cols / QK, head(dtype));
    for (g, group) in out.chunks_exact_mut(ROWS * rb).enumerate() {
        for (b, dst) in group.chunks_exact_mut(ROWS * bs).enumerate() {
            for j in 0..ROWS {
                let src = &bytes[(g * ROWS + j) * rb + b * bs..][..bs];
                dst[2 * j..2 * j + 2].copy_from_slice(&src[..2]);
                if dtype == DType::Q4_1 {
                    dst[16 + 2 * j..16 + 2 * j + 2].copy_from_slice(&src[2..4]);
                }
                if dtype == DType::Q5_0 {
                    let qh = u32::from_le_bytes([src[2], src[3], src[4], src[5]]);
                    dst[16 + 4 * j..16 + 4 * j + 4].copy_from_slice(&fifth_bits_by_byte(qh));
                }
                for k in 0..chunks(dtype) {
                    let at = h + 32 * k + 4 * j;
                    dst[at..at + 4].copy_from_slice(&src[codes_at + 4 * k..codes_at + 4 * k + 4]);
                }
            }
        }
        debug_assert!(nb * ROWS * bs == group.len());
    }
    Some(())
}
// ANCHOR_END: pack

/// A Q5_0 block's fifth bits (bit `i` for element `i`) by code byte: byte
/// `e` holds, in bit `k`, the bit of element `4k + e` and, in bit `4 + k`,
/// that of element `16 + 4k + e`.
fn fifth_bits_by_byte(qh: u32) -> [u8; 4] {
    std::array::from_fn(|e| {
        (0..4).fold(0u8, |b, k| {
            let low = (qh >> (4 * k + e)) & 1;
            let high = (qh >> (16 + 4 * k + e)) & 1;
            b | (low as u8) << k | (high as u8) << (4 + k)
        })
    })
}

/// The inverse of [`fifth_bits_by_byte`].
fn fifth_bits_in_order(by_byte: [u8; 4]) -> u32 {
    let mut qh = 0u32;
    for (e, &b) in by_byte.iter().enumerate() {
        for k in 0..4 {
            qh |= u32::from(b >> k & 1) << (4 * k + e);
            qh |= u32::from(b >> (4 + k) & 1) << (16 + 4 * k + e);
        }
    }
    qh
}

/// Row `r` of a regrouped matrix (`cols` values per row) put back in the
/// file's layout into `row` (`dtype.bytes_for(cols)` bytes).
///
/// # Panics
/// If `r` is past the matrix or `row` has the wrong length.
pub fn unpack_row(dtype: DType, packed: &[u8], cols: usize, r: usize, row: &mut [u8]) {
    let (bs, codes_at) = block(dtype);
    let (rb, h) = (row.len(), head(dtype));
    assert_eq!(
        Some(rb),
        dtype.bytes_for(cols),
        "x8::unpack_row: row length"
    );
    let (g, j) = (r / ROWS, r % ROWS);
    let group = &packed[g * ROWS * rb..(g + 1) * ROWS * rb];
    for (src, dst) in group.chunks_exact(ROWS * bs).zip(row.chunks_exact_mut(bs)) {
        dst[..2].copy_from_slice(&src[2 * j..2 * j + 2]);
        if dtype == DType::Q4_1 {
            dst[2..4].copy_from_slice(&src[16 + 2 * j..16 + 2 * j + 2]);
        }
        if dtype == DType::Q5_0 {
            let by_byte = [
                src[16 + 4 * j],
                src[17 + 4 * j],
                src[18 + 4 * j],
                src[19 + 4 * j],
            ];
            dst[2..6].copy_from_slice(&fifth_bits_in_order(by_byte).to_le_bytes());
        }
        for k in 0..chunks(dtype) {
            let at = h + 32 * k + 4 * j;
            dst[codes_at + 4 * k..codes_at + 4 * k + 4].copy_from_slice(&src[at..at + 4]);
        }
    }
}

// ANCHOR: matmul_scalar
/// Plain twin of [`matmul`], with ggml's arithmetic for one row and token:
/// eight partial sums `p_l` per block (the products of elements `4l..4l +
/// 4`; for the 4-bit formats those of `l < 4`, and `16 + 4(l − 4)..` for
/// `l ≥ 4`, with Q4_0's codes minus 8 and Q5_0's, fifth bit included,
/// minus 16), each accumulated as `acc_l = (d·d_a)·p_l + acc_l` over the blocks,
/// Q4_1's `mins = m·s_a + mins` apart, then
/// `((acc₀ + acc₄) + (acc₂ + acc₆)) + ((acc₁ + acc₅) + (acc₃ + acc₇)) + mins`.
pub fn matmul_scalar(dtype: DType, packed: &[u8], a: &[Q8Row<'_>], out: &mut [f32]) {
    let (bs, _) = block(dtype);
    let h = head(dtype);
    let t = a.len();
    let nb = a.first().map_or(0, |a| a.d.len());
    let q4_1 = dtype == DType::Q4_1;
    for (g, group) in packed.chunks_exact((ROWS * bs * nb).max(1)).enumerate() {
        for (i, ai) in a.iter().enumerate() {
            for j in 0..ROWS {
                let (mut acc, mut mins) = ([0f32; 8], 0f32);
                for (b, gb) in group.chunks_exact(ROWS * bs).enumerate() {
                    let q = &ai.qs[b * QK..(b + 1) * QK];
                    let dd = super::f16_at(gb, 2 * j) * ai.d[b];
                    for (l, acc) in acc.iter_mut().enumerate() {
                        let mut p = 0i32;
                        for e in 0..4 {
                            let code = if dtype == DType::Q8_0 {
                                i32::from(gb[h + 32 * l + 4 * j + e] as i8)
                            } else {
                                let (lo, hi) = super::nibbles(gb[h + 32 * (l % 4) + 4 * j + e]);
                                let code = i32::from(if l >= 4 { hi } else { lo });
                                match dtype {
                                    DType::Q4_1 => code,
                                    DType::Q5_0 => {
                                        // Partial sum l reads chunk l % 4's
                                        // low (l < 4) or high nibbles: bit l.
                                        let fifth = gb[16 + 4 * j + e] >> l & 1;
                                        code + 16 * i32::from(fifth) - 16
                                    }
                                    _ => code - 8,
                                }
                            };
                            p += code * i32::from(q[4 * l + e]);
                        }
                        *acc = dd.mul_add(p as f32, *acc);
                    }
                    if q4_1 {
                        mins = super::f16_at(gb, 16 + 2 * j).mul_add(ai.s[b], mins);
                    }
                }
                let sum = ((acc[0] + acc[4]) + (acc[2] + acc[6]))
                    + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
                out[(g * ROWS + j) * t + i] = sum + mins;
            }
        }
    }
}
// ANCHOR_END: matmul_scalar

/// The checks every regrouped kernel makes before it trusts its lengths:
/// a format it `handles`, at least one token, whole groups of rows, every
/// activation row as long as a weight row (with its block scales and
/// sums), `packed` holding exactly those rows, and `out` holding one
/// product per row and token (`out.len() / t` rows).
///
/// # Panics
/// With `name` and the lengths, if any check fails.
pub(super) fn check_shapes(
    name: &str,
    handles: bool,
    dtype: DType,
    packed: &[u8],
    a: &[Q8Row<'_>],
    out: &[f32],
) {
    let rows = out.len().checked_div(a.len()).unwrap_or(0);
    assert!(
        out.len() == rows * a.len(),
        "{name}: {} products for {} tokens",
        out.len(),
        a.len()
    );
    check_rows(name, handles, dtype, packed, a, rows);
}

/// [`check_shapes`] for `rows` weight rows, wherever the products go.
///
/// # Panics
/// With `name` and the lengths, if any check fails.
pub(super) fn check_rows(
    name: &str,
    handles: bool,
    dtype: DType,
    packed: &[u8],
    a: &[Q8Row<'_>],
    rows: usize,
) {
    let t = a.len();
    let cols = a.first().map_or(0, |a| a.qs.len());
    let nb = cols / QK;
    assert!(
        handles
            && t > 0
            && rows.is_multiple_of(ROWS)
            && a.iter().all(|x| x.qs.len() == cols
                && x.qu.len() == cols
                && x.d.len() == nb
                && x.s.len() == nb
                && x.isum.len() == nb)
            && dtype.bytes_for(cols).and_then(|rb| rb.checked_mul(rows)) == Some(packed.len()),
        "{name}: {} bytes of {dtype} for {rows} rows of {cols} activations x {t}",
        packed.len(),
    );
}

/// `out[r · t + i] = row r · a[i]` for the `out.len() / t` rows of a
/// regrouped matrix (a whole number of groups) and `t = a.len()`
/// activation rows, with the best kernel for this CPU. A token's products
/// do not depend on the other tokens.
///
/// # Panics
/// If `dtype` has no regrouped layout or the lengths disagree.
pub fn matmul(dtype: DType, packed: &[u8], a: &[Q8Row<'_>], out: &mut [f32]) {
    check_shapes("x8::matmul", supports(dtype), dtype, packed, a, out);
    match level() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: has_vnni_512() is true only at the Avx512 level on a CPU
        // with AVX-512F, BW, VL and VNNI (and AVX2, FMA, F16C); the lengths
        // were checked above.
        Level::Avx512 if super::dot4::has_vnni_512() => unsafe {
            avx512::matmul(dtype, packed, a, out)
        },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: has_vnni() is true only at the Avx512 level on a CPU with
        // AVX-512 VNNI and VL (and AVX2, FMA, F16C), level() is Avx2 or
        // Avx512 only when the CPU has AVX2, FMA and F16C; the lengths
        // were checked above.
        Level::Avx512 if super::dot4::has_vnni() => unsafe {
            avx2::matmul_vnni(dtype, packed, a, out)
        },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Level::Avx2 | Level::Avx512 => unsafe { avx2::matmul(dtype, packed, a, out) },
        #[cfg(target_arch = "aarch64")]
        // SAFETY: level() is Neon only on a CPU with NEON, and has_sdot()
        // is true only on one with the dot-product instructions; the
        // lengths were checked above.
        Level::Neon if neon::has_sdot() => unsafe { neon::matmul_sdot(dtype, packed, a, out) },
        #[cfg(target_arch = "aarch64")]
        // SAFETY: as above.
        Level::Neon => unsafe { neon::matmul(dtype, packed, a, out) },
        _ => matmul_scalar(dtype, packed, a, out),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::quant::act::Q8Acts;
    use crate::quant::{dot, quantize};
    use proptest::prelude::*;

    /// Pseudo-random values in [-1, 1].
    pub(crate) fn random(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    /// A regrouped kernel against its plain twin (the same bits), each
    /// token alone (the same bits as in the batch), and the file layout's
    /// own dot products (up to float rounding), on random weights of
    /// `groups` groups of `nb` blocks and `t` random activation rows.
    pub(crate) fn check_kernel(
        dtype: DType,
        (groups, nb, t, seed): (usize, usize, usize, u64),
        fast: Kernel,
        plain: Kernel,
    ) -> Result<(), TestCaseError> {
        let (rows, cols) = (groups * ROWS, nb * QK);
        let w = quantize(dtype, &random(rows * cols, seed)).unwrap();
        let packed = pack(dtype, &w, rows, cols).unwrap();
        let rb = w.len() / rows;
        let mut acts = Q8Acts::default();
        acts.quantize(&random(t * cols, seed ^ 7), cols);
        let a: Vec<_> = (0..t).map(|i| acts.row(i)).collect();
        let (mut got, mut twin) = (vec![0f32; rows * t], vec![0f32; rows * t]);
        fast(dtype, &packed, &a, &mut got);
        plain(dtype, &packed, &a, &mut twin);
        prop_assert_eq!(&got, &twin);
        for (i, ai) in a.iter().enumerate() {
            let mut alone = vec![0f32; rows];
            fast(dtype, &packed, &[*ai], &mut alone);
            for r in 0..rows {
                prop_assert_eq!(alone[r].to_bits(), got[r * t + i].to_bits());
                let want = dot::dot_scalar(dtype, &w[r * rb..(r + 1) * rb], *ai);
                let tol = 1e-5 * (1.0 + want.abs()) * nb as f32;
                prop_assert!(
                    (got[r * t + i] - want).abs() <= tol,
                    "{} vs {want}",
                    got[r * t + i]
                );
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Regrouping keeps every byte: each row comes back as it was, and
        /// the products equal the file layout's own dot products up to
        /// float rounding, for every token count (the same bits alone or in a
        /// batch), on both kernels.
        #[test]
        fn regrouped_rows_round_trip_and_multiply_like_the_file(
            groups in 1usize..4, nb in 1usize..6, t in 1usize..7, seed in any::<u64>(),
            which in 0usize..4,
        ) {
            let dtype = [DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q8_0][which];
            let (rows, cols) = (groups * ROWS, nb * QK);
            let w = quantize(dtype, &random(rows * cols, seed)).unwrap();
            let packed = pack(dtype, &w, rows, cols).unwrap();
            let rb = w.len() / rows;
            let mut row = vec![0u8; rb];
            for r in 0..rows {
                unpack_row(dtype, &packed, cols, r, &mut row);
                prop_assert_eq!(&row[..], &w[r * rb..(r + 1) * rb]);
            }
            check_kernel(dtype, (groups, nb, t, seed), matmul, matmul_scalar)?;
        }
    }

    /// AVX2's kernel, called directly (the dispatcher may pick VNNI's).
    #[cfg(target_arch = "x86_64")]
    fn avx2_kernel(dtype: DType, packed: &[u8], a: &[Q8Row<'_>], out: &mut [f32]) {
        assert!(crate::dispatch::detect() >= Level::Avx2);
        // SAFETY: the CPU has AVX2, FMA and F16C (checked above), and
        // `check_kernel` passes lengths that agree.
        unsafe { avx2::matmul(dtype, packed, a, out) }
    }

    /// AVX-512 VNNI's kernel, called directly.
    #[cfg(target_arch = "x86_64")]
    fn vnni_kernel(dtype: DType, packed: &[u8], a: &[Q8Row<'_>], out: &mut [f32]) {
        assert!(crate::quant::dot4::has_vnni());
        // SAFETY: the CPU has AVX-512 VNNI and VL besides AVX2 (checked
        // above), and `check_kernel` passes lengths that agree.
        unsafe { avx2::matmul_vnni(dtype, packed, a, out) }
    }

    /// The 512-bit VNNI kernel (two groups at once), called directly.
    #[cfg(target_arch = "x86_64")]
    fn vnni_512_kernel(dtype: DType, packed: &[u8], a: &[Q8Row<'_>], out: &mut [f32]) {
        assert!(crate::quant::dot4::has_vnni_512());
        // SAFETY: the CPU has AVX-512F, BW, VL and VNNI besides AVX2
        // (checked above), and `check_kernel` passes lengths that agree.
        unsafe { avx512::matmul(dtype, packed, a, out) }
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
            groups in 1usize..6, nb in 1usize..6, t in 1usize..7, seed in any::<u64>(),
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
        assert!(neon::has_sdot());
        // SAFETY: the CPU has NEON and the dot-product instructions
        // (checked above), and `check_kernel` passes lengths that agree.
        unsafe { neon::matmul_sdot(dtype, packed, a, out) }
    }

    /// The NEON kernel without `sdot` (widening multiplies), called
    /// directly.
    #[cfg(target_arch = "aarch64")]
    fn widening_kernel(dtype: DType, packed: &[u8], a: &[Q8Row<'_>], out: &mut [f32]) {
        assert!(crate::dispatch::detect() == Level::Neon);
        // SAFETY: the CPU has NEON (checked above), and `check_kernel`
        // passes lengths that agree.
        unsafe { neon::matmul(dtype, packed, a, out) }
    }

    #[cfg(target_arch = "aarch64")]
    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Both NEON kernels, not only the one the dispatcher picks, give
        /// their plain twin's bits (`sdot`'s only on a CPU that has it).
        #[test]
        fn each_neon_kernel_equals_the_plain_twin(
            groups in 1usize..6, nb in 1usize..6, t in 1usize..7, seed in any::<u64>(),
            which in 0usize..4,
        ) {
            let dtype = [DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q8_0][which];
            let case = (groups, nb, t, seed);
            if crate::dispatch::detect() == Level::Neon {
                check_kernel(dtype, case, widening_kernel, matmul_scalar)?;
            }
            if neon::has_sdot() {
                check_kernel(dtype, case, sdot_kernel, matmul_scalar)?;
            }
        }
    }

    /// A kernel with the signature of [`matmul`].
    pub(crate) type Kernel = fn(DType, &[u8], &[Q8Row<'_>], &mut [f32]);

    /// [`check_kernel`] for the AVX2, VNNI and 512-bit VNNI entry points
    /// `[avx2, vnni, vnni_512]`, each where this CPU can run it.
    #[cfg(target_arch = "x86_64")]
    pub(crate) fn check_x86_kernels(
        dtype: DType,
        case: (usize, usize, usize, u64),
        [avx2, vnni, vnni_512]: [Kernel; 3],
        plain: Kernel,
    ) -> Result<(), TestCaseError> {
        if crate::dispatch::detect() >= Level::Avx2 {
            check_kernel(dtype, case, avx2, plain)?;
        }
        if crate::quant::dot4::has_vnni() {
            check_kernel(dtype, case, vnni, plain)?;
        }
        if crate::quant::dot4::has_vnni_512() {
            check_kernel(dtype, case, vnni_512, plain)?;
        }
        Ok(())
    }

    #[test]
    fn formats_and_shapes_without_a_regrouped_layout_are_refused() {
        let w = quantize(DType::Q4_K, &random(8 * 256, 1)).unwrap();
        assert!(pack(DType::Q4_K, &w, 8, 256).is_none());
        let w = quantize(DType::Q4_1, &random(4 * 32, 1)).unwrap();
        assert!(pack(DType::Q4_1, &w, 4, 32).is_none());
        assert!(pack(DType::Q4_1, &w[..40], 8, 32).is_none());
    }
}
