//! Model files, tokenizer, architectures and the KV cache.
