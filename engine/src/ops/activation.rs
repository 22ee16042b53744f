//! Elementwise activations.

use crate::error::Result;
use crate::kernels;
use crate::tensor::Tensor;

impl Tensor {
    /// GELU, tanh approximation (GPT-2's `gelu_new`).
    ///
    /// # Errors
    /// [`crate::EngineError::UnsupportedDType`] for quantized inputs.
    pub fn gelu(&self) -> Result<Tensor> {
        let mut v = super::owned_f32(self, "gelu")?;
        kernels::gelu_tanh_inplace(&mut v);
        Tensor::from_vec(v, self.shape())
    }

    /// SiLU (swish): `x · sigmoid(x)`.
    ///
    /// # Errors
    /// [`crate::EngineError::UnsupportedDType`] for quantized inputs.
    pub fn silu(&self) -> Result<Tensor> {
        let mut v = super::owned_f32(self, "silu")?;
        kernels::silu_inplace(&mut v);
        Tensor::from_vec(v, self.shape())
    }
}
