//! Model files, tokenizer, architectures and the KV cache.
pub mod kv_cache;
