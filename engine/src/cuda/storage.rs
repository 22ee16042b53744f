//! A tensor's elements in GPU memory: the same bytes as on the host (f32,
//! f16, bf16, or ggml blocks exactly as the file stores them), in one
//! device buffer that views of the tensor share.

use std::fmt;
use std::sync::Arc;

use cudarc::driver::CudaSlice;

use super::Gpu;
use crate::dtype::DType;

/// Device-resident storage of one element type.
#[derive(Clone)]
pub struct CudaStorage {
    gpu: Gpu,
    dtype: DType,
    bytes: Arc<CudaSlice<u8>>,
}

impl fmt::Debug for CudaStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CudaStorage")
            .field("gpu", &self.gpu.ordinal())
            .field("dtype", &self.dtype)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

/// Two storages are equal when they are the same device buffer (its
/// contents are not compared: that would copy them back).
impl PartialEq for CudaStorage {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.bytes, &other.bytes)
    }
}

impl CudaStorage {
    /// Wrap bytes already on `gpu`, laid out as `dtype` stores them.
    pub fn new(gpu: Gpu, dtype: DType, bytes: CudaSlice<u8>) -> Self {
        Self {
            gpu,
            dtype,
            bytes: Arc::new(bytes),
        }
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The GPU the bytes are on.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// The raw bytes.
    pub fn bytes(&self) -> &CudaSlice<u8> {
        &self.bytes
    }

    /// Number of storage units (elements, or blocks for quantized data).
    pub fn len(&self) -> usize {
        self.bytes.len() / self.dtype.unit_bytes()
    }

    /// True if there are no elements.
    pub fn is_empty(&self) -> bool {
        self.bytes.len() == 0
    }
}
