//! argmax and top-k over the last axis.

use crate::error::Result;
use crate::kernels;
use crate::tensor::Tensor;

impl Tensor {
    /// Index of the largest value of each last-axis row (first on ties,
    /// NaNs skipped). One entry per row; a 1-D tensor gives one entry.
    ///
    /// # Errors
    /// [`crate::EngineError::BadShape`] for rank 0;
    /// [`crate::EngineError::UnsupportedDType`] for quantized inputs.
    pub fn argmax(&self) -> Result<Vec<usize>> {
        let n = super::last_dim(self, "argmax")?;
        let v = super::owned_f32(self, "argmax")?;
        Ok(if n == 0 {
            vec![]
        } else {
            v.chunks(n).map(kernels::argmax).collect()
        })
    }

    /// The `k` largest `(index, value)` pairs of each last-axis row, largest
    /// first (ties: lower index first).
    ///
    /// # Errors
    /// As [`Tensor::argmax`].
    pub fn top_k(&self, k: usize) -> Result<Vec<Vec<(usize, f32)>>> {
        let n = super::last_dim(self, "top_k")?;
        let v = super::owned_f32(self, "top_k")?;
        Ok(if n == 0 {
            vec![]
        } else {
            v.chunks(n).map(|r| kernels::top_k(r, k)).collect()
        })
    }
}
