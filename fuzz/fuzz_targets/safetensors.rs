#![no_main]
//! Parses arbitrary bytes as a safetensors file and, when they parse, reads
//! every tensor raw, as an f32 view and as f32 values: errors are fine,
//! panics are not.
//!
//! The body lives in `fuzz/bodies/safetensors.rs`, which the corpus replay test
//! (`tests/tests/fuzz_corpus_replay.rs`) runs too.

#[path = "../bodies/safetensors.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::safetensors(data));
