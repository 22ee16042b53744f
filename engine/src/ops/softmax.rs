//! Softmax and log-softmax over the last axis.

use crate::error::Result;
use crate::kernels;
use crate::tensor::Tensor;

impl Tensor {
    fn rowwise(&self, op: &'static str, kernel: fn(&mut [f32])) -> Result<Tensor> {
        let n = super::last_dim(self, op)?;
        let mut v = super::owned_f32(self, op)?;
        super::for_each_row(&mut v, n, |_, row| kernel(row));
        Tensor::from_vec(v, self.shape())
    }

    /// Softmax over the last axis (max-subtracted).
    ///
    /// # Errors
    /// [`crate::EngineError::BadShape`] for a rank-0 tensor;
    /// [`crate::EngineError::UnsupportedDType`] for quantized inputs.
    pub fn softmax(&self) -> Result<Tensor> {
        self.rowwise("softmax", kernels::softmax_inplace)
    }

    /// Log-softmax over the last axis (max-subtracted).
    ///
    /// # Errors
    /// As [`Tensor::softmax`].
    pub fn log_softmax(&self) -> Result<Tensor> {
        self.rowwise("log_softmax", kernels::log_softmax_inplace)
    }
}
