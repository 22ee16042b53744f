//! The state of one greedy or sampling sequence: its tokens, its random
//! stream, its text so far and its stop strings, and the step that turns
//! one row of logits into a token. [`crate::Generator`], batched
//! generation and the [`crate::batch`] scheduler all drive it.

use crate::detok::{Detokenize, Utf8Stream};
use crate::error::DecodeError;
use crate::explain::ExplainStep;
use crate::greedy::greedy_choice;
use crate::output::{StepOutput, TokenOutput};
use crate::params::{FinishReason, Prepared};
use crate::probs::{log_softmax, log_sum_exp, top_n};
use crate::processor::TokenHistory;
use crate::sample::{sample_with_logprob, seeded_rng};
use crate::stop::StopMatcher;
use rand_chacha::ChaCha20Rng;

/// The per-sequence state of a greedy or sampling run.
pub(crate) struct SeqState {
    pub(crate) slot: usize,
    pub(crate) tokens: Vec<u32>,
    pub(crate) prompt_len: usize,
    pub(crate) rng: Option<ChaCha20Rng>,
    pub(crate) utf8: Utf8Stream,
    pub(crate) stop: StopMatcher,
    pub(crate) finished: bool,
}

impl SeqState {
    pub(crate) fn new(slot: usize, prompt: &[u32], stream: u64, prep: &Prepared) -> Self {
        SeqState {
            slot,
            tokens: prompt.to_vec(),
            prompt_len: prompt.len(),
            rng: (!prep.greedy).then(|| seeded_rng(prep.seed, stream)),
            utf8: Utf8Stream::new(),
            stop: StopMatcher::new(&prep.params.stop_strings),
            finished: false,
        }
    }

    pub(crate) fn generated(&self) -> usize {
        self.tokens.len() - self.prompt_len
    }

    // ANCHOR: step
    /// Choose the next token from `logits` and update the text state.
    pub(crate) fn step(
        &mut self,
        logits: &mut [f32],
        prep: &Prepared,
        detok: &dyn Detokenize,
        max_seq_len: usize,
    ) -> Result<StepOutput, DecodeError> {
        let hist = TokenHistory::new(&self.tokens, self.prompt_len);
        let p = &prep.params;
        let trace = if p.explain_top > 0 {
            Some(prep.chain.apply_traced(&hist, logits)?)
        } else {
            prep.chain.apply(&hist, logits)?;
            None
        };
        // The chosen token's log-probability always (a draw gets it from
        // its own exponentials); the whole vector only when alternatives
        // were asked for (it is 49k floats for SmolLM2).
        let (id, logprob) = match self.rng.as_mut() {
            None => {
                let id = greedy_choice(logits);
                (id, logits[id as usize] - log_sum_exp(logits))
            }
            Some(rng) => sample_with_logprob(logits, rng),
        };
        let top = if p.top_logprobs == 0 {
            Vec::new()
        } else {
            let logp = log_softmax(logits);
            top_n(&logp, p.top_logprobs)
                .into_iter()
                .filter(|&i| logp[i].is_finite())
                .map(|i| (i as u32, logp[i]))
                .collect()
        };
        let text_of = |t: u32| String::from_utf8_lossy(detok.token_bytes(t)).into_owned();
        let explain = trace
            .map(|tr| ExplainStep::from_trace(self.generated(), &tr, id, p.explain_top, text_of));
        self.take((id, logprob), top, explain, prep, detok, max_seq_len)
    }
    // ANCHOR_END: step

    /// True when this sequence's next token may be chosen where the model
    /// keeps its logits ([`crate::LanguageModel::forward_greedy`]): greedy,
    /// nothing that changes or reports the logits (processors, top
    /// log-probabilities, explain tables).
    pub(crate) fn greedy_in_model(&self, prep: &Prepared) -> bool {
        self.rng.is_none()
            && prep.chain.is_empty()
            && prep.params.top_logprobs == 0
            && prep.params.explain_top == 0
    }

    /// [`SeqState::step`] for a token the model chose greedily itself, with
    /// its log-probability (NaN when the logits held NaN or `+inf`, which
    /// is refused as the logits check refuses it).
    pub(crate) fn step_chosen(
        &mut self,
        (id, logprob): (u32, f32),
        prep: &Prepared,
        detok: &dyn Detokenize,
        max_seq_len: usize,
    ) -> Result<StepOutput, DecodeError> {
        if logprob.is_nan() {
            return Err(DecodeError::InvalidLogit {
                op: "greedy choice on the model's device",
                index: id as usize,
                value: logprob,
            });
        }
        self.take((id, logprob), Vec::new(), None, prep, detok, max_seq_len)
    }

    // ANCHOR: take
    /// Append the chosen token and update the text, the stop strings and
    /// the finish reason.
    fn take(
        &mut self,
        (id, logprob): (u32, f32),
        top: Vec<(u32, f32)>,
        explain: Option<ExplainStep>,
        prep: &Prepared,
        detok: &dyn Detokenize,
        max_seq_len: usize,
    ) -> Result<StepOutput, DecodeError> {
        let p = &prep.params;
        let text_of = |t: u32| String::from_utf8_lossy(detok.token_bytes(t)).into_owned();
        self.tokens.push(id);
        let is_eos = p.eos_ids.contains(&id);
        let token = TokenOutput {
            id,
            text: if is_eos { String::new() } else { text_of(id) },
            logprob,
            top,
        };
        let mut finish = None;
        let mut delta = String::new();
        if is_eos {
            finish = Some(FinishReason::Eos(id));
        } else {
            let text = self.utf8.push(detok.token_bytes(id));
            let check = self.stop.push(&text);
            delta = check.emit;
            if let Some(s) = check.stopped {
                finish = Some(FinishReason::StopString(s));
            }
        }
        if finish.is_none() && self.generated() >= p.max_new_tokens {
            finish = Some(FinishReason::MaxNewTokens);
        }
        if finish.is_none() && self.tokens.len() >= max_seq_len {
            finish = Some(FinishReason::ContextFull);
        }
        if let Some(f) = &finish {
            if !matches!(f, FinishReason::StopString(_)) {
                let tail = self.utf8.finish();
                let check = self.stop.push(&tail);
                delta.push_str(&check.emit);
                if check.stopped.is_none() {
                    delta.push_str(&self.stop.finish());
                }
            }
            self.finished = true;
        }
        Ok(StepOutput {
            token,
            delta,
            explain,
            finish,
        })
    }
    // ANCHOR_END: take
}
