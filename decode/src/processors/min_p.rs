//! Min-p: remove tokens far less probable than the most probable one.

use crate::error::DecodeError;
use crate::probs::{argmax, softmax};
use crate::processor::{LogitsProcessor, Stage, TokenHistory};

/// Removes every token whose probability is below `min_p × p_max`
/// (Hugging Face's `MinPLogitsWarper`; llama.cpp does the same test in logit
/// space). The most probable token always survives. `min_p` must be in
/// [0, 1]; 0 keeps everything.
#[derive(Debug, Clone)]
pub struct MinP {
    min_p: f32,
}

impl MinP {
    /// A min-p filter; errors unless `0 <= min_p <= 1`.
    pub fn new(min_p: f32) -> Result<Self, DecodeError> {
        if !(0.0..=1.0).contains(&min_p) {
            return Err(DecodeError::param("min_p", min_p, "must be in [0, 1]"));
        }
        Ok(MinP { min_p })
    }
}

impl LogitsProcessor for MinP {
    fn name(&self) -> &'static str {
        "min_p"
    }
    fn stage(&self) -> Stage {
        Stage::Filter
    }
    fn process(&self, _: &TokenHistory<'_>, logits: &mut [f32]) -> Result<(), DecodeError> {
        if self.min_p == 0.0 {
            return Ok(());
        }
        // ANCHOR: min_p
        let probs = softmax(logits);
        let best = argmax(logits);
        let threshold = self.min_p * probs[best];
        for (i, x) in logits.iter_mut().enumerate() {
            if probs[i] < threshold && i != best {
                *x = f32::NEG_INFINITY;
            }
        }
        // ANCHOR_END: min_p
        Ok(())
    }
}
