//! GPT-2: learned positions, pre-LayerNorm blocks, GELU (tanh), fused QKV in
//! Conv1D layout, output head tied to the token embeddings. Loads from the
//! Hugging Face layout or from a GGUF file in llama.cpp's layout.

mod config;
mod forward;
mod load;
mod load_gguf;
#[cfg(test)]
mod tests;
mod weights;

pub use config::Gpt2Params;
pub use forward::Gpt2;
pub use weights::{Gpt2Layer, Gpt2Weights};
