//! Penalties: processors that change particular tokens' logits based on
//! the history or on fixed lists.

pub mod bias;
pub mod frequency;
pub mod no_repeat_ngram;
pub mod repetition;
pub mod scope;

pub use bias::{BannedTokens, LogitBias, MinNewTokens};
pub use frequency::FrequencyPresencePenalty;
pub use no_repeat_ngram::NoRepeatNGram;
pub use repetition::RepetitionPenalty;
pub use scope::PenaltyScope;
