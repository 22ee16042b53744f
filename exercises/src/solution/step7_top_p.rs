//! Step 7, the reference: `TopP` in `decode/src/processors/top_p.rs` and
//! `sample_from_logits` in `decode/src/sample.rs` (the chapter "Sampling"
//! includes both).

use decode::processors::TopP;
use decode::{LogitsProcessor, TokenHistory};
use rand::Rng;

/// Remove every token outside the nucleus of mass `p` (the project's `TopP`).
pub fn top_p(logits: &mut [f32], p: f32) {
    TopP::new(p)
        .and_then(|f| f.process(&TokenHistory::new(&[], 0), logits))
        .expect("0 < p <= 1");
}

/// Draw a token by inverse CDF (the project's `sample_from_logits`).
pub fn sample(logits: &[f32], rng: &mut impl Rng) -> u32 {
    decode::sample_from_logits(logits, rng)
}
