//! The flat buffer under a tensor. Several tensors (views) can share one
//! `Storage` through an `Arc`; it is never mutated after creation.

use half::{bf16, f16};

use super::bytes::Bytes;
use crate::dtype::DType;

// ANCHOR: storage
/// A tensor's elements, in one flat buffer of one element type. Other
/// crates match it with a catch-all arm: a build with the `cuda` feature
/// adds a variant for memory on a GPU.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Storage {
    /// 32-bit floats.
    F32(Vec<f32>),
    /// 16-bit IEEE floats.
    F16(Vec<f16>),
    /// bfloat16.
    BF16(Vec<bf16>),
    /// Block-quantized data: raw blocks of `dtype` (see [`DType::unit_bytes`]),
    /// owned or read in place from a memory-mapped file.
    Quantized {
        /// Which block format.
        dtype: DType,
        /// The blocks, back to back.
        bytes: Bytes,
    },
    /// Q4_0, Q4_1, Q5_0 or Q8_0 rows of `cols` values regrouped eight at a time
    /// ([`crate::quant::x8`]), the layout the integer kernels read
    /// fastest; made once at load by [`Tensor::regrouped`](super::Tensor::regrouped).
    Regrouped {
        /// Which block format.
        dtype: DType,
        /// The regrouped blocks (as many bytes as the file's layout).
        bytes: Bytes,
        /// Values per row.
        cols: usize,
        /// How decode-step products add up each block.
        order: crate::quant::SumOrder,
    },
    /// Bytes on an NVIDIA GPU, laid out as the host variants lay them out.
    #[cfg(feature = "cuda")]
    Cuda(crate::cuda::CudaStorage),
}
// ANCHOR_END: storage

impl Storage {
    /// Element type.
    pub fn dtype(&self) -> DType {
        match self {
            Storage::F32(_) => DType::F32,
            Storage::F16(_) => DType::F16,
            Storage::BF16(_) => DType::BF16,
            Storage::Quantized { dtype, .. } | Storage::Regrouped { dtype, .. } => *dtype,
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => s.dtype(),
        }
    }

    /// Element `i` as f32 (plain types on the host only; `None` for quantized
    /// or device storage, or an index out of range).
    pub fn get_f32(&self, i: usize) -> Option<f32> {
        match self {
            Storage::F32(v) => v.get(i).copied(),
            Storage::F16(v) => v.get(i).map(|x| x.to_f32()),
            Storage::BF16(v) => v.get(i).map(|x| x.to_f32()),
            Storage::Quantized { .. } | Storage::Regrouped { .. } => None,
            #[cfg(feature = "cuda")]
            Storage::Cuda(_) => None,
        }
    }

    /// Number of storage units (elements, or blocks for quantized data).
    pub fn len(&self) -> usize {
        match self {
            Storage::F32(v) => v.len(),
            Storage::F16(v) => v.len(),
            Storage::BF16(v) => v.len(),
            Storage::Quantized { dtype, bytes } | Storage::Regrouped { dtype, bytes, .. } => {
                bytes.len() / dtype.unit_bytes()
            }
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => s.len(),
        }
    }

    /// True if there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Gather the elements at `indices` into a new storage of the same type.
    pub(crate) fn gather(&self, indices: impl Iterator<Item = usize>) -> Option<Storage> {
        Some(match self {
            Storage::F32(v) => Storage::F32(indices.map(|i| v[i]).collect()),
            Storage::F16(v) => Storage::F16(indices.map(|i| v[i]).collect()),
            Storage::BF16(v) => Storage::BF16(indices.map(|i| v[i]).collect()),
            Storage::Quantized { .. } | Storage::Regrouped { .. } => return None,
            #[cfg(feature = "cuda")]
            Storage::Cuda(_) => return None,
        })
    }
}
