#![no_main]
//! Builds a chat template (from arbitrary template text, or plain ChatML with
//! an arbitrary default system prompt) and a conversation from arbitrary
//! bytes and renders it, whole and incrementally: no panics, and the
//! incremental renderings add up to the whole.
//!
//! The body lives in `fuzz/bodies/chat_template.rs`, which the corpus replay test
//! (`tests/tests/fuzz_corpus_replay.rs`) runs too.

#[path = "../bodies/chat_template.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::chat_template(data));
