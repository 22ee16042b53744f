//! Loading SmolLM2-135M-Instruct for the chapter programs that run the real
//! model, and the small text measures those programs print.

use std::collections::HashSet;

use anyhow::Result;
use model::chat_template::{ChatMessage, ChatTemplate};
use model::gguf::GgufFile;
use model::llama::{Llama, LlamaWeights};
use model::tokenizer::Tokenizer;

/// SmolLM2 with its tokenizer and chat template, ready to generate.
pub struct SmolLm2 {
    /// The tokenizer read from the GGUF file.
    pub tok: Tokenizer,
    /// The model, widened to f32, with the requested context and slots.
    pub lm: Llama,
    /// The chat template read from the GGUF file (ChatML).
    pub template: ChatTemplate,
}

impl SmolLm2 {
    /// Load the default model (`scripts/fetch-model.sh` puts it in the
    /// cache), widened to f32 (the model the transformers fixtures check;
    /// the quantization chapter runs the file's 4-bit blocks as they are),
    /// with a KV cache of `ctx` tokens for each of `slots` sequences.
    ///
    /// # Errors
    /// When the model file is missing or unreadable.
    pub fn load(ctx: usize, slots: usize) -> Result<Self> {
        let path = model::model_path::find_default_model()?;
        let gguf = GgufFile::open(&path)?;
        let tok = Tokenizer::from_gguf(&gguf)?;
        let template = ChatTemplate::from_gguf(&gguf)?;
        let weights = LlamaWeights::from_gguf(&gguf, |_, _| {})?.to_dtype(engine::DType::F32)?;
        let lm = Llama::new(weights, ctx, slots)?;
        Ok(SmolLm2 { tok, lm, template })
    }

    /// The token ids of a one-turn chat: the default system prompt, the
    /// user's `message`, and the opening of the assistant's turn.
    pub fn chat_prompt(&self, message: &str) -> Vec<u32> {
        let text = self
            .template
            .render(&[ChatMessage::new("user", message)], true);
        self.tok.encode(&text)
    }

    /// The end-of-sequence ids to stop on.
    pub fn eos(&self) -> Vec<u32> {
        self.tok.eos_id().into_iter().collect()
    }
}

/// One line of text: newlines shown as ⏎, so each output stays on one line.
pub fn one_line(s: &str) -> String {
    s.replace('\n', "⏎")
}

/// At most `max` characters of `s` (on one line), with `…` when cut.
pub fn excerpt(s: &str, max: usize) -> String {
    let s = one_line(s.trim());
    if s.chars().count() <= max {
        s
    } else {
        let cut: String = s.chars().take(max).collect();
        format!("{}…", cut.trim_end())
    }
}

/// Distinct-n: the number of distinct token n-grams of `ids` divided by the
/// number of n-grams (1 when nothing repeats, near 0 for a loop; 1 for a
/// sequence shorter than n, which has nothing to repeat).
pub fn distinct_n(ids: &[u32], n: usize) -> f64 {
    let total = ids.len().saturating_sub(n - 1);
    if n == 0 || total == 0 {
        return 1.0;
    }
    let distinct: HashSet<&[u32]> = ids.windows(n).collect();
    distinct.len() as f64 / total as f64
}

/// How many token n-grams of `ids` already occurred earlier in `ids`.
pub fn repeated_ngrams(ids: &[u32], n: usize) -> usize {
    let mut seen = HashSet::new();
    ids.windows(n).filter(|w| !seen.insert(*w)).count()
}

/// Share of the token 3-grams of `ids` that already occurred earlier in
/// `ids` (0: nothing repeats).
pub fn rep3(ids: &[u32]) -> f64 {
    let total = ids.len().saturating_sub(2);
    if total == 0 {
        0.0
    } else {
        repeated_ngrams(ids, 3) as f64 / total as f64
    }
}
