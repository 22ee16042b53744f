//! OpenAI-style additive frequency and presence penalties.

use super::scope::PenaltyScope;
use crate::error::DecodeError;
use crate::processor::{LogitsProcessor, Stage, TokenHistory};

/// `logit[t] -= frequency · count(t) + presence · [count(t) > 0]`, with
/// counts taken over the scope (OpenAI and vLLM: generated tokens only).
/// Both penalties lie in OpenAI's range, -2 to 2 (0 = off); a negative
/// value rewards repetition instead of penalising it.
#[derive(Debug, Clone)]
pub struct FrequencyPresencePenalty {
    frequency: f32,
    presence: f32,
    scope: PenaltyScope,
}

impl FrequencyPresencePenalty {
    /// Frequency `frequency` and presence `presence` penalties over `scope`.
    pub fn new(frequency: f32, presence: f32, scope: PenaltyScope) -> Result<Self, DecodeError> {
        for (name, v) in [
            ("frequency_penalty", frequency),
            ("presence_penalty", presence),
        ] {
            if !(-2.0..=2.0).contains(&v) {
                return Err(DecodeError::param(
                    name,
                    v,
                    "must be in [-2, 2] as in OpenAI's API (0 = off)",
                ));
            }
        }
        Ok(FrequencyPresencePenalty {
            frequency,
            presence,
            scope,
        })
    }
}

impl LogitsProcessor for FrequencyPresencePenalty {
    fn name(&self) -> &'static str {
        "frequency_presence"
    }
    fn stage(&self) -> Stage {
        Stage::Penalty
    }
    fn process(&self, history: &TokenHistory<'_>, logits: &mut [f32]) -> Result<(), DecodeError> {
        let mut count = vec![0u32; logits.len()];
        for &t in self.scope.select(history) {
            if let Some(c) = count.get_mut(t as usize) {
                *c += 1;
            }
        }
        // ANCHOR: frequency
        for (x, &c) in logits.iter_mut().zip(&count) {
            if c > 0 {
                *x -= self.frequency * c as f32 + self.presence;
            }
        }
        // ANCHOR_END: frequency
        Ok(())
    }
}
