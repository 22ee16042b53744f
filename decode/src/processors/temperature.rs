//! Temperature: divide every logit by τ.

use crate::error::DecodeError;
use crate::processor::{LogitsProcessor, Stage, TokenHistory};
use crate::widest::widest;

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
        divide(logits, self.tau);
        Ok(())
    }
}

widest! {
    /// [`divide_by_temperature`] on the widest vectors the CPU has (the
    /// same quotients).
    fn divide(logits: &mut [f32], tau: f32) -> () = divide_by_temperature
}

/// Divides every logit by `tau`.
#[cfg(not(feature = "mutant-temperature-multiply"))]
#[inline(always)]
// ANCHOR: temperature
fn divide_by_temperature(logits: &mut [f32], tau: f32) {
    for x in logits.iter_mut() {
        *x /= tau;
    }
}
// ANCHOR_END: temperature

/// The mutant: multiplies by τ instead of dividing.
#[cfg(feature = "mutant-temperature-multiply")]
#[inline(always)]
fn divide_by_temperature(logits: &mut [f32], tau: f32) {
    for x in logits.iter_mut() {
        *x *= tau;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wide division gives every logit the bits of its own plain
    /// quotient, at lengths that leave every kind of tail; the NaN check
    /// finds a bad value wherever it sits.
    #[test]
    fn wide_loops_give_the_plain_bits() {
        use rand::Rng;
        let mut rng = crate::seeded_rng(0x9e37_79b9, 0);
        for len in [1usize, 7, 8, 15, 16, 17, 33, 100, 49_152] {
            let v: Vec<f32> = (0..len).map(|_| rng.gen_range(-20.0f32..20.0)).collect();
            for tau in [0.8f32, 0.3, 1.7] {
                let mut fast = v.clone();
                divide(&mut fast, tau);
                let plain: Vec<u32> = v.iter().map(|x| (x / tau).to_bits()).collect();
                let fast: Vec<u32> = fast.iter().map(|x| x.to_bits()).collect();
                assert_eq!(fast, plain, "{len} logits, tau {tau}");
            }
            for bad in [f32::NAN, f32::INFINITY] {
                let mut w = v.clone();
                w[len * 2 / 3] = bad;
                let err = crate::probs::check_logits("t", &w);
                assert!(err.is_err(), "{len} logits with {bad} at {}", len * 2 / 3);
            }
            assert!(crate::probs::check_logits("t", &v).is_ok());
        }
    }
}
