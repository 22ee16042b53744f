//! # decode
//!
//! Model-agnostic decoding: logits processors, greedy, beam search,
//! sampling, stop conditions and streaming, plus post-processing
//! (non-maximum suppression, calibration, thresholds).
//!
//! Nothing here names a concrete model: strategies drive anything that
//! implements [`LanguageModel`].

pub mod lm;

pub use lm::{LanguageModel, ModelError};
