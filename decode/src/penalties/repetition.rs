//! The CTRL / Hugging Face multiplicative repetition penalty.

use super::scope::PenaltyScope;
use crate::error::DecodeError;
use crate::processor::{LogitsProcessor, Stage, TokenHistory};

/// For every distinct token seen in the scope: a positive logit is divided
/// by `penalty`, a negative one multiplied by it (Keskar et al., CTRL;
/// Hugging Face's `RepetitionPenaltyLogitsProcessor`). `penalty > 1`
/// discourages repeats, `1` is off; `penalty` must be > 0. Each token is
/// penalised once, however often it occurred.
#[derive(Debug, Clone)]
pub struct RepetitionPenalty {
    penalty: f32,
    scope: PenaltyScope,
}

impl RepetitionPenalty {
    /// A repetition penalty over `scope`; errors unless `penalty` is finite and > 0.
    pub fn new(penalty: f32, scope: PenaltyScope) -> Result<Self, DecodeError> {
        if !(penalty.is_finite() && penalty > 0.0) {
            return Err(DecodeError::param(
                "repetition_penalty",
                penalty,
                "must be a finite number > 0 (1 = off)",
            ));
        }
        Ok(RepetitionPenalty { penalty, scope })
    }
}

impl LogitsProcessor for RepetitionPenalty {
    fn name(&self) -> &'static str {
        "repetition_penalty"
    }
    fn stage(&self) -> Stage {
        Stage::Penalty
    }
    fn process(&self, history: &TokenHistory<'_>, logits: &mut [f32]) -> Result<(), DecodeError> {
        let mut seen = vec![false; logits.len()];
        for &t in self.scope.select(history) {
            if let Some(s) = seen.get_mut(t as usize) {
                *s = true;
            }
        }
        penalise_seen(logits, &seen, self.penalty);
        Ok(())
    }
}

/// Applies `penalty` once to the logit of every token marked in `seen`.
#[cfg(not(feature = "mutant-repetition-sign"))]
// ANCHOR: repetition
fn penalise_seen(logits: &mut [f32], seen: &[bool], penalty: f32) {
    for (x, _) in logits.iter_mut().zip(seen).filter(|(_, s)| **s) {
        *x = if *x < 0.0 { *x * penalty } else { *x / penalty };
    }
}
// ANCHOR_END: repetition

/// The mutant: divides every seen logit, negative ones included (which
/// raises them).
#[cfg(feature = "mutant-repetition-sign")]
fn penalise_seen(logits: &mut [f32], seen: &[bool], penalty: f32) {
    for (x, _) in logits.iter_mut().zip(seen).filter(|(_, s)| **s) {
        *x /= penalty;
    }
}
