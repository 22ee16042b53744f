//! Which tokens a penalty counts.

use crate::processor::TokenHistory;

/// Which part of the history a penalty looks at. The reference engines
/// disagree: Hugging Face's repetition penalty counts prompt + generated,
/// OpenAI/vLLM frequency and presence penalties count generated tokens
/// only, and llama.cpp counts the last N tokens (default 64) of either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PenaltyScope {
    /// The prompt and every generated token.
    PromptAndGenerated,
    /// Only the generated tokens.
    GeneratedOnly,
    /// The last N tokens of prompt + generated (N = 0 counts nothing).
    LastN(usize),
}

impl PenaltyScope {
    /// The tokens this scope selects from `history`.
    pub fn select<'a>(&self, history: &TokenHistory<'a>) -> &'a [u32] {
        match *self {
            PenaltyScope::PromptAndGenerated => history.tokens,
            PenaltyScope::GeneratedOnly => history.generated(),
            PenaltyScope::LastN(n) => {
                let len = history.tokens.len();
                &history.tokens[len - n.min(len)..]
            }
        }
    }
}
