//! Model files, tokenizer, architectures and the KV cache.
pub mod gguf;
pub mod kv_cache;
pub mod model_path;
pub mod config;
pub mod safetensors;
pub mod arch_error;
pub mod batch;
pub mod gpt2;
pub mod llama;
pub mod lm_impl;
pub mod no_cache;
pub mod ops;
