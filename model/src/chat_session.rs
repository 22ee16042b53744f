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

#[cfg(test)]
mod tests {
    use decode::toy::FnModel;
    use decode::{collect_steps, generate};

    use super::*;
    use crate::tokenizer::byte_map::bytes_to_unicode;
    use crate::tokenizer::{PreTokenizerKind, TokenizerParts};

    const IM_START: u32 = 256;
    const IM_END: u32 = 257;
    const VOCAB: usize = 258;

    /// A byte-level tokenizer without merges (one token per byte) and
    /// ChatML's two markers, `<|im_end|>` being EOS.
    fn tokenizer() -> Tokenizer {
        let mut pieces: Vec<String> = bytes_to_unicode().iter().map(char::to_string).collect();
        pieces.push("<|im_start|>".into());
        pieces.push("<|im_end|>".into());
        Tokenizer::from_parts(TokenizerParts {
            pieces,
            merges: Vec::new(),
            special_ids: vec![IM_START, IM_END],
            pre: PreTokenizerKind::Gpt2,
            bos: None,
            eos: Some(IM_END),
            ignore_merges: false,
        })
        .unwrap()
    }

    /// Logits over the lowercase letters only (every other token, EOS
    /// included, is impossible): all equal, or one letter ahead.
    fn letters(ahead: Option<u8>) -> Vec<f32> {
        let mut l = vec![f32::NEG_INFINITY; VOCAB];
        for b in b'a'..=b'z' {
            l[b as usize] = 0.0;
        }
        if let Some(b) = ahead {
            l[b as usize] = 5.0;
        }
        l
    }

    /// Greedy spells the alphabet: the letter after the last one, or `a`.
    fn alphabet_model() -> FnModel<impl Fn(&[u32]) -> Vec<f32>> {
        FnModel::new(VOCAB, 1, 4096, |toks: &[u32]| {
            let next = match toks.last() {
                Some(&t) if (u32::from(b'a')..u32::from(b'z')).contains(&t) => t as u8 + 1,
                _ => b'a',
            };
            letters(Some(next))
        })
    }

    /// Every letter equally likely, whatever came before.
    fn uniform_model() -> FnModel<impl Fn(&[u32]) -> Vec<f32>> {
        FnModel::new(VOCAB, 1, 4096, |_: &[u32]| letters(None))
    }

    fn session(params: GenerateParams) -> ChatSession {
        let template = ChatTemplate::chatml(None);
        ChatSession::new(template, tokenizer(), Some("Be brief.".into()), params, 0).unwrap()
    }

    fn reply(
        s: &mut ChatSession,
        lm: &mut dyn LanguageModel,
        text: &str,
    ) -> (Generation, TurnStats) {
        s.reply(lm, text, |steps| collect_steps(steps, |_| {}))
            .unwrap()
    }

    fn ids(g: &Generation) -> Vec<u32> {
        g.tokens.iter().map(|t| t.id).collect()
    }

    /// The first `n` messages of the conversation, rendered for the next
    /// reply and tokenized.
    fn rendered(s: &ChatSession, n: usize) -> Vec<u32> {
        tokenizer().encode(&ChatTemplate::chatml(None).render(&s.messages()[..n], true))
    }

    #[test]
    fn turn_two_reuses_the_cache_and_feeds_only_what_is_new() {
        let params = GenerateParams {
            max_new_tokens: 5,
            ..Default::default()
        };
        let mut lm = alphabet_model();
        let mut s = session(params.clone());
        let (g1, st1) = reply(&mut s, &mut lm, "hi");
        assert_eq!(g1.text, "abcde");
        // System prompt and the first question.
        assert_eq!(
            st1,
            TurnStats {
                new_prompt_tokens: rendered(&s, 2).len(),
                cached_tokens: 0
            }
        );
        let fed = lm.tokens_fed;
        let (g2, st2) = reply(&mut s, &mut lm, "and then?");
        // The cache held the first prompt and every reply token but the
        // last (which no step fed); only the rest was fed.
        let turn_one = st1.new_prompt_tokens + g1.tokens.len() - 1;
        assert_eq!(st2.cached_tokens, turn_one);
        assert!(st2.cached_tokens > 0);
        let whole = rendered(&s, 4);
        assert_eq!(st2.cached_tokens + st2.new_prompt_tokens, whole.len());
        assert_eq!(
            lm.tokens_fed - fed,
            st2.new_prompt_tokens + g2.tokens.len() - 1
        );
        // The slot holds exactly the conversation, and the reply is the
        // one a fresh run over the whole conversation gives.
        let g2_ids = ids(&g2);
        let held = [whole.as_slice(), &g2_ids[..g2_ids.len() - 1]].concat();
        assert_eq!(lm.slot_tokens(0), held.as_slice());
        let fresh_params = GenerateParams {
            eos_ids: vec![IM_END],
            ..params
        };
        let fresh = generate(&mut alphabet_model(), &tokenizer(), &whole, &fresh_params).unwrap();
        assert_eq!(ids(&fresh), g2_ids);
    }

    #[test]
    fn each_turn_samples_with_its_own_seed() {
        let params = GenerateParams {
            strategy: Strategy::Sample { seed: 7 },
            max_new_tokens: 8,
            eos_ids: vec![IM_END],
            ..Default::default()
        };
        let mut lm = uniform_model();
        let mut s = session(params.clone());
        let mut replies = Vec::new();
        for (turn, text) in ["one", "two", "three"].into_iter().enumerate() {
            let (g, _) = reply(&mut s, &mut lm, text);
            // Turn i draws as a lone run seeded with seed + i does (the
            // logits do not depend on the prompt).
            let alone = GenerateParams {
                strategy: Strategy::Sample {
                    seed: 7 + turn as u64,
                },
                ..params.clone()
            };
            let want =
                generate(&mut uniform_model(), &tokenizer(), &[b'x'.into()], &alone).unwrap();
            assert_eq!(ids(&g), ids(&want), "turn {turn}");
            replies.push(g.text);
        }
        assert_ne!(replies[0], replies[1]);
        assert_ne!(replies[1], replies[2]);
        // The same seed replays the whole conversation.
        let mut again = session(params);
        let mut lm = uniform_model();
        for (text, want) in ["one", "two", "three"].into_iter().zip(&replies) {
            assert_eq!(&reply(&mut again, &mut lm, text).0.text, want);
        }
    }

    #[test]
    fn a_turn_rendered_differently_from_the_cache_starts_the_cache_over() {
        // The reply stops at "c": the cache holds "abc", but the template
        // renders the turn as "ab", so the next prompt no longer starts
        // with what is cached.
        let params = GenerateParams {
            max_new_tokens: 5,
            stop_strings: vec!["c".into()],
            ..Default::default()
        };
        let mut lm = alphabet_model();
        let mut s = session(params);
        let (g1, _) = reply(&mut s, &mut lm, "hi");
        assert_eq!((g1.text.as_str(), g1.tokens.len()), ("ab", 3));
        assert_eq!(s.messages()[2].content, "ab");
        let fed = lm.tokens_fed;
        let (g2, st2) = reply(&mut s, &mut lm, "more");
        let whole = rendered(&s, 4);
        assert_eq!(st2.cached_tokens, 0);
        assert_eq!(st2.new_prompt_tokens, whole.len());
        assert_eq!(lm.tokens_fed - fed, whole.len() + g2.tokens.len() - 1);
        let g2_ids = ids(&g2);
        let held = [whole.as_slice(), &g2_ids[..g2_ids.len() - 1]].concat();
        assert_eq!(lm.slot_tokens(0), held.as_slice());
    }
}
