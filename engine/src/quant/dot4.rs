//! Four byte products per 32-bit lane, the step every x86 integer kernel
//! of this crate is built on, in two instruction sets.
//!
//! A kernel multiplies unsigned bytes `u` by signed bytes `s` and adds
//! each run of four neighbouring products into the 32-bit lane that holds
//! them. AVX2 needs two instructions for that: `maddubs` multiplies and
//! adds pairs into 16-bit lanes, `madd` against ones adds the pairs into
//! 32-bit lanes. AVX-512 VNNI does it in one, `vpdpbusd`, which also adds
//! the result to an accumulator. The AVX2 pair saturates a 16-bit lane
//! above 32,767; the kernels only give it bytes whose pairs stay below
//! that (4-bit codes, or signed codes made non-negative, at most
//! `2 · 128 · 127 = 32,512`), so both compute the same integers, and a
//! kernel written once over [`Products`] gives the same bits on either.
//!
//! The kernels are written once, generic over [`Products`], as
//! `#[inline(always)]` bodies without target features of their own: each
//! instruction set has an entry point with its `#[target_feature]`, into
//! which the body and these products are inlined.

use std::arch::x86_64::*;

// ANCHOR: products
/// One instruction set's way to add up byte products.
pub(in crate::quant) trait Products {
    /// `acc + Σ u·s` over each 32-bit lane's four byte pairs.
    ///
    /// # Safety
    /// The CPU has the instruction set, and the caller was compiled for
    /// it (an entry point with its target features).
    unsafe fn add4(acc: __m256i, u: __m256i, s: __m256i) -> __m256i;

    /// Add `u·s` to a running sum that [`Products::total`] turns into
    /// 32-bit lanes, for sums known to fit 16-bit lanes (AVX2 keeps them
    /// there, one instruction cheaper per step).
    ///
    /// # Safety
    /// As [`Products::add4`].
    unsafe fn add_short(acc: __m256i, u: __m256i, s: __m256i) -> __m256i;

    /// A sum made by [`Products::add_short`], as 32-bit lanes of four
    /// products each.
    ///
    /// # Safety
    /// As [`Products::add4`].
    unsafe fn total(acc: __m256i) -> __m256i;

    /// `acc + Σ p·w` over each 32-bit lane's two 16-bit pairs: `maddubs`
    /// results weighed by 16-bit factors (the K-quants' sub-block scales).
    ///
    /// # Safety
    /// As [`Products::add4`].
    unsafe fn add_pairs(acc: __m256i, p: __m256i, w: __m256i) -> __m256i;
}

/// AVX2: `maddubs`, then `madd` against ones.
pub(in crate::quant) struct Avx2;

impl Products for Avx2 {
    #[inline(always)]
    unsafe fn add4(acc: __m256i, u: __m256i, s: __m256i) -> __m256i {
        // SAFETY: the caller's contract (AVX2).
        unsafe {
            let pairs = _mm256_maddubs_epi16(u, s);
            _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)))
        }
    }

    #[inline(always)]
    unsafe fn add_short(acc: __m256i, u: __m256i, s: __m256i) -> __m256i {
        // SAFETY: the caller's contract (AVX2).
        unsafe { _mm256_add_epi16(acc, _mm256_maddubs_epi16(u, s)) }
    }

    #[inline(always)]
    unsafe fn total(acc: __m256i) -> __m256i {
        // SAFETY: the caller's contract (AVX2).
        unsafe { _mm256_madd_epi16(acc, _mm256_set1_epi16(1)) }
    }

    #[inline(always)]
    unsafe fn add_pairs(acc: __m256i, p: __m256i, w: __m256i) -> __m256i {
        // SAFETY: the caller's contract (AVX2).
        unsafe { _mm256_add_epi32(acc, _mm256_madd_epi16(p, w)) }
    }
}

/// AVX-512 VNNI on 256-bit vectors (with AVX-512VL): `vpdpbusd`.
pub(in crate::quant) struct Vnni;

impl Products for Vnni {
    #[inline(always)]
    unsafe fn add4(acc: __m256i, u: __m256i, s: __m256i) -> __m256i {
        // SAFETY: the caller's contract (AVX-512 VNNI and VL).
        unsafe { _mm256_dpbusd_epi32(acc, u, s) }
    }

    #[inline(always)]
    unsafe fn add_short(acc: __m256i, u: __m256i, s: __m256i) -> __m256i {
        // SAFETY: as `add4`; the sum is kept in 32-bit lanes from the start.
        unsafe { _mm256_dpbusd_epi32(acc, u, s) }
    }

    #[inline(always)]
    unsafe fn total(acc: __m256i) -> __m256i {
        acc
    }

    #[inline(always)]
    unsafe fn add_pairs(acc: __m256i, p: __m256i, w: __m256i) -> __m256i {
        // SAFETY: the caller's contract (AVX-512 VNNI and VL): `vpdpwssd`
        // adds the same two products per lane in one instruction.
        unsafe { _mm256_dpwssd_epi32(acc, p, w) }
    }
}
// ANCHOR_END: products

/// True when this CPU runs [`Vnni`] (AVX-512 VNNI and VL) and the
/// kernels' level is AVX-512 (`INFER_KERNELS=avx2` turns it off). Asked
/// once per process: the dot products ask for every row.
pub(crate) fn has_vnni() -> bool {
    use crate::dispatch::{Level, level};
    static VNNI: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *VNNI.get_or_init(|| {
        level() == Level::Avx512
            && std::is_x86_feature_detected!("avx512vnni")
            && std::is_x86_feature_detected!("avx512vl")
    })
}

/// True when [`has_vnni`] and the CPU also has AVX-512BW, so that the
/// kernels can take 512-bit vectors of bytes (`vpdpbusd` on sixteen rows
/// at once). Asked once per process.
pub(in crate::quant) fn has_vnni_512() -> bool {
    static VNNI_512: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *VNNI_512.get_or_init(|| has_vnni() && std::is_x86_feature_detected!("avx512bw"))
}
