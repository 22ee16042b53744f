#![no_main]
//! Parses arbitrary bytes as a GGUF file and, when they parse, reads every
//! metadata key through every accessor and every tensor raw, as an engine
//! tensor and as f32: errors are fine, panics are not.
//!
//! The body lives in `fuzz/bodies/gguf.rs`, which the corpus replay test
//! (`tests/tests/fuzz_corpus_replay.rs`) runs too.

#[path = "../bodies/gguf.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::gguf(data));
