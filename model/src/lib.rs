//! Model files, tokenizer, architectures and the KV cache.
#![deny(missing_docs)]
pub mod arch_error;
pub mod batch;
pub mod chat_session;
pub mod chat_template;
pub mod config;
pub mod gguf;
pub mod gpt2;
pub mod kv_cache;
pub mod llama;
pub mod lm_impl;
pub mod model_path;
pub mod no_cache;
pub mod safetensors;
pub mod tokenizer;
mod weight_checks;
