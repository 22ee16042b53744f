//! Temperature: divide every logit by τ.

use crate::error::DecodeError;
use crate::processor::{LogitsProcessor, Stage, TokenHistory};

/// Divides logits by a temperature τ > 0.
///
/// τ < 1 sharpens the distribution, τ > 1 flattens it; τ → 0 tends to greedy.
/// **τ = 0 is refused here** (as Hugging Face's `TemperatureLogitsWarper` does);
/// [`crate::SamplingParams`] maps `temperature = 0` to the greedy strategy
/// explicitly instead.
#[derive(Debug, Clone)]
pub struct Temperature {
    tau: f32,
}

impl Temperature {
    /// A temperature processor; errors unless `tau` is finite and > 0.
    pub fn new(tau: f32) -> Result<Self, DecodeError> {
        if !(tau.is_finite() && tau > 0.0) {
            return Err(DecodeError::param(
                "temperature",
                tau,
                "must be a finite number > 0 (use the greedy strategy for 0)",
            ));
        }
        Ok(Temperature { tau })
    }
}

impl LogitsProcessor for Temperature {
    fn name(&self) -> &'static str {
        "temperature"
    }
    fn stage(&self) -> Stage {
        Stage::Temperature
    }
    fn process(&self, _: &TokenHistory<'_>, logits: &mut [f32]) -> Result<(), DecodeError> {
        // ANCHOR: temperature
        for x in logits.iter_mut() {
            #[cfg(not(feature = "mutant-temperature-multiply"))]
            {
                *x /= self.tau;
            }
            #[cfg(feature = "mutant-temperature-multiply")]
            {
                *x *= self.tau;
            }
        }
        // ANCHOR_END: temperature
        Ok(())
    }
}
