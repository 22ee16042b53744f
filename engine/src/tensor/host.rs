//! Which operations need a tensor in host memory: [`Tensor::host_only`].
//! Moving a tensor between devices is [`crate::device`]'s work.

use super::Tensor;
use crate::error::Result;
#[cfg(feature = "cuda")]
use {super::Storage, crate::error::EngineError};

impl Tensor {
    /// `Ok` for a tensor in host memory; the tensor operations of
    /// [`crate::ops`] and the layers of [`crate::nn`] read host memory only
    /// (a tensor on a GPU goes through [`crate::device::ops`]).
    ///
    /// # Errors
    /// [`EngineError::Device`] naming `op` for a tensor on a GPU.
    #[cfg(feature = "cuda")]
    pub(crate) fn host_only(&self, op: &'static str) -> Result<()> {
        match self.storage() {
            Storage::Cuda(s) => Err(EngineError::Device(format!(
                "{op}: the tensor is on cuda:{}; this operation runs on the host (copy it with to_device(&Device::Cpu))",
                s.gpu().ordinal()
            ))),
            _ => Ok(()),
        }
    }

    /// Always `Ok`: without the `cuda` feature every tensor is on the host.
    #[cfg(not(feature = "cuda"))]
    pub(crate) fn host_only(&self, _op: &'static str) -> Result<()> {
        Ok(())
    }
}
