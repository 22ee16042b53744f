#![no_main]
//! Parses arbitrary bytes as OpenAI completion and chat request bodies, as
//! `infer serve` does before anything reaches the engine: no panics, every
//! refusal a 400 with a message, every accepted body valid parameters.
//!
//! The body lives in `fuzz/bodies/server_request.rs`, which the corpus replay
//! test (`tests/tests/fuzz_corpus_replay.rs`) runs too.

#[path = "../bodies/server_request.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::server_request(data));
