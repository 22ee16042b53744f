//! Step 8: beam search (Hugging Face's, token for token).
//!
//! Keep `num_beams` partial sequences ("beams") with the sum of their
//! log-probabilities, extend all of them by one token per step, and keep
//! the best. The rules, which the check follows exactly:
//!
//! * **Start.** Clear slot 0, feed it the prompt, and copy that cache to
//!   slots `0..num_beams` (`model.reorder(&vec![0; num_beams])`). Beam 0
//!   starts with score 0, the others with `-1e9`, so the first step's
//!   candidates all extend beam 0.
//! * **Step** (`n` tokens generated so far). For every beam, its
//!   log-softmax (your step 2) plus its score; over all beams × tokens take
//!   the best `k = max(2, 1 + eos.len()) · num_beams` candidates (on equal
//!   scores, the lower `beam · vocab + token` first). A candidate *ends* if
//!   its token is in `eos` or it is token number `max_new_tokens`.
//! * **Finished hypotheses.** The candidates that end *and* rank among the
//!   first `num_beams` are finished with the score
//!   `sum / (n + 1)^length_penalty` (`n + 1` generated tokens, EOS
//!   included; compute the power in f64, divide in f32). Keep the
//!   `num_beams` best finished ones.
//! * **Next beams.** The `num_beams` best candidates that do not end, with
//!   their sums as scores. Move the caches with `model.reorder(&sources)`
//!   (`sources[j]` = the beam new beam `j` extends), then feed every beam
//!   its new token in one `forward` call.
//! * **Stop** after a step when every candidate ended, or when `num_beams`
//!   hypotheses are finished and either `early_stopping` is
//!   `EarlyStopping::WhenFull` or the best running beam cannot beat the worst
//!   finished one any more: its sum divided by `(n + 1)^length_penalty`
//!   (with `EarlyStopping::Never` and `length_penalty > 0`, by
//!   `max_new_tokens^length_penalty`, the best it could still reach) is not
//!   greater than the worst finished score.
//! * **Return** the `num_return_sequences` best finished hypotheses, best
//!   first: generated tokens and score.
//!
//! `beam` is the project's [`BeamParams`]; its diverse-beam-search fields
//! (`num_beam_groups`, `diversity_penalty`) are 1 and 0 here, ignore them.
//!
//! Check: `cargo test --release --test step8_beam` compares sequences and
//! scores with `transformers` `generate(num_beams=…)` on the GPT-2
//! fixtures, for widths 2 to 5, length penalties −0.5 to 2, every
//! `early_stopping` mode, with and without an EOS token.

use decode::{BeamParams, LanguageModel, ModelError};

/// Beam search from `prompt` in slots `0..beam.num_beams`: the best
/// `beam.num_return_sequences` hypotheses as (generated tokens, score).
pub fn beam_search(
    model: &mut dyn LanguageModel,
    prompt: &[u32],
    beam: &BeamParams,
    max_new_tokens: usize,
    eos: &[u32],
) -> Result<Vec<(Vec<u32>, f32)>, ModelError> {
    todo!("step 8: beam_search")
}
