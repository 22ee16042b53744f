//! Greedy choice: the most likely token.

use crate::probs::argmax;

// ANCHOR: greedy
/// Pick the arg-max of a processed logits row (lowest id on ties).
pub fn greedy_choice(logits: &[f32]) -> u32 {
    argmax(logits) as u32
}
// ANCHOR_END: greedy
