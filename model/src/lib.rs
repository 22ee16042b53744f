//! Model files, tokenizer, architectures and the KV cache.
pub mod gguf;
pub mod kv_cache;
pub mod model_path;
