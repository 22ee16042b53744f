//! Typical-p (locally typical sampling).

use crate::error::DecodeError;
use crate::probs::{log_softmax, softmax};
use crate::processor::{LogitsProcessor, Stage, TokenHistory};

/// Keeps the tokens whose surprise `-ln p` is closest to the entropy `H`
/// of the distribution, smallest distance first, until their mass reaches
/// `mass` (Hugging Face's `TypicalLogitsWarper`). At least one token
/// survives. `mass` must be in (0, 1]; 1 keeps everything.
#[derive(Debug, Clone)]
pub struct TypicalP {
    mass: f32,
}

impl TypicalP {
    /// A typical-p filter; errors unless `0 < mass <= 1`.
    pub fn new(mass: f32) -> Result<Self, DecodeError> {
        if !(mass > 0.0 && mass <= 1.0) {
            return Err(DecodeError::param("typical_p", mass, "must be in (0, 1]"));
        }
        Ok(TypicalP { mass })
    }
}

impl LogitsProcessor for TypicalP {
    fn name(&self) -> &'static str {
        "typical_p"
    }
    fn stage(&self) -> Stage {
        Stage::Filter
    }
    fn process(&self, _: &TokenHistory<'_>, logits: &mut [f32]) -> Result<(), DecodeError> {
        if self.mass >= 1.0 {
            return Ok(());
        }
        // ANCHOR: typical
        let logp = log_softmax(logits);
        // Entropy; masked tokens (p = 0, ln p = -inf) contribute nothing.
        let entropy: f32 = -logp
            .iter()
            .filter(|l| l.is_finite())
            .map(|&l| l * l.exp())
            .sum::<f32>();
        let shifted: Vec<f32> = logp.iter().map(|&l| (-l - entropy).abs()).collect();
        let mut order: Vec<usize> = (0..logits.len()).collect();
        order.sort_by(|&a, &b| shifted[a].total_cmp(&shifted[b]).then(a.cmp(&b)));
        let sorted_logits: Vec<f32> = order.iter().map(|&i| logits[i]).collect();
        let probs = softmax(&sorted_logits);
        // Index of the first sorted token at which the mass reaches `mass`.
        let mut cum = 0.0f32;
        let mut last = 0;
        for p in &probs {
            cum += p;
            if cum < self.mass {
                last += 1;
            }
        }
        let last = last.min(order.len() - 1);
        let cutoff = shifted[order[last]];
        for (rank, &i) in order.iter().enumerate() {
            if rank > 0 && shifted[i] > cutoff {
                logits[i] = f32::NEG_INFINITY;
            }
        }
        // ANCHOR_END: typical
        Ok(())
    }
}
