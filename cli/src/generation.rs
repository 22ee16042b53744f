//! The generation loop the commands share: prefill the prompt, then decode
//! one token at a time, handing each token to a callback as it arrives.
//! Greedy for now; the decoding strategies plug in at [`next_token`].

use std::time::Instant;

use anyhow::{Result, anyhow};
use decode::LanguageModel;

/// What one generation produced and how long its two phases took.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Generated token ids (the stop token included if one was produced).
    pub tokens: Vec<u32>,
    /// Seconds for the prompt (prefill), which also yields the first token.
    pub prefill_secs: f64,
    /// Seconds for the decode steps after the first token.
    pub decode_secs: f64,
    /// Decode steps run (forward calls after the prefill).
    pub decode_steps: usize,
    /// Whether a stop token ended the generation.
    pub stopped: bool,
}

/// Pick the next token from a logits row (greedy: the largest logit).
pub fn next_token(logits: &[f32]) -> u32 {
    engine::kernels::argmax(logits) as u32
}

/// Feed `prompt` to `slot` (after whatever it already holds), then generate
/// up to `max_new` tokens, stopping after any token in `stop`. `on_token` is
/// called with each token as soon as it is chosen.
pub fn generate(
    lm: &mut dyn LanguageModel,
    slot: usize,
    prompt: &[u32],
    max_new: usize,
    stop: &[u32],
    on_token: &mut dyn FnMut(u32),
) -> Result<Outcome> {
    let mut out = Outcome::default();
    if max_new == 0 || prompt.is_empty() {
        return Ok(out);
    }
    let t0 = Instant::now();
    let mut logits = lm
        .forward(&[(slot, prompt)])
        .map_err(|e| anyhow!(e))?
        .remove(0);
    out.prefill_secs = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    loop {
        let tok = next_token(&logits);
        out.tokens.push(tok);
        on_token(tok);
        if stop.contains(&tok) {
            out.stopped = true;
            break;
        }
        if out.tokens.len() >= max_new || lm.seq_len(slot) >= lm.max_seq_len() {
            break;
        }
        logits = lm
            .forward(&[(slot, &[tok])])
            .map_err(|e| anyhow!(e))?
            .remove(0);
        out.decode_steps += 1;
    }
    out.decode_secs = t1.elapsed().as_secs_f64();
    Ok(out)
}
