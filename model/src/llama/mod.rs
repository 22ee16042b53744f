//! The Llama family (SmolLM2): RMSNorm, rotary positions, SwiGLU, grouped-query
//! attention, tied embeddings.

mod config;
mod forward;
mod load_gguf;
mod weights;

pub use config::LlamaConfig;
pub use forward::Llama;
pub use load_gguf::unpermute_rope_rows;
pub use weights::{LlamaLayer, LlamaWeights};

#[cfg(test)]
mod tests;
