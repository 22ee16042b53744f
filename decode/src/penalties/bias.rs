//! Logit bias, banned tokens and `min_new_tokens`.

use crate::error::DecodeError;
use crate::processor::{LogitsProcessor, Stage, TokenHistory, check_ids};

/// Adds a fixed bias to chosen tokens' logits (OpenAI/vLLM `logit_bias`).
#[derive(Debug, Clone)]
pub struct LogitBias {
    bias: Vec<(u32, f32)>,
}

impl LogitBias {
    /// A bias list of `(token id, added value)`; values must be finite.
    pub fn new(bias: Vec<(u32, f32)>) -> Result<Self, DecodeError> {
        if let Some((_, v)) = bias.iter().find(|(_, v)| !v.is_finite()) {
            return Err(DecodeError::param(
                "logit_bias",
                v,
                "bias values must be finite",
            ));
        }
        Ok(LogitBias { bias })
    }
}

impl LogitsProcessor for LogitBias {
    fn name(&self) -> &'static str {
        "logit_bias"
    }
    fn stage(&self) -> Stage {
        Stage::Penalty
    }
    fn process(&self, _: &TokenHistory<'_>, logits: &mut [f32]) -> Result<(), DecodeError> {
        let ids: Vec<u32> = self.bias.iter().map(|(id, _)| *id).collect();
        check_ids("logit_bias", &ids, logits.len())?;
        for &(id, b) in &self.bias {
            logits[id as usize] += b;
        }
        Ok(())
    }
}

/// Sets the listed tokens' logits to `-inf`: they can never be chosen.
#[derive(Debug, Clone)]
pub struct BannedTokens {
    ids: Vec<u32>,
}

impl BannedTokens {
    /// Ban `ids`.
    pub fn new(ids: Vec<u32>) -> Self {
        BannedTokens { ids }
    }
}

impl LogitsProcessor for BannedTokens {
    fn name(&self) -> &'static str {
        "banned_tokens"
    }
    fn stage(&self) -> Stage {
        Stage::Penalty
    }
    fn process(&self, _: &TokenHistory<'_>, logits: &mut [f32]) -> Result<(), DecodeError> {
        check_ids("banned_tokens", &self.ids, logits.len())?;
        for &id in &self.ids {
            logits[id as usize] = f32::NEG_INFINITY;
        }
        Ok(())
    }
}

/// Suppresses the end-of-sequence tokens until `min_new_tokens` tokens were
/// generated (Hugging Face's `MinNewTokensLengthLogitsProcessor`).
#[derive(Debug, Clone)]
pub struct MinNewTokens {
    min_new_tokens: usize,
    eos_ids: Vec<u32>,
}

impl MinNewTokens {
    /// Suppress `eos_ids` while fewer than `min_new_tokens` were generated.
    pub fn new(min_new_tokens: usize, eos_ids: Vec<u32>) -> Self {
        MinNewTokens {
            min_new_tokens,
            eos_ids,
        }
    }
}

impl LogitsProcessor for MinNewTokens {
    fn name(&self) -> &'static str {
        "min_new_tokens"
    }
    fn stage(&self) -> Stage {
        Stage::Penalty
    }
    fn process(&self, history: &TokenHistory<'_>, logits: &mut [f32]) -> Result<(), DecodeError> {
        check_ids("min_new_tokens", &self.eos_ids, logits.len())?;
        if history.generated().len() < self.min_new_tokens {
            for &id in &self.eos_ids {
                logits[id as usize] = f32::NEG_INFINITY;
            }
        }
        Ok(())
    }
}
