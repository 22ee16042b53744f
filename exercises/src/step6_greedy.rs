//! Step 6: greedy decoding with the KV cache.
//!
//! A [`LanguageModel`] keeps a KV cache per sequence slot: `forward` appends
//! the tokens you give it to the slot and returns the logits of the slot's
//! last position. So feed the prompt once, then only the newest token at
//! every step; the keys and values of everything before it are already
//! cached. Greedy decoding takes the arg-max of each logits row (the lowest
//! id on a tie).
//!
//! Use slot 0, and clear it first (`model.clear(0)`). Stop after
//! `max_new_tokens` tokens, or right after a token listed in `eos` (it is
//! returned too). Do not run the model after the last token: nobody needs
//! its logits.
//!
//! Check: `cargo test --release --test step6_greedy` compares with the
//! greedy continuations `transformers` computed for the GPT-2 fixtures, and
//! counts the tokens you fed the model at every call.

use decode::{LanguageModel, ModelError};

/// Greedy continuation of `prompt`: the generated tokens.
pub fn greedy(
    model: &mut dyn LanguageModel,
    prompt: &[u32],
    max_new_tokens: usize,
    eos: &[u32],
) -> Result<Vec<u32>, ModelError> {
    todo!("step 6: greedy")
}
