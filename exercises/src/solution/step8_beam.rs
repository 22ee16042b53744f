//! Step 8, the reference: `decode::beam_search` (`decode/src/beam.rs`; the
//! chapter "Greedy and beam search" includes its step).

use decode::{BeamParams, GenerateParams, LanguageModel, ModelError, Strategy};

/// Beam search from `prompt` in slots `0..beam.num_beams`: the best
/// `beam.num_return_sequences` hypotheses as (generated tokens, score).
pub fn beam_search(
    model: &mut dyn LanguageModel,
    prompt: &[u32],
    beam: &BeamParams,
    max_new_tokens: usize,
    eos: &[u32],
) -> Result<Vec<(Vec<u32>, f32)>, ModelError> {
    let params = GenerateParams {
        strategy: Strategy::Beam(beam.clone()),
        max_new_tokens,
        eos_ids: eos.to_vec(),
        ..Default::default()
    };
    let hyps = decode::beam_search(model, &Vec::<Vec<u8>>::new(), prompt, &params)?;
    Ok(hyps.into_iter().map(|h| (h.tokens, h.score)).collect())
}
