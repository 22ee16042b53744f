//! Element types. Plain types store one number per element; block-quantized
//! types store a *block* of numbers per element group (a scale plus packed
//! small integers), so their storage is described in blocks, not scalars.

use std::fmt;

/// The element type of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit IEEE float.
    F32,
    /// 16-bit IEEE float (`half::f16`).
    F16,
    /// bfloat16: f32's exponent with a 7-bit mantissa (`half::bf16`).
    BF16,
    /// GGML Q8_0: blocks of 32 values, one f16 scale and 32 `i8`s (34 bytes).
    Q8_0,
    /// GGML Q4_0: blocks of 32 values, one f16 scale and 16 bytes of nibbles (18 bytes).
    Q4_0,
    /// GGML Q4_1: blocks of 32 values, f16 scale and minimum, 16 bytes of nibbles (20 bytes).
    Q4_1,
    /// GGML Q5_0: blocks of 32 values, one f16 scale, 4 bytes of fifth bits
    /// and 16 bytes of nibbles (22 bytes).
    Q5_0,
    /// GGML Q4_K: super-blocks of 256 values in 8 sub-blocks of 32, each
    /// with a 6-bit scale and minimum under two f16 super-scales (144 bytes).
    #[allow(non_camel_case_types)] // ggml's name
    Q4_K,
    /// GGML Q6_K: super-blocks of 256 values in 16 sub-blocks of 16, each
    /// with an 8-bit scale under one f16 super-scale; 6-bit codes (210 bytes).
    #[allow(non_camel_case_types)] // ggml's name
    Q6_K,
}

impl DType {
    /// Every element type, plain ones first.
    pub const ALL: [DType; 9] = [
        DType::F32,
        DType::F16,
        DType::BF16,
        DType::Q8_0,
        DType::Q4_0,
        DType::Q4_1,
        DType::Q5_0,
        DType::Q4_K,
        DType::Q6_K,
    ];

    /// How many values one storage unit holds: 1 for plain types, the block
    /// length for quantized ones.
    pub const fn block_len(self) -> usize {
        match self {
            DType::F32 | DType::F16 | DType::BF16 => 1,
            DType::Q8_0 | DType::Q4_0 | DType::Q4_1 | DType::Q5_0 => 32,
            DType::Q4_K | DType::Q6_K => 256,
        }
    }

    /// Bytes per storage unit (per element for plain types, per block for
    /// quantized ones).
    pub const fn unit_bytes(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F16 | DType::BF16 => 2,
            DType::Q8_0 => 34,
            DType::Q4_0 => 18,
            DType::Q4_1 => 20,
            DType::Q5_0 => 22,
            DType::Q4_K => 144,
            DType::Q6_K => 210,
        }
    }

    /// True for the block-quantized types.
    pub const fn is_quantized(self) -> bool {
        self.block_len() > 1
    }

    /// The format rows of `cols` values get when `self` is asked for: `self`
    /// when a row is a whole number of blocks, otherwise llama.cpp's
    /// fallback for the K-quants (`llama-quantize` stores a Q4_K tensor
    /// with rows that are not whole super-blocks as Q5_0, a Q6_K one as
    /// Q8_0), so a model of width 576 still quantizes.
    pub const fn for_row_len(self, cols: usize) -> DType {
        if cols.is_multiple_of(self.block_len()) {
            return self;
        }
        match self {
            DType::Q4_K => DType::Q5_0,
            DType::Q6_K => DType::Q8_0,
            other => other,
        }
    }

    /// Bytes needed to store `n` values (`None` if `n` is not a whole number
    /// of blocks).
    pub const fn bytes_for(self, n: usize) -> Option<usize> {
        let b = self.block_len();
        if !n.is_multiple_of(b) {
            return None;
        }
        Some(n / b * self.unit_bytes())
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::Q8_0 => "q8_0",
            DType::Q4_0 => "q4_0",
            DType::Q4_1 => "q4_1",
            DType::Q5_0 => "q5_0",
            DType::Q4_K => "q4_k",
            DType::Q6_K => "q6_k",
        };
        f.write_str(s)
    }
}

impl std::str::FromStr for DType {
    type Err = String;

    /// Parse a dtype's name as [`fmt::Display`] writes it (`f32`, `q4_1`, …),
    /// ignoring case.
    fn from_str(s: &str) -> Result<DType, String> {
        DType::ALL
            .into_iter()
            .find(|d| d.to_string().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let names: Vec<String> = DType::ALL.iter().map(ToString::to_string).collect();
                format!("unknown dtype {s:?} (one of {})", names.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_sizes() {
        assert_eq!(DType::F32.bytes_for(3), Some(12));
        assert_eq!(DType::Q8_0.bytes_for(64), Some(68));
        assert_eq!(DType::Q4_1.bytes_for(33), None);
        assert!(DType::Q4_0.is_quantized() && !DType::BF16.is_quantized());
        assert_eq!("Q4_1".parse::<DType>(), Ok(DType::Q4_1));
        assert_eq!(DType::Q4_K.bytes_for(512), Some(288));
        assert_eq!(DType::Q6_K.bytes_for(32), None);
        assert_eq!(DType::Q4_K.for_row_len(576), DType::Q5_0);
        assert_eq!(DType::Q6_K.for_row_len(576), DType::Q8_0);
        assert_eq!(DType::Q4_K.for_row_len(1536), DType::Q4_K);
        assert_eq!(DType::Q4_0.for_row_len(33), DType::Q4_0);
        assert_eq!("Q6_K".parse::<DType>(), Ok(DType::Q6_K));
        assert!("q5_1".parse::<DType>().unwrap_err().contains("q8_0"));
    }
}
