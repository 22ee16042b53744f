//! LayerNorm and RMSNorm over the last axis.

use crate::error::Result;
use crate::kernels;
use crate::tensor::Tensor;

impl Tensor {
    /// LayerNorm over the last axis with weight `w` and bias `b` (both 1-D of
    /// the last axis' size).
    ///
    /// # Errors
    /// [`crate::EngineError::ShapeMismatch`] if `w` or `b` do not match;
    /// [`crate::EngineError::UnsupportedDType`] for quantized inputs.
    pub fn layer_norm(&self, w: &Tensor, b: &Tensor, eps: f32) -> Result<Tensor> {
        let op = "layer_norm";
        let n = super::last_dim(self, op)?;
        super::check_vector(op, self, w, n)?;
        super::check_vector(op, self, b, n)?;
        let (x, w, b) = (
            super::owned_f32(self, op)?,
            super::owned_f32(w, op)?,
            super::owned_f32(b, op)?,
        );
        let mut out = vec![0.0; x.len()];
        super::for_each_row(&mut out, n, |i, o| {
            kernels::layernorm(&x[i * n..(i + 1) * n], &w, &b, eps, o)
        });
        Tensor::from_vec(out, self.shape())
    }

    /// RMSNorm over the last axis with weight `w` (1-D, the last axis' size).
    ///
    /// # Errors
    /// As [`Tensor::layer_norm`].
    pub fn rms_norm(&self, w: &Tensor, eps: f32) -> Result<Tensor> {
        let op = "rms_norm";
        let n = super::last_dim(self, op)?;
        super::check_vector(op, self, w, n)?;
        let (x, w) = (super::owned_f32(self, op)?, super::owned_f32(w, op)?);
        let mut out = vec![0.0; x.len()];
        super::for_each_row(&mut out, n, |i, o| {
            kernels::rmsnorm(&x[i * n..(i + 1) * n], &w, eps, o)
        });
        Tensor::from_vec(out, self.shape())
    }
}
