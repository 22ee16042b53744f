//! Token-by-token generation (greedy or sampling): streaming, stop
//! conditions, per-token output, and batched generation of several prompts.

use crate::beam::BeamParams;
use crate::chain::{LogitsChain, SamplingParams};
use crate::detok::{Detokenize, Utf8Stream};
use crate::error::DecodeError;
use crate::explain::ExplainStep;
use crate::greedy::greedy_choice;
use crate::lm::LanguageModel;
use crate::probs::{log_softmax, top_n};
use crate::processor::TokenHistory;
use crate::sample::{sample_from_logits, seeded_rng};
use crate::stop::StopMatcher;
use rand_chacha::ChaCha20Rng;

/// How the next token is chosen.
#[derive(Debug, Clone)]
pub enum Strategy {
    /// Always the most likely token (after the penalties).
    Greedy,
    /// Draw from the processed distribution with a ChaCha RNG seeded by `seed`.
    Sample {
        /// RNG seed; the same seed gives the same tokens on every platform.
        seed: u64,
    },
    /// Beam search (see [`crate::beam`]); run it with [`crate::beam_search`].
    Beam(BeamParams),
}

/// Everything a generation run needs besides the model and the prompt.
#[derive(Debug, Clone)]
pub struct GenerateParams {
    /// Greedy, sampling or beam.
    pub strategy: Strategy,
    /// The logits pipeline. With [`Strategy::Sample`] and `temperature == 0`
    /// the run is greedy (explicitly, not by dividing by zero).
    pub sampling: SamplingParams,
    /// Stop after this many generated tokens.
    pub max_new_tokens: usize,
    /// Tokens that end generation (they are kept in the token list, never in the text).
    pub eos_ids: Vec<u32>,
    /// Strings that end generation when they appear in the decoded text;
    /// the stop string and anything after it are not emitted.
    pub stop_strings: Vec<String>,
    /// Report this many most likely alternatives (with log-probs) per token.
    pub top_logprobs: usize,
    /// Record an explain table per step with this many leading candidates (0 = off).
    pub explain_top: usize,
}

impl Default for GenerateParams {
    fn default() -> Self {
        GenerateParams {
            strategy: Strategy::Greedy,
            sampling: SamplingParams::default(),
            max_new_tokens: 32,
            eos_ids: Vec::new(),
            stop_strings: Vec::new(),
            top_logprobs: 0,
            explain_top: 0,
        }
    }
}

/// Why generation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinishReason {
    /// `max_new_tokens` were generated.
    MaxNewTokens,
    /// An end-of-sequence token was chosen.
    Eos(u32),
    /// A stop string appeared in the text.
    StopString(String),
    /// The model's context (`max_seq_len`) is full.
    ContextFull,
}

/// One generated token.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenOutput {
    /// Token id.
    pub id: u32,
    /// The token's own text (lossy UTF-8 of its bytes; empty for EOS).
    pub text: String,
    /// Log-probability of the token under the distribution it was chosen
    /// from (after every processor).
    pub logprob: f32,
    /// The most likely alternatives `(id, log-prob)`, best first.
    pub top: Vec<(u32, f32)>,
}

/// What one step of a [`Generator`] produced.
#[derive(Debug, Clone)]
pub struct StepOutput {
    /// The token chosen at this step.
    pub token: TokenOutput,
    /// New text that is safe to show (may be empty while a stop string or
    /// a multi-byte character is pending).
    pub delta: String,
    /// The explain table, when asked for.
    pub explain: Option<ExplainStep>,
    /// Set on the last step.
    pub finish: Option<FinishReason>,
}

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

/// The per-sequence state of a greedy or sampling run.
struct SeqState {
    slot: usize,
    tokens: Vec<u32>,
    prompt_len: usize,
    rng: Option<ChaCha20Rng>,
    utf8: Utf8Stream,
    stop: StopMatcher,
    finished: bool,
}

/// Validated, prepared parameters shared by all sequences of a run.
struct Prepared {
    chain: LogitsChain,
    greedy: bool,
    seed: u64,
    params: GenerateParams,
}

fn prepare(params: &GenerateParams) -> Result<Prepared, DecodeError> {
    let (greedy, seed) = match params.strategy {
        Strategy::Greedy => (true, 0),
        // ANCHOR: temperature_zero
        Strategy::Sample { seed } if params.sampling.temperature == 0.0 => (true, seed),
        // ANCHOR_END: temperature_zero
        Strategy::Sample { seed } => (false, seed),
        Strategy::Beam(_) => {
            return Err(DecodeError::param(
                "strategy",
                "beam",
                "token-by-token generation is greedy or sampling; call beam_search for beams",
            ));
        }
    };
    let mut sampling = params.sampling.clone();
    if greedy {
        sampling.temperature = 1.0;
    }
    let chain = sampling.build_chain(&params.eos_ids, !greedy)?;
    Ok(Prepared {
        chain,
        greedy,
        seed,
        params: params.clone(),
    })
}

impl SeqState {
    fn new(slot: usize, prompt: &[u32], stream: u64, prep: &Prepared) -> Self {
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

    fn generated(&self) -> usize {
        self.tokens.len() - self.prompt_len
    }

    /// Choose the next token from `logits` and update the text state.
    fn step(
        &mut self,
        mut logits: Vec<f32>,
        prep: &Prepared,
        detok: &dyn Detokenize,
        max_seq_len: usize,
    ) -> Result<StepOutput, DecodeError> {
        let hist = TokenHistory::new(&self.tokens, self.prompt_len);
        let p = &prep.params;
        let trace = if p.explain_top > 0 {
            Some(prep.chain.apply_traced(&hist, &mut logits)?)
        } else {
            prep.chain.apply(&hist, &mut logits)?;
            None
        };
        let id = match self.rng.as_mut() {
            None => greedy_choice(&logits),
            Some(rng) => sample_from_logits(&logits, rng),
        };
        let logp = log_softmax(&logits);
        let top = top_n(&logp, p.top_logprobs)
            .into_iter()
            .filter(|&i| logp[i].is_finite())
            .map(|i| (i as u32, logp[i]))
            .collect();
        let text_of = |t: u32| String::from_utf8_lossy(detok.token_bytes(t)).into_owned();
        let explain = trace
            .map(|tr| ExplainStep::from_trace(self.generated(), &tr, id, p.explain_top, text_of));
        self.tokens.push(id);
        let is_eos = p.eos_ids.contains(&id);
        let token = TokenOutput {
            id,
            text: if is_eos { String::new() } else { text_of(id) },
            logprob: logp[id as usize],
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
        let prep = prepare(params)?;
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
        let mut out = self
            .model
            .forward(&[(self.seq.slot, &feed)])
            .map_err(DecodeError::model("generate"))?;
        let logits = out.pop().ok_or_else(|| DecodeError::ModelLimit {
            op: "generate",
            reason: "model returned no logits".into(),
        })?;
        check_len(&logits, self.model.vocab_size())?;
        let max_len = self.model.max_seq_len();
        self.seq.step(logits, &self.prep, self.detok, max_len)
    }
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
    let prep = prepare(params)?;
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
        for (&i, logits) in active.iter().zip(outs) {
            check_len(&logits, model.vocab_size())?;
            let step = seqs[i].step(logits, &prep, detok, max_len)?;
            let g = &mut results[i];
            g.text.push_str(&step.delta);
            g.tokens.push(step.token);
            g.explain.extend(step.explain);
            g.finish = step.finish;
        }
    }
}
