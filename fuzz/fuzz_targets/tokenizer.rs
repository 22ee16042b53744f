#![no_main]
//! Encodes arbitrary bytes (as lossy UTF-8) with SmolLM2's real tokenizer
//! and decodes them back (round trip for text the vocabulary can spell),
//! and decodes the same bytes read as arbitrary u32 token ids (out of
//! vocabulary included), whole and streamed: no panics.
//!
//! The tokenizer is loaded once from the model in the cache (fetch it with
//! `scripts/fetch-model.sh`). The body lives in `fuzz/bodies/tokenizer.rs`,
//! which the corpus replay test (`tests/tests/fuzz_corpus_replay.rs`) runs too.

#[path = "../bodies/tokenizer.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::tokenizer(body::smollm2_tokenizer(), data));
