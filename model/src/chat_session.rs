//! A conversation with a chat model that keeps its KV cache between turns.
//!
//! Each turn renders the whole conversation with the chat template, but
//! feeds the model only the text the template added since the last turn:
//! the cache already holds the rest. When the rendered text no longer
//! starts with what is cached (a template that rewrites earlier turns),
//! the session starts the cache over. Turn `i` samples with seed
//! `seed + i`, so replies do not replay the same random draws and a whole
//! conversation is reproducible for one seed. `infer chat` drives it, and
//! any other program can.

use decode::{
    DecodeError, FinishReason, GenerateParams, Generation, Generator, LanguageModel, Strategy,
};

use crate::chat_template::{ChatMessage, ChatTemplate};
use crate::tokenizer::Tokenizer;

/// One conversation in one slot of a model.
#[derive(Debug, Clone)]
pub struct ChatSession {
    template: ChatTemplate,
    tokenizer: Tokenizer,
    params: GenerateParams,
    slot: usize,
    base: Vec<ChatMessage>,
    messages: Vec<ChatMessage>,
    /// The conversation as text, as far as the cache holds it.
    cached: String,
    /// The conversation as tokens; the cache holds all but the last.
    context: Vec<u32>,
    turn: u64,
}

/// What one turn fed and produced, besides the reply itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TurnStats {
    /// Tokens fed to the model this turn.
    pub new_prompt_tokens: usize,
    /// Tokens the cache already held.
    pub cached_tokens: usize,
}

impl ChatSession {
    /// A conversation in `slot`, with an optional system prompt. The
    /// model's EOS ends each reply.
    ///
    /// # Errors
    /// Invalid `params`, or beam search (a reply streams token by token).
    pub fn new(
        template: ChatTemplate,
        tokenizer: Tokenizer,
        system: Option<String>,
        mut params: GenerateParams,
        slot: usize,
    ) -> Result<Self, DecodeError> {
        if !params.strategy.streams() {
            return Err(DecodeError::param(
                "strategy",
                "beam",
                "a chat reply streams: use greedy or sampling",
            ));
        }
        params.eos_ids.extend(tokenizer.eos_id());
        params.validate()?;
        let base: Vec<ChatMessage> = system
            .into_iter()
            .map(|s| ChatMessage::new("system", s))
            .collect();
        Ok(ChatSession {
            template,
            tokenizer,
            params,
            slot,
            messages: base.clone(),
            base,
            cached: String::new(),
            context: Vec::new(),
            turn: 0,
        })
    }

    /// The tokenizer (also the detokenizer the replies stream through).
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The conversation so far (system prompt, user and assistant turns).
    pub fn messages(&self) -> &[ChatMessage] {
        &self.messages
    }

    /// Forget the conversation (the system prompt stays) and its cache.
    pub fn reset(&mut self, lm: &mut dyn LanguageModel) {
        self.messages = self.base.clone();
        self.cached.clear();
        self.context.clear();
        lm.clear(self.slot);
    }

    /// Send the user's `text` and generate the reply. `drive` runs the
    /// reply's [`Generator`] (streaming it wherever it likes) and returns
    /// something that holds the finished [`Generation`]. On any error the
    /// conversation is reset, so the next turn starts clean.
    ///
    /// # Errors
    /// The generator's errors (a context that is full, say), or `drive`'s.
    pub fn reply<T, E>(
        &mut self,
        lm: &mut dyn LanguageModel,
        text: &str,
        drive: impl FnOnce(Generator<'_, dyn LanguageModel + '_>) -> Result<T, E>,
    ) -> Result<(T, TurnStats), E>
    where
        T: AsRef<Generation>,
        E: From<DecodeError>,
    {
        self.messages.push(ChatMessage::new("user", text));
        let full = self.template.render(&self.messages, true);
        match full.strip_prefix(self.cached.as_str()) {
            Some(suffix) => self.context.extend(self.tokenizer.encode(suffix)),
            None => {
                lm.clear(self.slot);
                self.context = self.tokenizer.encode(&full);
            }
        }
        let cached_tokens = lm.seq_len(self.slot);
        let mut params = self.params.clone();
        if let Strategy::Sample { seed } = &mut params.strategy {
            *seed = seed.wrapping_add(self.turn);
        }
        self.turn += 1;
        let result = Generator::resume(lm, &self.tokenizer, self.slot, &self.context, &params)
            .map_err(E::from)
            .and_then(drive);
        let out = match result {
            Ok(out) => out,
            Err(e) => {
                self.reset(lm);
                return Err(e);
            }
        };
        let g = out.as_ref();
        let ids: Vec<u32> = g.tokens.iter().map(|t| t.id).collect();
        let stats = TurnStats {
            new_prompt_tokens: self.context.len() - cached_tokens,
            cached_tokens,
        };
        self.context.extend(&ids);
        self.cached = format!("{full}{}", self.tokenizer.decode(&ids));
        // The reply as the template will render it: without EOS (the
        // template adds its own end marker) and without a stop string.
        let content = match &g.finish {
            Some(FinishReason::Eos(_)) | Some(FinishReason::StopString(_)) => g.text.clone(),
            _ => self.tokenizer.decode(&ids),
        };
        self.messages.push(ChatMessage::new("assistant", content));
        Ok((out, stats))
    }
}
