//! GPT-2: learned positions, pre-LayerNorm blocks, GELU (tanh), fused QKV in
//! Conv1D layout, output head tied to the token embeddings.

mod config;
mod forward;
mod load;
#[cfg(test)]
mod tests;
mod weights;

pub use config::Gpt2Params;
pub use forward::Gpt2;
pub use weights::{Gpt2Layer, Gpt2Weights};
