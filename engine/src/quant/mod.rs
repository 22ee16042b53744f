//! Block quantization: the GGML block formats, byte-exact with llama.cpp.
//!
//! A quantized row is a run of *blocks*; each block stores a few f16
//! constants (a scale, sometimes a minimum) and 32 small integers. One file
//! per format holds its layout, its quantizer and its dequantizer:
//!
//! | format | file | bytes per 32 values | value |
//! |---|---|---|---|
//! | Q8_0 | [`q8_0`] | 34 | `q · d` |
//! | Q4_0 | [`q4_0`] | 18 | `(nibble − 8) · d` |
//! | Q4_1 | [`q4_1`] | 20 | `nibble · d + m` |
//! | Q5_0 | [`q5_0`] | 22 | `(code − 16) · d` |
//! | Q4_K | [`q4_k`] | 144 per 256 | `d·sc · nibble − dmin·m` per sub-block of 32 |
//! | Q6_K | [`q6_k`] | 210 per 256 | `d·sc · (code − 32)` per sub-block of 16 |
//!
//! Rounding (as ggml's reference quantizers): Q8_0 rounds `x / d` to the
//! nearest integer, halves away from zero; Q4_0 and Q4_1 add one half and
//! truncate (`(x / d + 8.5) as u8`, `((x − m) / d + 0.5) as u8`), so halves
//! round up, then clamp to 15; Q5_0 likewise with `+ 16.5` and 31. The
//! K-quants search for each sub-block's scale (and minimum) as ggml's
//! reference quantizers do, and round codes to nearest with halves to even.
//! Scales are computed in f32 and stored as f16.
//!
//! Matrix products never widen a quantized weight to f32 for a single token:
//! the activations are quantized to 8-bit blocks too ([`act::Q8Acts`]: of
//! 32 values, and of 256 for the K-quants, as ggml pairs them) and each
//! block's product is an integer dot product scaled once
//! ([`crate::quant::dot`]).

pub mod act;
pub mod dot;
#[cfg(target_arch = "x86_64")]
mod dot4;
#[cfg(target_arch = "x86_64")]
pub(crate) use dot4::has_vnni;
pub mod dot_k;
pub mod q4_0;
pub mod q4_1;
pub mod q4_k;
pub mod q5_0;
pub mod q6_k;
pub mod q8_0;
pub mod x8;
pub mod x8_prompt;

use crate::dtype::DType;
use crate::error::{EngineError, Result};

/// Values per block in the 32-value formats, and per activation block.
pub const QK: usize = 32;

/// How a regrouped Q4_0, Q4_1, Q5_0 or Q8_0 matrix ([`x8`]) adds up the 32
/// products of each block when it multiplies decode-step tokens. Prompts of
/// [`crate::nn::SGEMM_MIN_TOKENS`] tokens or more always take
/// [`SumOrder::Block`]. Either way a token's result does not depend on the other tokens
/// in the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SumOrder {
    /// llama.cpp's order for one row ([`x8::matmul`]): eight partial sums
    /// per block, each scaled and accumulated apart. Greedy continuations
    /// follow llama.cpp's as closely as 8-bit activations allow.
    #[default]
    Ggml,
    /// One integer sum per block, scaled once ([`x8_prompt::matmul`]):
    /// about a third fewer vector operations for the 4-bit formats (27
    /// against 40 per token and block of eight rows, with the unpacking
    /// shared by four tokens), and for Q8_0 no cross-lane adds, which is
    /// what a batch of decode steps waits for. Its logits differ from [`SumOrder::Ggml`]'s by float
    /// rounding, so a near tie can go the other way.
    Block,
}

impl std::fmt::Display for SumOrder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SumOrder::Ggml => "ggml",
            SumOrder::Block => "block",
        })
    }
}

impl std::str::FromStr for SumOrder {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "ggml" => Ok(SumOrder::Ggml),
            "block" => Ok(SumOrder::Block),
            _ => Err(format!("unknown sum order {s:?} (ggml or block)")),
        }
    }
}

/// Round to the nearest integer, halves to even (ggml's `nearest_int`,
/// which adds and subtracts 1.5·2²³ to the same effect).
#[inline]
pub(crate) fn nearest_int(x: f32) -> i32 {
    x.round_ties_even() as i32
}

/// Read the little-endian f16 at `at` as f32.
#[inline]
pub(crate) fn f16_at(bytes: &[u8], at: usize) -> f32 {
    #[cfg(not(feature = "mutant-scale-big-endian"))]
    let pair = [bytes[at], bytes[at + 1]];
    #[cfg(feature = "mutant-scale-big-endian")]
    let pair = [bytes[at + 1], bytes[at]];
    half::f16::from_le_bytes(pair).to_f32()
}

/// The two 4-bit codes of a code byte, in element order: the low nibble is
/// element `j`, the high nibble element `j + 16`.
#[inline]
pub(crate) fn nibbles(byte: u8) -> (u8, u8) {
    #[cfg(not(feature = "mutant-swapped-nibbles"))]
    let pair = (byte & 0x0f, byte >> 4);
    #[cfg(feature = "mutant-swapped-nibbles")]
    let pair = (byte >> 4, byte & 0x0f);
    pair
}

/// Reject NaN and ±inf before quantizing: a block scale computed from them
/// would poison every value of the block.
pub(crate) fn check_finite(x: &[f32]) -> Result<()> {
    match x.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(EngineError::NonFinite {
            op: "quantize",
            index: i,
            value: x[i],
        }),
    }
}

/// Quantize `x` (a whole number of blocks) into the blocks of `dtype`.
///
/// # Errors
/// [`EngineError::UnsupportedDType`] for a plain dtype,
/// [`EngineError::BadShape`] if `x.len()` is not a whole number of blocks
/// (32 values, or 256 for the K-quants),
/// [`EngineError::NonFinite`] if `x` holds NaN or ±inf.
pub fn quantize(dtype: DType, x: &[f32]) -> Result<Vec<u8>> {
    let op = "quantize";
    if !dtype.is_quantized() {
        return Err(EngineError::UnsupportedDType { op, dtype });
    }
    let n = dtype.block_len();
    if !x.len().is_multiple_of(n) {
        return Err(EngineError::BadShape {
            op,
            shape: vec![x.len()],
            reason: format!("length must be a multiple of {n}"),
        });
    }
    check_finite(x)?;
    let unit = dtype.unit_bytes();
    let mut out = vec![0u8; x.len() / n * unit];
    let block: fn(&[f32], &mut [u8]) = match dtype {
        DType::Q8_0 => q8_0::quantize_block,
        DType::Q4_0 => q4_0::quantize_block,
        DType::Q4_1 => q4_1::quantize_block,
        DType::Q5_0 => q5_0::quantize_block,
        DType::Q4_K => q4_k::quantize_block,
        _ => q6_k::quantize_block,
    };
    for (xb, ob) in x.chunks_exact(n).zip(out.chunks_exact_mut(unit)) {
        block(xb, ob);
    }
    Ok(out)
}

/// Dequantize blocks of `dtype` into `out` (`out.len()` values).
///
/// # Errors
/// [`EngineError::UnsupportedDType`] for a plain dtype,
/// [`EngineError::LengthMismatch`] if `bytes` does not hold exactly the
/// blocks of `out.len()` values.
pub fn dequantize(dtype: DType, bytes: &[u8], out: &mut [f32]) -> Result<()> {
    let op = "dequantize";
    if !dtype.is_quantized() {
        return Err(EngineError::UnsupportedDType { op, dtype });
    }
    if dtype.bytes_for(out.len()) != Some(bytes.len()) {
        return Err(EngineError::LengthMismatch {
            op,
            shape: vec![out.len()],
            expected: out.len(),
            len: bytes.len() / dtype.unit_bytes() * dtype.block_len(),
        });
    }
    dequantize_unchecked(dtype, bytes, out);
    Ok(())
}

/// [`dequantize`] for lengths the caller has already checked, with the
/// best kernel for this CPU (the AVX2 bodies give the same floats).
pub(crate) fn dequantize_unchecked(dtype: DType, bytes: &[u8], out: &mut [f32]) {
    match crate::dispatch::level() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as below; the caller checked the lengths.
        crate::dispatch::Level::Avx2 | crate::dispatch::Level::Avx512 if dtype == DType::Q4_K => unsafe {
            dot::dequantize_q4_k_avx2(bytes, out)
        },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as below; the caller checked the lengths.
        crate::dispatch::Level::Avx2 | crate::dispatch::Level::Avx512 if dtype == DType::Q6_K => unsafe {
            dot::dequantize_q6_k_avx2(bytes, out)
        },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: level() is Avx2 or Avx512 only when the CPU has AVX2,
        // FMA and F16C; the caller checked the lengths.
        crate::dispatch::Level::Avx2 | crate::dispatch::Level::Avx512 => unsafe {
            dot::dequantize_avx2(dtype, bytes, out)
        },
        _ => dequantize_scalar(dtype, bytes, out),
    }
}

/// The plain twin of the dequantizers: one block at a time.
pub fn dequantize_scalar(dtype: DType, bytes: &[u8], out: &mut [f32]) {
    let block: fn(&[u8], &mut [f32]) = match dtype {
        DType::Q8_0 => q8_0::dequantize_block,
        DType::Q4_0 => q4_0::dequantize_block,
        DType::Q4_1 => q4_1::dequantize_block,
        DType::Q5_0 => q5_0::dequantize_block,
        DType::Q4_K => q4_k::dequantize_block,
        DType::Q6_K => q6_k::dequantize_block,
        _ => unreachable!("dequantize_scalar: plain dtype {dtype}"),
    };
    let (unit, n) = (dtype.unit_bytes(), dtype.block_len());
    for (b, o) in bytes.chunks_exact(unit).zip(out.chunks_exact_mut(n)) {
        block(b, o);
    }
}
