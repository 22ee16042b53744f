//! The one error type of the `decode` crate.

use crate::lm::ModelError;

/// Everything that can go wrong while turning logits into tokens.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// A parameter is outside its valid range.
    #[error("invalid parameter {name} = {value}: {reason}")]
    InvalidParameter {
        /// Parameter name as the user spells it (e.g. `top_p`).
        name: &'static str,
        /// The offending value, formatted.
        value: String,
        /// What the valid range is.
        reason: &'static str,
    },
    /// The logits row is empty (a vocabulary of size 0).
    #[error("{op}: empty logits row (vocabulary size 0)")]
    EmptyVocab {
        /// Which operation saw it.
        op: &'static str,
    },
    /// A logit is NaN or +infinity.
    #[error("{op}: logit {index} is {value} (NaN or +inf is not a valid logit)")]
    InvalidLogit {
        /// Which operation saw it.
        op: &'static str,
        /// Token id of the bad logit.
        index: usize,
        /// The bad value.
        value: f32,
    },
    /// Every token was masked out, so nothing can be chosen.
    #[error("{op}: every one of the {vocab} tokens was removed; nothing left to choose")]
    NothingLeft {
        /// Which operation removed the last token.
        op: &'static str,
        /// Vocabulary size.
        vocab: usize,
    },
    /// Logits row length differs from what was expected.
    #[error("{op}: logits row has length {got}, expected {expected}")]
    LengthMismatch {
        /// Which operation saw it.
        op: &'static str,
        /// Actual length.
        got: usize,
        /// Expected length.
        expected: usize,
    },
    /// A token id is not in the vocabulary.
    #[error("{op}: token id {id} is outside the vocabulary of {vocab}")]
    TokenOutOfRange {
        /// Which operation saw it.
        op: &'static str,
        /// The token id.
        id: u32,
        /// Vocabulary size.
        vocab: usize,
    },
    /// The model cannot run this request (too few slots, sequence too long, …).
    #[error("{op}: {reason}")]
    ModelLimit {
        /// Which operation hit the limit.
        op: &'static str,
        /// What limit, with the numbers.
        reason: String,
    },
    /// The model behind the [`crate::LanguageModel`] trait failed.
    #[error("model error during {op}: {cause}")]
    Model {
        /// Which operation called the model.
        op: &'static str,
        /// The model's own error (printed in the message, so not
        /// also given as `source()`, which a report would print again).
        cause: ModelError,
    },
}

impl DecodeError {
    /// Shorthand for [`DecodeError::InvalidParameter`].
    pub fn param(name: &'static str, value: impl std::fmt::Display, reason: &'static str) -> Self {
        DecodeError::InvalidParameter {
            name,
            value: value.to_string(),
            reason,
        }
    }

    /// Wrap a model error with the operation that called it.
    pub fn model(op: &'static str) -> impl FnOnce(ModelError) -> Self {
        move |cause| DecodeError::Model { op, cause }
    }
}
