//! GPT-2 hyper-parameters, read from a Hugging Face `config.json`.

use crate::arch_error::ArchError;
use crate::config::Gpt2Config;
use crate::kv_cache::KvShape;

/// Dimensions of a GPT-2 model (the fields of `config.json` the forward pass needs).
#[derive(Debug, Clone, PartialEq)]
pub struct Gpt2Params {
    /// Transformer blocks (`n_layer`).
    pub n_layer: usize,
    /// Model width (`n_embd`).
    pub n_embd: usize,
    /// Attention heads (`n_head`).
    pub n_head: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Number of learned positions (`n_positions`): the hard context limit.
    pub n_positions: usize,
    /// LayerNorm epsilon (`layer_norm_epsilon`).
    pub layer_norm_epsilon: f32,
}

impl Gpt2Params {
    /// Take the dimensions from a parsed `config.json`, refusing variants
    /// this forward pass does not implement (another MLP width or activation,
    /// an untied head).
    ///
    /// # Errors
    /// [`ArchError::Config`] naming the unsupported field.
    pub fn from_config(c: &Gpt2Config) -> Result<Self, ArchError> {
        if c.mlp_width() != 4 * c.n_embd {
            return Err(ArchError::Config(format!(
                "n_inner {} is not 4 × n_embd {}",
                c.mlp_width(),
                c.n_embd
            )));
        }
        if !matches!(
            c.activation_function.as_str(),
            "gelu_new" | "gelu_pytorch_tanh"
        ) {
            return Err(ArchError::Config(format!(
                "activation {:?} is not GELU (tanh)",
                c.activation_function
            )));
        }
        if !c.tie_word_embeddings {
            return Err(ArchError::Config(
                "untied output head is not supported".to_string(),
            ));
        }
        let p = Gpt2Params {
            n_layer: c.n_layer,
            n_embd: c.n_embd,
            n_head: c.n_head,
            vocab_size: c.vocab_size,
            n_positions: c.n_positions,
            layer_norm_epsilon: c.layer_norm_epsilon,
        };
        p.validate()?;
        Ok(p)
    }

    /// Elements per head.
    pub fn head_dim(&self) -> usize {
        self.n_embd / self.n_head.max(1)
    }

    /// The KV-cache shape (every head has its own K and V).
    pub fn kv_shape(&self) -> KvShape {
        KvShape {
            n_layers: self.n_layer,
            n_kv_heads: self.n_head,
            head_dim: self.head_dim(),
        }
    }

    /// Check the dimensions fit together.
    ///
    /// # Errors
    /// [`ArchError::Config`] naming the numbers.
    pub fn validate(&self) -> Result<(), ArchError> {
        if self.n_head == 0 || !self.n_embd.is_multiple_of(self.n_head) {
            return Err(ArchError::Config(format!(
                "n_embd {} is not a multiple of n_head {}",
                self.n_embd, self.n_head
            )));
        }
        if self.n_layer == 0 || self.vocab_size == 0 || self.n_positions == 0 {
            return Err(ArchError::Config(format!(
                "zero dimension: n_layer {} vocab {} n_positions {}",
                self.n_layer, self.vocab_size, self.n_positions
            )));
        }
        Ok(())
    }
}
