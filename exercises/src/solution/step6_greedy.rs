//! Step 6, the reference: `decode::generate` with the greedy strategy (the
//! loop is `Generator::advance` in `decode/src/generate.rs`, which the
//! chapter "Penalties and stopping" includes; the choice is `greedy_choice`
//! in `decode/src/greedy.rs`, which "Greedy and beam search" includes).

use decode::{GenerateParams, LanguageModel, ModelError, Strategy};

/// Greedy continuation of `prompt`: the generated tokens.
pub fn greedy(
    model: &mut dyn LanguageModel,
    prompt: &[u32],
    max_new_tokens: usize,
    eos: &[u32],
) -> Result<Vec<u32>, ModelError> {
    let params = GenerateParams {
        strategy: Strategy::Greedy,
        max_new_tokens,
        eos_ids: eos.to_vec(),
        ..Default::default()
    };
    let g = decode::generate(model, &Vec::<Vec<u8>>::new(), prompt, &params)?;
    Ok(g.tokens.iter().map(|t| t.id).collect())
}
