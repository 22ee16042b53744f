//! Ban any token that would repeat an n-gram already in the sequence.

use crate::error::DecodeError;
use crate::processor::{LogitsProcessor, Stage, TokenHistory};

/// If the last `n - 1` tokens equal the first `n - 1` tokens of an n-gram
/// that already occurs (anywhere in prompt + generated), that n-gram's last
/// token is banned (`-inf`), as Hugging Face's `NoRepeatNGramLogitsProcessor`.
/// `n = 0` is off; `n = 1` bans every token already seen.
#[derive(Debug, Clone)]
pub struct NoRepeatNGram {
    n: usize,
}

impl NoRepeatNGram {
    /// A no-repeat-n-gram processor (`n = 0`: off).
    pub fn new(n: usize) -> Self {
        NoRepeatNGram { n }
    }
}

impl LogitsProcessor for NoRepeatNGram {
    fn name(&self) -> &'static str {
        "no_repeat_ngram"
    }
    fn stage(&self) -> Stage {
        Stage::Penalty
    }
    fn process(&self, history: &TokenHistory<'_>, logits: &mut [f32]) -> Result<(), DecodeError> {
        let toks = history.tokens;
        let n = self.n;
        if n == 0 || toks.len() < n {
            return Ok(());
        }
        let prefix = &toks[toks.len() + 1 - n..];
        for window in toks.windows(n) {
            if &window[..n - 1] == prefix
                && let Some(x) = logits.get_mut(window[n - 1] as usize)
            {
                *x = f32::NEG_INFINITY;
            }
        }
        Ok(())
    }
}
