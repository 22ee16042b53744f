//! Llama hyper-parameters.

use crate::arch_error::ArchError;
use crate::kv_cache::KvShape;

/// Dimensions of a Llama-family model.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    /// Transformer blocks.
    pub n_layers: usize,
    /// Model (residual stream) width.
    pub d_model: usize,
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads (`n_heads` is a multiple of it: grouped-query attention).
    pub n_kv_heads: usize,
    /// Elements per head.
    pub head_dim: usize,
    /// Hidden width of the SwiGLU MLP.
    pub ffn_dim: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// RoPE base θ (SmolLM2: 100000).
    pub rope_theta: f32,
    /// RMSNorm epsilon.
    pub rms_eps: f32,
    /// Context length the model was trained for.
    pub max_positions: usize,
}

impl LlamaConfig {
    /// Width of the fused Q|K|V projection output.
    pub fn qkv_dim(&self) -> usize {
        (self.n_heads + 2 * self.n_kv_heads) * self.head_dim
    }

    /// The KV-cache shape this model needs.
    pub fn kv_shape(&self) -> KvShape {
        KvShape {
            n_layers: self.n_layers,
            n_kv_heads: self.n_kv_heads,
            head_dim: self.head_dim,
        }
    }

    /// Check the dimensions fit together.
    ///
    /// # Errors
    /// [`ArchError::Config`] naming the inconsistent numbers.
    pub fn validate(&self) -> Result<(), ArchError> {
        if self.n_heads == 0
            || self.n_kv_heads == 0
            || !self.n_heads.is_multiple_of(self.n_kv_heads)
        {
            return Err(ArchError::Config(format!(
                "{} query heads is not a positive multiple of {} kv heads",
                self.n_heads, self.n_kv_heads
            )));
        }
        if self.head_dim == 0 || !self.head_dim.is_multiple_of(2) {
            return Err(ArchError::Config(format!(
                "head_dim {} must be even and positive",
                self.head_dim
            )));
        }
        if self.d_model == 0 || self.vocab_size == 0 || self.n_layers == 0 || self.ffn_dim == 0 {
            return Err(ArchError::Config(format!(
                "zero dimension: d_model {} vocab {} layers {} ffn {}",
                self.d_model, self.vocab_size, self.n_layers, self.ffn_dim
            )));
        }
        Ok(())
    }
}
