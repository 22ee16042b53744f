//! The [`LogitsProcessor`] trait and the token history processors may read.

use crate::error::DecodeError;

/// The tokens a sequence holds so far: the prompt followed by what was generated.
#[derive(Debug, Clone, Copy)]
pub struct TokenHistory<'a> {
    /// Prompt and generated tokens, in order.
    pub tokens: &'a [u32],
    /// How many of `tokens` are the prompt.
    pub prompt_len: usize,
}

impl<'a> TokenHistory<'a> {
    /// A history of `tokens` whose first `prompt_len` are the prompt
    /// (clamped to `tokens.len()`).
    pub fn new(tokens: &'a [u32], prompt_len: usize) -> Self {
        TokenHistory {
            tokens,
            prompt_len: prompt_len.min(tokens.len()),
        }
    }

    /// The generated part.
    pub fn generated(&self) -> &'a [u32] {
        &self.tokens[self.prompt_len..]
    }
}

/// Where a processor sits in the pipeline; the explain table groups columns by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Adds to or scales logits of particular tokens (penalties, bias, bans).
    Penalty,
    /// Divides every logit by the temperature.
    Temperature,
    /// Removes tokens (sets them to `-inf`): top-k, top-p, min-p, typical-p.
    Filter,
}

// ANCHOR: trait
/// One step of the logits pipeline: rewrites a logits row in place.
///
/// Removed tokens are set to `-inf`. A processor never removes every token.
pub trait LogitsProcessor: Send + Sync {
    /// Short name used in error messages and the explain table (e.g. `top_p`).
    fn name(&self) -> &'static str;

    /// Which column of the explain table this processor belongs to.
    fn stage(&self) -> Stage;

    /// Rewrite `logits` (one row, length = vocabulary size) given the history.
    fn process(&self, history: &TokenHistory<'_>, logits: &mut [f32]) -> Result<(), DecodeError>;
}
// ANCHOR_END: trait

/// Check a token id list against the vocabulary size.
pub(crate) fn check_ids(op: &'static str, ids: &[u32], vocab: usize) -> Result<(), DecodeError> {
    match ids.iter().find(|&&id| id as usize >= vocab) {
        Some(&id) => Err(DecodeError::TokenOutOfRange { op, id, vocab }),
        None => Ok(()),
    }
}
