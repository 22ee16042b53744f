//! Top-p (nucleus): keep the smallest set of tokens whose mass reaches p.

use crate::error::DecodeError;
use crate::probs::{softmax, sorted_desc};
use crate::processor::{LogitsProcessor, Stage, TokenHistory};

/// Keeps the most probable tokens until their cumulative probability
/// reaches `p`; the token whose probability makes the sum cross `p` is
/// **kept**, and at least one token always survives.
///
/// Rule (Hugging Face's `TopPLogitsWarper`, restated from the top): walking
/// tokens from most to least probable, a token is removed when the mass of
/// the tokens *less* probable than it plus its own is `<= 1 - p`. Equivalently
/// the nucleus is the shortest prefix whose mass reaches `p`. `p` must be in
/// (0, 1]; `p = 1` keeps everything.
#[derive(Debug, Clone)]
pub struct TopP {
    p: f32,
}

impl TopP {
    /// A nucleus filter; errors unless `0 < p <= 1`.
    pub fn new(p: f32) -> Result<Self, DecodeError> {
        if !(p > 0.0 && p <= 1.0) {
            return Err(DecodeError::param("top_p", p, "must be in (0, 1]"));
        }
        Ok(TopP { p })
    }
}

impl LogitsProcessor for TopP {
    fn name(&self) -> &'static str {
        "top_p"
    }
    fn stage(&self) -> Stage {
        Stage::Filter
    }
    fn process(&self, _: &TokenHistory<'_>, logits: &mut [f32]) -> Result<(), DecodeError> {
        if self.p >= 1.0 {
            return Ok(());
        }
        keep_nucleus(logits, self.p);
        Ok(())
    }
}

/// Removes every token outside the nucleus of mass `p` (`0 < p < 1`).
#[cfg(not(feature = "mutant-top-p-drop-crossing"))]
// ANCHOR: top_p
fn keep_nucleus(logits: &mut [f32], p: f32) {
    // Ascending order, as Hugging Face does: cumulative mass from the
    // least probable token up; remove while it stays <= 1 - p.
    let mut order = sorted_desc(logits);
    order.reverse();
    let sorted: Vec<f32> = order.iter().map(|&i| logits[i]).collect();
    let probs = softmax(&sorted);
    let mut cum = 0.0f32;
    let last = order.len() - 1;
    for (rank, &i) in order.iter().enumerate() {
        cum += probs[rank];
        let remove = cum <= 1.0 - p;
        if remove && rank != last {
            logits[i] = f32::NEG_INFINITY;
        }
    }
}
// ANCHOR_END: top_p

/// The mutant: also removes the token whose probability makes the sum cross
/// `p`, so the nucleus falls short of `p`.
#[cfg(feature = "mutant-top-p-drop-crossing")]
fn keep_nucleus(logits: &mut [f32], p: f32) {
    let mut order = sorted_desc(logits);
    order.reverse();
    let sorted: Vec<f32> = order.iter().map(|&i| logits[i]).collect();
    let probs = softmax(&sorted);
    let mut cum = 0.0f32;
    let last = order.len() - 1;
    for (rank, &i) in order.iter().enumerate() {
        cum += probs[rank];
        let remove = cum - probs[rank] < 1.0 - p;
        if remove && rank != last {
            logits[i] = f32::NEG_INFINITY;
        }
    }
}
