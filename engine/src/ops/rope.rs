//! Rotary position embedding on a block of tokens.

use crate::error::{EngineError, Result};
use crate::kernels;
use crate::tensor::Tensor;

impl Tensor {
    /// RoPE (Llama / Hugging Face half-rotated layout) on `[seq, n_heads,
    /// head_dim]`: token `i` is rotated for position `start_pos + i`.
    ///
    /// # Errors
    /// [`EngineError::BadShape`] unless rank 3 with an even `head_dim`;
    /// [`EngineError::UnsupportedDType`] for quantized inputs.
    pub fn rope(&self, start_pos: usize, theta_base: f32) -> Result<Tensor> {
        let op = "rope";
        let &[seq, heads, hd] = self.shape() else {
            return Err(EngineError::BadShape {
                op,
                shape: self.shape().to_vec(),
                reason: "expected [seq, n_heads, head_dim]".into(),
            });
        };
        if hd % 2 != 0 {
            return Err(EngineError::BadShape {
                op,
                shape: self.shape().to_vec(),
                reason: format!("head_dim {hd} is odd"),
            });
        }
        let mut v = super::owned_f32(self, op)?;
        if heads * hd > 0 {
            for (i, tok) in v.chunks_mut(heads * hd).enumerate().take(seq) {
                kernels::rope_inplace(tok, heads, hd, start_pos + i, theta_base);
            }
        }
        Tensor::from_vec(v, self.shape())
    }
}
