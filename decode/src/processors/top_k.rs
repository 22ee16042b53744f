//! Top-k: keep the k largest logits.

use crate::error::DecodeError;
use crate::processor::{LogitsProcessor, Stage, TokenHistory};

/// Keeps the `k` largest logits and removes the rest.
///
/// As in Hugging Face's `TopKLogitsWarper`, every token tied with the k-th
/// largest value is kept, so with ties more than `k` may survive.
/// **`k = 0` means "off"** (Hugging Face, vLLM and llama.cpp agree); `k`
/// larger than the vocabulary keeps everything.
#[derive(Debug, Clone)]
pub struct TopK {
    k: usize,
}

impl TopK {
    /// A top-k filter (`k = 0`: no filtering).
    pub fn new(k: usize) -> Self {
        TopK { k }
    }
}

impl LogitsProcessor for TopK {
    fn name(&self) -> &'static str {
        "top_k"
    }
    fn stage(&self) -> Stage {
        Stage::Filter
    }
    fn process(&self, _: &TokenHistory<'_>, logits: &mut [f32]) -> Result<(), DecodeError> {
        if self.k == 0 || self.k >= logits.len() {
            return Ok(());
        }
        keep_top_k(logits, self.k);
        Ok(())
    }
}

/// Removes every logit below the k-th largest (`0 < k < logits.len()`).
#[cfg(not(feature = "mutant-top-k-off-by-one"))]
// ANCHOR: top_k
fn keep_top_k(logits: &mut [f32], k: usize) {
    let mut sorted: Vec<f32> = logits.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let kth = sorted[k - 1];
    for x in logits.iter_mut() {
        if *x < kth {
            *x = f32::NEG_INFINITY;
        }
    }
}
// ANCHOR_END: top_k

/// The mutant: reads the threshold at index `k` instead of `k - 1`.
#[cfg(feature = "mutant-top-k-off-by-one")]
fn keep_top_k(logits: &mut [f32], k: usize) {
    let mut sorted: Vec<f32> = logits.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let kth = sorted[k];
    for x in logits.iter_mut() {
        if *x < kth {
            *x = f32::NEG_INFINITY;
        }
    }
}
