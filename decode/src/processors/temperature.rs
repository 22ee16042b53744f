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
        divide_by_temperature(logits, self.tau);
        Ok(())
    }
}

/// Divides every logit by `tau`.
#[cfg(not(feature = "mutant-temperature-multiply"))]
// ANCHOR: temperature
fn divide_by_temperature(logits: &mut [f32], tau: f32) {
    for x in logits.iter_mut() {
        *x /= tau;
    }
}
// ANCHOR_END: temperature

/// The mutant: multiplies by τ instead of dividing.
#[cfg(feature = "mutant-temperature-multiply")]
fn divide_by_temperature(logits: &mut [f32], tau: f32) {
    for x in logits.iter_mut() {
        *x *= tau;
    }
}
