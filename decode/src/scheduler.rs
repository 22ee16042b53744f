//! Continuous batching: many requests share one forward pass per step, and
//! requests join and leave the running batch at every step boundary.
//!
//! The [`Scheduler`] owns a model and its KV-cache slots. Each
//! [`Scheduler::step`]:
//!
//! 1. drops cancelled requests, freeing their slots;
//! 2. moves waiting requests into free slots (first come, first served);
//! 3. builds one batch: every running request's next token, plus the next
//!    chunk of each prompt still being read, so a long prompt never stalls
//!    the others for more than one chunk;
//! 4. runs one [`LanguageModel::forward`] on it;
//! 5. turns each finished prompt's or decode step's logits into a token
//!    with that request's own settings (strategy, processors, seed, stop
//!    strings, log-probs), and frees the slot of every request that ended.
//!
//! A prompt is always cut into chunks of exactly `prefill_chunk` tokens
//! (the last may be shorter), whatever else runs, and the engine picks a
//! row's kernel by its own sequence's length, so a request gets the same
//! tokens alone or in a batch of any size.
//!
//! A slot keeps its cache when its request ends, and a new request takes
//! the free slot whose earlier prompt shares the most whole chunks with its
//! own, skipping those tokens ([`crate::prompt_cache`]): the same tokens,
//! read once. A model whose rows do not depend on the chunking at all
//! ([`LanguageModel::chunking_free`]) shares any prefix, its earlier
//! answer included.
//!
//! The waiting queue is bounded: [`Scheduler::submit`] refuses a request
//! when it is full, and never drops one it has accepted.

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::detok::Detokenize;
use crate::error::DecodeError;
use crate::lm::LanguageModel;
use crate::output::StepOutput;
use crate::params::{FinishReason, GenerateParams, Prepared, stream_plan};
use crate::prompt_cache::{SlotMemory, best_slot};
use crate::sequence::SeqState;

/// A request's handle, unique within one scheduler.
pub type RequestId = u64;

/// How a scheduler batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// Most requests that may wait for a slot; more are refused.
    pub max_queue: usize,
    /// Prompt tokens a request feeds per step (prompts are read in chunks
    /// of exactly this size, the last one shorter).
    pub prefill_chunk: usize,
    /// Most prompt tokens per step over all requests; a chunk that does not
    /// fit waits for the next step (one chunk always runs).
    pub prefill_budget: usize,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            max_queue: 64,
            prefill_chunk: 256,
            prefill_budget: 512,
        }
    }
}

/// One generation request: a prompt and its own settings.
#[derive(Debug, Clone)]
pub struct Request {
    /// Prompt token ids (at least one, shorter than the model's context).
    pub prompt: Vec<u32>,
    /// Greedy or sampling settings, stop conditions, log-probs.
    pub params: GenerateParams,
    /// Which random stream of the seed to draw from: 0 for a lone request;
    /// `i` for the `i`-th of several choices of one prompt, as
    /// [`crate::generate_batch`] numbers its sequences.
    pub stream: u64,
}

/// Why [`Scheduler::submit`] refused a request.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The waiting queue is full; try again later.
    #[error("the queue is full ({0} requests waiting); try again later")]
    QueueFull(usize),
    /// The request itself is invalid (parameters, prompt).
    #[error(transparent)]
    Invalid(#[from] DecodeError),
}

/// What happened to a request in one step.
#[derive(Debug)]
pub enum Event {
    /// A new token; its `finish` is set when it is the request's last.
    Token {
        /// The request.
        id: RequestId,
        /// The token, its text delta and log-probs.
        step: StepOutput,
    },
    /// The request ended without a token: cancelled, or the model failed.
    Ended {
        /// The request.
        id: RequestId,
        /// [`FinishReason::Cancelled`], or the error.
        result: Result<FinishReason, DecodeError>,
    },
}

/// A request that holds a slot.
struct Running {
    id: RequestId,
    seq: SeqState,
    plan: Prepared,
    /// Prompt tokens already in the cache.
    fed: usize,
}

/// A request waiting for a slot.
struct Waiting {
    id: RequestId,
    req: Request,
    plan: Prepared,
}

/// Counters since the scheduler started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchedulerStats {
    /// Forward passes run.
    pub steps: u64,
    /// Tokens generated.
    pub generated: u64,
    /// Prompt tokens fed.
    pub prompt_tokens: u64,
    /// Prompt tokens taken from a slot's cache instead of being fed
    /// ([`crate::prompt_cache`]).
    pub reused_tokens: u64,
    /// Requests accepted.
    pub accepted: u64,
    /// Requests refused because the queue was full.
    pub refused: u64,
    /// Requests ended by [`Scheduler::cancel`], running or waiting.
    pub cancelled: u64,
}

/// One entry's token choice, as a task of [`Scheduler::choose`].
struct Choice<'a> {
    slot: usize,
    run: &'a mut Running,
    logits: &'a mut [f32],
    result: Option<Result<StepOutput, DecodeError>>,
}

/// Runs many requests through one model with continuous batching.
pub struct Scheduler<M: LanguageModel, D: Detokenize> {
    model: M,
    detok: D,
    config: SchedulerConfig,
    slots: Vec<Option<Running>>,
    /// What each free slot's cache holds for the next request.
    memory: Vec<SlotMemory>,
    /// The requests that took a slot in the last step, with the prompt
    /// tokens each took from the cache.
    admitted: Vec<(RequestId, usize)>,
    queue: VecDeque<Waiting>,
    cancelled: Vec<RequestId>,
    next_id: RequestId,
    stats: SchedulerStats,
    /// A step's logits, one row per entry
    /// ([`LanguageModel::forward_stacked`]), kept for its allocation.
    logits: Vec<f32>,
}

impl<M: LanguageModel, D: Detokenize> Scheduler<M, D> {
    /// A scheduler over every slot of `model`.
    ///
    /// # Errors
    /// A model without slots, or a zero chunk, budget or queue.
    pub fn new(model: M, detok: D, config: SchedulerConfig) -> Result<Self, DecodeError> {
        if model.num_slots() == 0 {
            return Err(DecodeError::ModelLimit {
                op: "scheduler",
                reason: "the model has no sequence slots".into(),
            });
        }
        for (name, v) in [
            ("max_queue", config.max_queue),
            ("prefill_chunk", config.prefill_chunk),
            ("prefill_budget", config.prefill_budget),
        ] {
            if v == 0 {
                return Err(DecodeError::param(name, 0, "must be >= 1"));
            }
        }
        let slots = (0..model.num_slots()).map(|_| None).collect();
        let memory = vec![SlotMemory::default(); model.num_slots()];
        Ok(Scheduler {
            model,
            detok,
            config,
            slots,
            memory,
            admitted: Vec::new(),
            queue: VecDeque::new(),
            cancelled: Vec::new(),
            next_id: 0,
            stats: SchedulerStats::default(),
            logits: Vec::new(),
        })
    }

    /// Give the model back (its slots as the last step left them).
    pub fn into_model(self) -> M {
        self.model
    }

    /// The model (for its vocabulary, context length, …).
    pub fn model(&self) -> &M {
        &self.model
    }

    /// The detokenizer the text deltas come from.
    pub fn detok(&self) -> &D {
        &self.detok
    }

    /// Counters since the start.
    pub fn stats(&self) -> SchedulerStats {
        self.stats
    }

    /// The requests that took a slot in the last [`Scheduler::step`], each
    /// with the prompt tokens it took from a slot's cache instead of
    /// reading them ([`crate::prompt_cache`]; OpenAI's `cached_tokens`).
    pub fn admitted(&self) -> &[(RequestId, usize)] {
        &self.admitted
    }

    /// Requests holding a slot.
    pub fn running(&self) -> usize {
        self.slots.iter().flatten().count()
    }

    /// Requests waiting for a slot.
    pub fn waiting(&self) -> usize {
        self.queue.len()
    }

    /// How many more requests the queue takes now.
    pub fn queue_room(&self) -> usize {
        self.config.max_queue.saturating_sub(self.queue.len())
    }

    /// True when nothing runs or waits.
    pub fn is_idle(&self) -> bool {
        self.running() == 0 && self.queue.is_empty()
    }

    /// Accept a request, or refuse it: when the queue is full, or when the
    /// request is invalid (a beam strategy, bad parameters, an empty prompt,
    /// a prompt with no room left to generate in the context, an id outside
    /// the vocabulary). An accepted request always ends with an event.
    ///
    /// # Errors
    /// [`SubmitError::QueueFull`] or [`SubmitError::Invalid`].
    pub fn submit(&mut self, req: Request) -> Result<RequestId, SubmitError> {
        let plan = stream_plan(&req.params)?;
        let (n, ctx) = (req.prompt.len(), self.model.max_seq_len());
        if n == 0 {
            return Err(DecodeError::param("prompt", "[]", "needs at least one token").into());
        }
        if n >= ctx {
            return Err(DecodeError::ModelLimit {
                op: "scheduler",
                reason: format!("prompt of {n} tokens leaves no room in a context of {ctx}"),
            }
            .into());
        }
        crate::processor::check_ids("prompt", &req.prompt, self.model.vocab_size())?;
        if self.queue.len() >= self.config.max_queue {
            self.stats.refused += 1;
            return Err(SubmitError::QueueFull(self.queue.len()));
        }
        let id = self.next_id;
        self.next_id += 1;
        self.stats.accepted += 1;
        self.queue.push_back(Waiting { id, req, plan });
        Ok(id)
    }

    /// Ask for a request to end; it leaves at the start of the next step
    /// (with an [`Event::Ended`] of [`FinishReason::Cancelled`]) and its
    /// slot is free for that step's newcomers. Unknown or finished ids are
    /// ignored.
    pub fn cancel(&mut self, id: RequestId) {
        self.cancelled.push(id);
    }

    // ANCHOR: step
    /// Run one step: admit, batch, forward, choose, retire. Returns what
    /// happened to each request this step (nothing when idle).
    pub fn step(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        self.admitted.clear();
        self.retire_cancelled(&mut events);
        self.admit(&mut events);
        // The batch: each running request's feed this step, in slot order.
        let (chunk, budget) = (self.config.prefill_chunk, self.config.prefill_budget);
        let mut feeds: Vec<(usize, Vec<u32>)> = Vec::new();
        let mut prefill = 0;
        for (slot, r) in self.slots.iter().enumerate() {
            let Some(r) = r else { continue };
            let prompt_len = r.seq.prompt_len;
            if r.fed < prompt_len {
                let n = chunk.min(prompt_len - r.fed);
                if prefill > 0 && prefill + n > budget {
                    continue;
                }
                prefill += n;
                feeds.push((slot, r.seq.tokens[r.fed..r.fed + n].to_vec()));
            } else {
                feeds.push((slot, vec![*r.seq.tokens.last().unwrap_or(&0)]));
            }
        }
        if feeds.is_empty() {
            return events;
        }
        let batch: Vec<(usize, &[u32])> = feeds.iter().map(|(s, f)| (*s, f.as_slice())).collect();
        self.stats.steps += 1;
        // The rows stay where the model left them; each entry's choice
        // works on its own row in place.
        let mut stacked = std::mem::take(&mut self.logits);
        let vocab = self.model.vocab_size();
        let failed = match self.model.forward_stacked(&batch, &mut stacked) {
            Ok(()) if stacked.len() == batch.len() * vocab => None,
            Ok(()) => Some(format!(
                "model returned {} logits for {} rows of {vocab}",
                stacked.len(),
                batch.len()
            )),
            Err(e) => Some(e.to_string()),
        };
        if let Some(reason) = failed {
            self.logits = stacked;
            self.fail(&feeds, &reason, &mut events);
            return events;
        }
        // The entries that choose a token this step: decode steps, and
        // prompts whose last chunk was just read.
        let mut ready = Vec::new();
        for ((slot, fed), logits) in feeds.iter().zip(stacked.chunks_mut(vocab.max(1))) {
            let Some(r) = self.slots[*slot].as_mut() else {
                continue;
            };
            if r.fed < r.seq.prompt_len {
                r.fed += fed.len();
                self.stats.prompt_tokens += fed.len() as u64;
                if r.fed < r.seq.prompt_len {
                    continue;
                }
            }
            ready.push((*slot, logits));
        }
        let chosen = self.choose(ready);
        self.logits = stacked;
        for (slot, result) in chosen {
            let Some(id) = self.slots[slot].as_ref().map(|r| r.id) else {
                continue;
            };
            match result {
                Ok(step) => {
                    self.stats.generated += 1;
                    let done = step.finish.is_some();
                    events.push(Event::Token { id, step });
                    if done {
                        self.free(slot);
                    }
                }
                Err(e) => {
                    events.push(Event::Ended { id, result: Err(e) });
                    self.free(slot);
                }
            }
        }
        events
    }
    // ANCHOR_END: step

    // ANCHOR: choose
    /// Each ready entry's next token (`ready`: slots in order, each with its
    /// logits), on the model's threads when there are several: a sequence's
    /// choice depends only on its own logits, settings and random stream,
    /// so running them at once changes no token.
    fn choose(
        &mut self,
        ready: Vec<(usize, &mut [f32])>,
    ) -> Vec<(usize, Result<StepOutput, DecodeError>)> {
        let max_len = self.model.max_seq_len();
        let detok = &self.detok;
        // One cell per entry, each locked by the one task that owns it.
        let mut ready = ready.into_iter().peekable();
        let mut jobs = Vec::new();
        for (slot, r) in self.slots.iter_mut().enumerate() {
            if ready.peek().is_some_and(|(s, _)| *s == slot)
                && let (Some(run), Some((_, logits))) = (r.as_mut(), ready.next())
            {
                jobs.push(Mutex::new(Choice {
                    slot,
                    run,
                    logits,
                    result: None,
                }));
            }
        }
        let choose_one = |i: usize| {
            let mut job = jobs[i].lock().unwrap_or_else(|e| e.into_inner());
            let job = &mut *job;
            // Every row is `vocab` long: `step` checked the stacked length.
            job.result = Some(job.run.seq.step(job.logits, &job.run.plan, detok, max_len));
        };
        self.model.for_each_task(jobs.len(), &choose_one);
        jobs.into_iter()
            .filter_map(|j| {
                let j = j.into_inner().unwrap_or_else(|e| e.into_inner());
                Some((j.slot, j.result?))
            })
            .collect()
    }
    // ANCHOR_END: choose

    /// Step until every request has ended, collecting the events.
    pub fn run_to_completion(&mut self) -> Vec<Event> {
        let mut all = Vec::new();
        while !self.is_idle() {
            all.extend(self.step());
        }
        all
    }

    fn retire_cancelled(&mut self, events: &mut Vec<Event>) {
        if self.cancelled.is_empty() {
            return;
        }
        let cancelled = std::mem::take(&mut self.cancelled);
        let ended = |id| Event::Ended {
            id,
            result: Ok(FinishReason::Cancelled),
        };
        for slot in 0..self.slots.len() {
            if let Some(r) = &self.slots[slot]
                && cancelled.contains(&r.id)
            {
                events.push(ended(r.id));
                self.stats.cancelled += 1;
                self.free(slot);
            }
        }
        let stats = &mut self.stats;
        self.queue.retain(|w| {
            let keep = !cancelled.contains(&w.id);
            if !keep {
                events.push(ended(w.id));
                stats.cancelled += 1;
            }
            keep
        });
    }

    // ANCHOR: admit
    fn admit(&mut self, events: &mut Vec<Event>) {
        while self.slots.iter().any(Option::is_none) {
            let w = loop {
                match self.queue.pop_front() {
                    None => return,
                    // Nothing to generate: it ends at once, as a Generator
                    // with `max_new_tokens == 0` yields nothing.
                    Some(w) if w.req.params.max_new_tokens == 0 => events.push(Event::Ended {
                        id: w.id,
                        result: Ok(FinishReason::MaxNewTokens),
                    }),
                    Some(w) => break w,
                }
            };
            let unit = self.reuse_unit();
            let free = (0..self.slots.len())
                .filter(|&s| self.slots[s].is_none())
                .map(|s| (s, &self.memory[s], self.model.intact_len(s)));
            let Some((slot, mut reuse)) = best_slot(free, &w.req.prompt, unit) else {
                return;
            };
            if reuse == 0 || self.model.truncate(slot, reuse).is_err() {
                self.model.clear(slot);
                reuse = 0;
            }
            self.stats.reused_tokens += reuse as u64;
            self.admitted.push((w.id, reuse));
            self.slots[slot] = Some(Running {
                id: w.id,
                seq: SeqState::new(slot, &w.req.prompt, random_stream(&w.req, slot), &w.plan),
                plan: w.plan,
                fed: reuse,
            });
        }
    }
    // ANCHOR_END: admit

    /// End the request in `slot`; its cache stays for a later request
    /// with the same prompt prefix.
    fn free(&mut self, slot: usize) {
        if let Some(r) = self.slots[slot].take() {
            self.memory[slot] = if self.model.chunking_free() {
                // Every row the cache holds, the generated tokens' too, is
                // the row a later request would compute for the same
                // tokens, however it reads them: keep them all (a chat's
                // next turn resends this answer).
                let held = self.model.seq_len(slot).min(r.seq.tokens.len());
                SlotMemory::of_request(&r.seq.tokens[..held], held, 1)
            } else {
                let prompt = &r.seq.tokens[..r.seq.prompt_len];
                SlotMemory::of_request(prompt, r.fed, self.config.prefill_chunk)
            };
        }
    }

    /// What a reused prefix is cut to: any number of tokens when the
    /// model's rows do not depend on how their sequence was cut into
    /// forward calls ([`LanguageModel::chunking_free`]), else whole
    /// prefill chunks.
    fn reuse_unit(&self) -> usize {
        if self.model.chunking_free() {
            1
        } else {
            self.config.prefill_chunk
        }
    }

    fn fail(&mut self, feeds: &[(usize, Vec<u32>)], reason: &str, events: &mut Vec<Event>) {
        for (slot, _) in feeds {
            if let Some(r) = &self.slots[*slot] {
                events.push(Event::Ended {
                    id: r.id,
                    result: Err(DecodeError::ModelLimit {
                        op: "scheduler",
                        reason: reason.to_string(),
                    }),
                });
                self.slots[*slot] = None;
            }
            // After a failed step the cache may hold part of it: forget it.
            self.memory[*slot] = SlotMemory::default();
            self.model.clear(*slot);
        }
    }
}

/// The random stream a request draws from in `slot`: the request's own,
/// never the slot's, so a request draws the same tokens in whatever slot it
/// lands.
fn random_stream(req: &Request, slot: usize) -> u64 {
    #[cfg(not(feature = "mutant-scheduler-slot-stream"))]
    let stream = {
        let _ = slot;
        req.stream
    };
    #[cfg(feature = "mutant-scheduler-slot-stream")]
    let stream = {
        let _ = req;
        slot as u64
    };
    stream
}
