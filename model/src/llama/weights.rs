//! Llama weights as plain f32 matrices (row-major, `[out_features][in_features]`).

use super::config::LlamaConfig;
use crate::arch_error::ArchError;

/// One transformer block's weights.
#[derive(Debug, Clone)]
pub struct LlamaLayer {
    /// RMSNorm weight before attention, `[d]`.
    pub attn_norm: Vec<f32>,
    /// Q, K and V projections stacked by rows, `[(n_heads + 2·n_kv_heads)·head_dim][d]`,
    /// in the Hugging Face (half-rotated RoPE) row order. One matrix instead of
    /// three means one pass over the input and one hand-off to the threads.
    pub wqkv: Vec<f32>,
    /// Attention output projection, `[d][n_heads·head_dim]`.
    pub wo: Vec<f32>,
    /// RMSNorm weight before the MLP, `[d]`.
    pub ffn_norm: Vec<f32>,
    /// Gate and up projections stacked by rows, `[2·ffn][d]` (gate first).
    pub w_gate_up: Vec<f32>,
    /// Down projection, `[d][ffn]`.
    pub w_down: Vec<f32>,
}

/// All weights of a Llama-family model, dequantized to f32.
#[derive(Debug, Clone)]
pub struct LlamaWeights {
    /// Dimensions.
    pub config: LlamaConfig,
    /// Token embeddings, `[vocab][d]`.
    pub tok_embd: Vec<f32>,
    /// Blocks.
    pub layers: Vec<LlamaLayer>,
    /// Final RMSNorm weight, `[d]`.
    pub out_norm: Vec<f32>,
    /// Output head `[vocab][d]`; `None` when tied to `tok_embd` (SmolLM2).
    pub lm_head: Option<Vec<f32>>,
}

fn check(name: &str, got: usize, want: &[usize]) -> Result<(), ArchError> {
    if got == want.iter().product::<usize>() {
        Ok(())
    } else {
        Err(ArchError::BadShape {
            name: name.to_string(),
            expected: want.to_vec(),
            found: vec![got],
        })
    }
}

impl LlamaWeights {
    /// Check every tensor length against the configuration.
    ///
    /// # Errors
    /// [`ArchError::BadShape`] naming the tensor, or [`ArchError::Config`].
    pub fn validate(&self) -> Result<(), ArchError> {
        let c = &self.config;
        c.validate()?;
        if self.layers.len() != c.n_layers {
            return Err(ArchError::Config(format!(
                "{} layers, config says {}",
                self.layers.len(),
                c.n_layers
            )));
        }
        let d = c.d_model;
        check("tok_embd", self.tok_embd.len(), &[c.vocab_size, d])?;
        check("out_norm", self.out_norm.len(), &[d])?;
        if let Some(h) = &self.lm_head {
            check("lm_head", h.len(), &[c.vocab_size, d])?;
        }
        for (i, l) in self.layers.iter().enumerate() {
            let n = |s: &str| format!("layer {i} {s}");
            check(&n("attn_norm"), l.attn_norm.len(), &[d])?;
            check(&n("wqkv"), l.wqkv.len(), &[c.qkv_dim(), d])?;
            check(&n("wo"), l.wo.len(), &[d, c.n_heads * c.head_dim])?;
            check(&n("ffn_norm"), l.ffn_norm.len(), &[d])?;
            check(&n("w_gate_up"), l.w_gate_up.len(), &[2 * c.ffn_dim, d])?;
            check(&n("w_down"), l.w_down.len(), &[d, c.ffn_dim])?;
        }
        Ok(())
    }

    /// The output head: `lm_head` or, when tied, the token embeddings.
    pub fn head(&self) -> &[f32] {
        self.lm_head.as_deref().unwrap_or(&self.tok_embd)
    }

    /// Number of parameters (the tied head counted once).
    pub fn n_params(&self) -> usize {
        let per_layer: usize = self
            .layers
            .iter()
            .map(|l| {
                l.attn_norm.len()
                    + l.wqkv.len()
                    + l.wo.len()
                    + l.ffn_norm.len()
                    + l.w_gate_up.len()
                    + l.w_down.len()
            })
            .sum();
        self.tok_embd.len()
            + per_layer
            + self.out_norm.len()
            + self.lm_head.as_ref().map_or(0, Vec::len)
    }
}
