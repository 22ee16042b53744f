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
}

impl DType {
    /// How many values one storage unit holds: 1 for plain types, the block
    /// length for quantized ones.
    pub const fn block_len(self) -> usize {
        match self {
            DType::F32 | DType::F16 | DType::BF16 => 1,
            DType::Q8_0 | DType::Q4_0 | DType::Q4_1 => 32,
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
        }
    }

    /// True for the block-quantized types.
    pub const fn is_quantized(self) -> bool {
        self.block_len() > 1
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
        };
        f.write_str(s)
    }
}

impl std::str::FromStr for DType {
    type Err = String;

    /// Parse a dtype's name as [`fmt::Display`] writes it (`f32`, `q4_1`, …),
    /// ignoring case.
    fn from_str(s: &str) -> Result<DType, String> {
        let all = [
            DType::F32,
            DType::F16,
            DType::BF16,
            DType::Q8_0,
            DType::Q4_0,
            DType::Q4_1,
        ];
        all.into_iter()
            .find(|d| d.to_string().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let names: Vec<String> = all.iter().map(ToString::to_string).collect();
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
        assert!("q5_0".parse::<DType>().unwrap_err().contains("q8_0"));
    }
}
