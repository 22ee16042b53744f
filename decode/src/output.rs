//! What a step of generation hands back: the token chosen
//! ([`TokenOutput`]) and the text it makes safe to show ([`StepOutput`]).
//! [`crate::Generator`], batched generation and the [`crate::scheduler`]
//! all produce them.

use crate::explain::ExplainStep;
use crate::params::FinishReason;

/// One generated token.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenOutput {
    /// Token id.
    pub id: u32,
    /// The token's own text (lossy UTF-8 of its bytes; empty for EOS).
    pub text: String,
    /// Log-probability of the token under the distribution it was chosen
    /// from (after every processor).
    pub logprob: f32,
    /// The most likely alternatives `(id, log-prob)`, best first.
    pub top: Vec<(u32, f32)>,
}

/// What one step of a [`crate::Generator`] produced.
#[derive(Debug, Clone)]
pub struct StepOutput {
    /// The token chosen at this step.
    pub token: TokenOutput,
    /// New text that is safe to show (may be empty while a stop string or
    /// a multi-byte character is pending).
    pub delta: String,
    /// The explain table, when asked for.
    pub explain: Option<ExplainStep>,
    /// Set on the last step.
    pub finish: Option<FinishReason>,
}
