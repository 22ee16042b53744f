//! Token-by-token generation (greedy or sampling): streaming, stop
//! conditions, per-token output, and batched generation of several prompts.

use crate::detok::Detokenize;
use crate::error::DecodeError;
use crate::explain::ExplainStep;
use crate::lm::LanguageModel;
use crate::output::{StepOutput, TokenOutput};
use crate::params::{FinishReason, GenerateParams, Prepared, stream_plan};
use crate::sequence::SeqState;

/// A finished generation.
#[derive(Debug, Clone)]
pub struct Generation {
    /// Generated tokens (EOS included when it ended the run).
    pub tokens: Vec<TokenOutput>,
    /// Generated text, stop string excluded.
    pub text: String,
    /// Why it ended (`None` only when `max_new_tokens == 0`).
    pub finish: Option<FinishReason>,
    /// Explain tables, when asked for.
    pub explain: Vec<ExplainStep>,
}

impl AsRef<Generation> for Generation {
    fn as_ref(&self) -> &Generation {
        self
    }
}

/// A streaming, single-sequence generator: an iterator of [`StepOutput`]s
/// (one per token; concatenating the `delta`s gives the text).
pub struct Generator<'a, M: LanguageModel + ?Sized> {
    model: &'a mut M,
    detok: &'a dyn Detokenize,
    prep: Prepared,
    seq: SeqState,
    started: bool,
    resume: bool,
}

impl<'a, M: LanguageModel + ?Sized> Generator<'a, M> {
    /// Start generating from `prompt` in `slot` of `model` (the slot is
    /// cleared first). Nothing runs until the first call to `next`.
    pub fn new(
        model: &'a mut M,
        detok: &'a dyn Detokenize,
        slot: usize,
        prompt: &[u32],
        params: &GenerateParams,
    ) -> Result<Self, DecodeError> {
        check_prompt(&*model, prompt, slot)?;
        let prep = stream_plan(params)?;
        let seq = SeqState::new(slot, prompt, 0, &prep);
        Ok(Generator {
            model,
            detok,
            prep,
            seq,
            started: false,
            resume: false,
        })
    }

    /// Continue in a slot that already caches a prefix of `context` (a chat
    /// turn, say): only the part of `context` beyond `model.seq_len(slot)`
    /// is fed, and it must be non-empty. Penalties see all of `context` as
    /// the prompt.
    pub fn resume(
        model: &'a mut M,
        detok: &'a dyn Detokenize,
        slot: usize,
        context: &[u32],
        params: &GenerateParams,
    ) -> Result<Self, DecodeError> {
        check_prompt(&*model, context, slot)?;
        if model.seq_len(slot) >= context.len() {
            return Err(DecodeError::ModelLimit {
                op: "generate resume",
                reason: format!(
                    "slot {slot} already holds {} tokens; the context has {}, so nothing new to feed",
                    model.seq_len(slot),
                    context.len()
                ),
            });
        }
        let mut g = Generator::new(model, detok, slot, context, params)?;
        g.resume = true;
        Ok(g)
    }

    // ANCHOR: advance
    /// One step: feed the prompt (first call) or the last token, then turn
    /// the logits into the next token.
    fn advance(&mut self) -> Result<StepOutput, DecodeError> {
        let feed: Vec<u32> = if self.started {
            vec![*self.seq.tokens.last().unwrap_or(&0)]
        } else {
            let cached = if self.resume {
                self.model.seq_len(self.seq.slot)
            } else {
                self.model.clear(self.seq.slot);
                0
            };
            self.started = true;
            self.seq.tokens[cached..].to_vec()
        };
        let max_len = self.model.max_seq_len();
        let batch = [(self.seq.slot, feed.as_slice())];
        if self.seq.greedy_in_model(&self.prep) {
            let chosen = self
                .model
                .forward_greedy(&batch)
                .map_err(DecodeError::model("generate"))?;
            if let Some(&c) = chosen.as_ref().and_then(|c| c.first()) {
                return self.seq.step_chosen(c, &self.prep, self.detok, max_len);
            }
            if chosen.is_some() {
                return Err(DecodeError::ModelLimit {
                    op: "generate",
                    reason: "model returned no greedy choice".into(),
                });
            }
        }
        let mut out = self
            .model
            .forward(&batch)
            .map_err(DecodeError::model("generate"))?;
        let mut logits = out.pop().ok_or_else(|| DecodeError::ModelLimit {
            op: "generate",
            reason: "model returned no logits".into(),
        })?;
        check_len(&logits, self.model.vocab_size())?;
        self.seq.step(&mut logits, &self.prep, self.detok, max_len)
    }
    // ANCHOR_END: advance
}

impl<M: LanguageModel + ?Sized> Iterator for Generator<'_, M> {
    type Item = Result<StepOutput, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.seq.finished || self.prep.params.max_new_tokens == 0 {
            return None;
        }
        let r = self.advance();
        if r.is_err() {
            self.seq.finished = true;
        }
        Some(r)
    }
}

fn check_prompt<M: LanguageModel + ?Sized>(
    model: &M,
    prompt: &[u32],
    slot: usize,
) -> Result<(), DecodeError> {
    if prompt.is_empty() {
        return Err(DecodeError::param(
            "prompt",
            "[]",
            "needs at least one token",
        ));
    }
    if slot >= model.num_slots() {
        return Err(DecodeError::ModelLimit {
            op: "generate",
            reason: format!("slot {slot} but the model has {} slots", model.num_slots()),
        });
    }
    if prompt.len() >= model.max_seq_len() {
        return Err(DecodeError::ModelLimit {
            op: "generate",
            reason: format!(
                "prompt of {} tokens leaves no room in a context of {}",
                prompt.len(),
                model.max_seq_len()
            ),
        });
    }
    crate::processor::check_ids("prompt", prompt, model.vocab_size())
}

fn check_len(logits: &[f32], vocab: usize) -> Result<(), DecodeError> {
    if logits.len() != vocab {
        return Err(DecodeError::LengthMismatch {
            op: "generate",
            got: logits.len(),
            expected: vocab,
        });
    }
    Ok(())
}

/// Collect a stream of steps into a [`Generation`], calling `on_delta`
/// with each non-empty text delta as it arrives.
pub fn collect_steps(
    steps: impl Iterator<Item = Result<StepOutput, DecodeError>>,
    mut on_delta: impl FnMut(&str),
) -> Result<Generation, DecodeError> {
    let mut g = Generation {
        tokens: Vec::new(),
        text: String::new(),
        finish: None,
        explain: Vec::new(),
    };
    for step in steps {
        let step = step?;
        if !step.delta.is_empty() {
            on_delta(&step.delta);
        }
        g.text.push_str(&step.delta);
        g.tokens.push(step.token);
        g.explain.extend(step.explain);
        g.finish = step.finish;
    }
    Ok(g)
}

/// Generate from one prompt in slot 0 and return the whole result.
pub fn generate<M: LanguageModel + ?Sized>(
    model: &mut M,
    detok: &dyn Detokenize,
    prompt: &[u32],
    params: &GenerateParams,
) -> Result<Generation, DecodeError> {
    collect_steps(Generator::new(model, detok, 0, prompt, params)?, |_| {})
}

/// Generate from several prompts at once: prompt `i` runs in slot `i`, and
/// each step sends every unfinished sequence to the model in one
/// [`LanguageModel::forward`] call. With sampling, sequence `i` uses
/// stream `i` of the seed, so sequence 0 equals a single [`generate`] run.
pub fn generate_batch<M: LanguageModel + ?Sized>(
    model: &mut M,
    detok: &dyn Detokenize,
    prompts: &[Vec<u32>],
    params: &GenerateParams,
) -> Result<Vec<Generation>, DecodeError> {
    if prompts.len() > model.num_slots() {
        return Err(DecodeError::ModelLimit {
            op: "generate_batch",
            reason: format!(
                "{} prompts but the model has {} slots",
                prompts.len(),
                model.num_slots()
            ),
        });
    }
    let prep = stream_plan(params)?;
    let mut seqs = Vec::with_capacity(prompts.len());
    for (i, p) in prompts.iter().enumerate() {
        check_prompt(&*model, p, i)?;
        model.clear(i);
        seqs.push(SeqState::new(i, p, i as u64, &prep));
    }
    let mut results: Vec<Generation> = (0..prompts.len())
        .map(|_| Generation {
            tokens: Vec::new(),
            text: String::new(),
            finish: None,
            explain: Vec::new(),
        })
        .collect();
    if params.max_new_tokens == 0 {
        return Ok(results);
    }
    let mut first = true;
    loop {
        let active: Vec<usize> = (0..seqs.len()).filter(|&i| !seqs[i].finished).collect();
        if active.is_empty() {
            return Ok(results);
        }
        let feeds: Vec<Vec<u32>> = active
            .iter()
            .map(|&i| {
                let s = &seqs[i];
                if first {
                    s.tokens.clone()
                } else {
                    vec![*s.tokens.last().unwrap_or(&0)]
                }
            })
            .collect();
        first = false;
        let batch: Vec<(usize, &[u32])> = active
            .iter()
            .zip(&feeds)
            .map(|(&i, f)| (seqs[i].slot, f.as_slice()))
            .collect();
        let outs = model
            .forward(&batch)
            .map_err(DecodeError::model("generate_batch"))?;
        if outs.len() != active.len() {
            return Err(DecodeError::ModelLimit {
                op: "generate_batch",
                reason: format!(
                    "model returned {} rows for {} sequences",
                    outs.len(),
                    active.len()
                ),
            });
        }
        let max_len = model.max_seq_len();
        for (&i, mut logits) in active.iter().zip(outs) {
            check_len(&logits, model.vocab_size())?;
            let step = seqs[i].step(&mut logits, &prep, detok, max_len)?;
            let g = &mut results[i];
            g.text.push_str(&step.delta);
            g.tokens.push(step.token);
            g.explain.extend(step.explain);
            g.finish = step.finish;
        }
    }
}
