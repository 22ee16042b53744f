//! The engine thread: it loads the model, owns the [`Scheduler`], and
//! steps it while any request runs. HTTP handlers talk to it through a
//! channel of [`Command`]s; each request's events come back on its own
//! channel. A handler that goes away (a client that disconnected) closes
//! its channel, and the engine cancels its requests before the next step.
//!
//! A step's events for all its requests cross to the HTTP runtime as one
//! message, which a task there (`deliver`) hands to each request's
//! channel. Sent one by one from this thread, each event woke the
//! runtime's thread again: on two cores it took the engine's core from it
//! about seven times a step, with a context switch each way, while the
//! engine's other thread waited (`infer serve` at eight streaming clients:
//! 12,216 involuntary switches of the engine thread in 1,804 steps).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, anyhow};
use axum::http::StatusCode;
use decode::{Event, LanguageModel, Request, RequestId, Scheduler, SchedulerConfig, SubmitError};
use model::chat_template::ChatTemplate;
use model::gguf::GgufFile;
use model::tokenizer::Tokenizer;
use tokio::sync::{mpsc, oneshot};

use super::error::ApiError;
use crate::loader::{ModelArgs, load};

/// The scheduler the engine thread owns.
type Engine = Scheduler<Box<dyn LanguageModel>, Tokenizer>;

/// An event for choice `.0` of a submission.
pub type ChoiceEvent = (usize, Event);

/// Per choice of a submission, the prompt tokens it took from the server's
/// prompt cache (set by the engine when the choice gets a slot, before any
/// of its events is sent).
pub type CachedTokens = Arc<Vec<AtomicUsize>>;

/// What handlers send to the engine thread.
pub enum Command {
    /// Run these requests (choice `i` is `requests[i]`); answer on `reply`
    /// whether they were accepted, then send their events on `events`.
    Submit {
        /// One request per choice.
        requests: Vec<Request>,
        /// Where the choices' events go.
        events: mpsc::UnboundedSender<ChoiceEvent>,
        /// Where the engine notes each choice's cached prompt tokens.
        cached: CachedTokens,
        /// Accepted, or why not.
        reply: oneshot::Sender<Result<(), ApiError>>,
    },
}

/// What the handlers know about the model.
pub struct ModelInfo {
    /// The name `/v1/models` lists (the file's stem).
    pub name: String,
    /// The tokenizer (prompts are tokenized in the handlers).
    pub tokenizer: Tokenizer,
    /// The chat template.
    pub template: ChatTemplate,
    /// End-of-sequence ids.
    pub eos_ids: Vec<u32>,
    /// Vocabulary size.
    pub vocab: usize,
    /// Positions per sequence.
    pub ctx: usize,
    /// Sequence slots (the most requests decoding at once).
    pub slots: usize,
}

/// Live counters for `/health`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Load {
    /// Requests holding a slot.
    pub running: usize,
    /// Requests waiting for one.
    pub waiting: usize,
    /// Forward passes so far.
    pub steps: u64,
    /// Tokens generated so far.
    pub generated: u64,
    /// Prompt tokens read so far.
    pub prompt_tokens: u64,
    /// Prompt tokens taken from a slot's cache instead (prompt caching).
    pub cached_prompt_tokens: u64,
    /// Requests cancelled so far (their clients went away).
    pub cancelled: u64,
}

/// The handlers' side of the engine thread.
#[derive(Clone)]
pub struct EngineHandle {
    tx: std_mpsc::Sender<Command>,
    load: Arc<Mutex<Load>>,
    /// Most requests the scheduler's queue holds.
    max_queue: usize,
}

impl EngineHandle {
    /// Submit a group of requests and get their events' receiver.
    ///
    /// # Errors
    /// A full queue (503), an invalid request (400), more requests than
    /// the whole queue holds (400: waiting would never help), or a stopped
    /// engine.
    pub async fn submit(
        &self,
        requests: Vec<Request>,
    ) -> Result<(mpsc::UnboundedReceiver<ChoiceEvent>, CachedTokens), ApiError> {
        if requests.len() > self.max_queue {
            return Err(ApiError::invalid(
                Some("n"),
                format!(
                    "the request needs {} sequences (prompts × n), more than this server's queue \
                     ever holds ({}); send fewer prompts or a smaller n",
                    requests.len(),
                    self.max_queue
                ),
            ));
        }
        let (events, rx) = mpsc::unbounded_channel();
        let cached: CachedTokens = Arc::new(requests.iter().map(|_| AtomicUsize::new(0)).collect());
        let (reply, answer) = oneshot::channel();
        let gone = || {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                "the engine has stopped",
            )
        };
        self.tx
            .send(Command::Submit {
                requests,
                events,
                cached: cached.clone(),
                reply,
            })
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())??;
        Ok((rx, cached))
    }

    /// The current counters.
    pub fn load(&self) -> Load {
        self.load.lock().map(|l| *l).unwrap_or_default()
    }
}

/// One step's events, each with the channel of the request it belongs to.
type Delivery = Vec<(mpsc::UnboundedSender<ChoiceEvent>, ChoiceEvent)>;

/// Hand each step's events to their requests' channels, on the HTTP
/// runtime, until the engine thread stops. A request whose handler has
/// gone drops its event here; the engine sees its channel closed and
/// cancels it before the next step.
async fn deliver(mut post: mpsc::UnboundedReceiver<Delivery>) {
    while let Some(step) = post.recv().await {
        for (events, event) in step {
            let _ = events.send(event);
        }
    }
}

/// Start the engine thread: load the model with `slots` sequence slots and
/// serve commands until every handle is dropped. Its events reach the
/// handlers through a task on `runtime` (the HTTP runtime).
///
/// # Errors
/// The model or its tokenizer or chat template could not be loaded.
pub fn start(
    args: ModelArgs,
    slots: usize,
    config: SchedulerConfig,
    runtime: &tokio::runtime::Handle,
) -> Result<(EngineHandle, ModelInfo)> {
    let (post, post_rx) = mpsc::unbounded_channel::<Delivery>();
    runtime.spawn(deliver(post_rx));
    let (tx, rx) = std_mpsc::channel::<Command>();
    let (info_tx, info_rx) = std_mpsc::channel::<Result<ModelInfo>>();
    let load_state = Arc::new(Mutex::new(Load::default()));
    let shared = load_state.clone();
    std::thread::Builder::new()
        .name("engine".into())
        .spawn(move || {
            let setup = || -> Result<(Engine, ModelInfo)> {
                let loaded = load(&args, slots)?;
                let tokenizer = loaded
                    .tokenizer
                    .clone()
                    .ok_or_else(|| anyhow!("{} has no tokenizer", loaded.path.display()))?;
                let template = if loaded.path.is_dir() {
                    ChatTemplate::chatml(None)
                } else {
                    ChatTemplate::from_gguf(&GgufFile::open(&loaded.path)?)
                        .context("reading the chat template")?
                };
                let info = ModelInfo {
                    name: loaded
                        .path
                        .file_stem()
                        .map_or("model".into(), |s| s.to_string_lossy().into_owned()),
                    eos_ids: tokenizer.eos_id().into_iter().collect(),
                    vocab: loaded.lm.vocab_size(),
                    ctx: loaded.lm.max_seq_len(),
                    slots: loaded.lm.num_slots(),
                    template,
                    tokenizer: tokenizer.clone(),
                };
                let sched = Scheduler::new(loaded.lm, tokenizer, config)?;
                Ok((sched, info))
            };
            match setup() {
                Ok((sched, info)) => {
                    if info_tx.send(Ok(info)).is_ok() {
                        serve(sched, &rx, &shared, &post);
                    }
                }
                Err(e) => {
                    let _ = info_tx.send(Err(e));
                }
            }
        })
        .context("starting the engine thread")?;
    let info = info_rx
        .recv()
        .map_err(|_| anyhow!("the engine thread stopped while loading"))??;
    Ok((
        EngineHandle {
            tx,
            load: load_state,
            max_queue: config.max_queue,
        },
        info,
    ))
}

/// Where each running request's events go.
struct Route {
    events: mpsc::UnboundedSender<ChoiceEvent>,
    cached: CachedTokens,
    choice: usize,
}

/// The engine loop: take commands (waiting for one when idle), cancel the
/// requests whose receivers are gone, step, and route the events.
fn serve<M: LanguageModel, D: decode::Detokenize>(
    mut sched: Scheduler<M, D>,
    rx: &std_mpsc::Receiver<Command>,
    load: &Mutex<Load>,
    post: &mpsc::UnboundedSender<Delivery>,
) {
    let mut routes: HashMap<RequestId, Route> = HashMap::new();
    loop {
        if sched.is_idle() {
            match rx.recv() {
                Ok(cmd) => take(&mut sched, &mut routes, cmd),
                Err(_) => return,
            }
        }
        while let Ok(cmd) = rx.try_recv() {
            take(&mut sched, &mut routes, cmd);
        }
        for (id, r) in &routes {
            if r.events.is_closed() {
                sched.cancel(*id);
            }
        }
        let events = sched.step();
        // Counted before any event goes out: a client that has seen a
        // token finds it in `/health`.
        if let Ok(mut l) = load.lock() {
            let s = sched.stats();
            *l = Load {
                running: sched.running(),
                waiting: sched.waiting(),
                steps: s.steps,
                generated: s.generated,
                prompt_tokens: s.prompt_tokens,
                cached_prompt_tokens: s.reused_tokens,
                cancelled: s.cancelled,
            };
        }
        for (id, n) in sched.admitted() {
            if let Some(r) = routes.get(id)
                && let Some(c) = r.cached.get(r.choice)
            {
                // The channel below orders this before the choice's events.
                c.store(*n, Ordering::Relaxed);
            }
        }
        let mut step = Delivery::with_capacity(events.len());
        for event in events {
            let (id, ended) = match &event {
                Event::Token { id, step } => (*id, step.finish.is_some()),
                Event::Ended { id, .. } => (*id, true),
            };
            if let Some(r) = routes.get(&id) {
                if r.events.is_closed() {
                    sched.cancel(id);
                } else {
                    step.push((r.events.clone(), (r.choice, event)));
                }
            }
            if ended {
                routes.remove(&id);
            }
        }
        // Fails only once the runtime has stopped, when no handler is left
        // to read them.
        if !step.is_empty() {
            let _ = post.send(step);
        }
    }
}

/// Accept a submission whole or refuse it whole.
fn take<M: LanguageModel, D: decode::Detokenize>(
    sched: &mut Scheduler<M, D>,
    routes: &mut HashMap<RequestId, Route>,
    cmd: Command,
) {
    let Command::Submit {
        requests,
        events,
        cached,
        reply,
    } = cmd;
    if sched.queue_room() < requests.len() {
        let _ = reply.send(Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_overloaded",
            format!(
                "the server is busy ({} requests waiting); try again later",
                sched.waiting()
            ),
        )
        .with_code("queue_full")));
        return;
    }
    let mut accepted = Vec::new();
    for (choice, req) in requests.into_iter().enumerate() {
        match sched.submit(req) {
            Ok(id) => {
                accepted.push(id);
                routes.insert(
                    id,
                    Route {
                        events: events.clone(),
                        cached: cached.clone(),
                        choice,
                    },
                );
            }
            Err(e) => {
                for id in accepted {
                    sched.cancel(id);
                    routes.remove(&id);
                }
                let err = match e {
                    SubmitError::QueueFull(_) => ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "server_overloaded",
                        e.to_string(),
                    ),
                    SubmitError::Invalid(e) => ApiError::invalid(None, e.to_string()),
                };
                let _ = reply.send(Err(err));
                return;
            }
        }
    }
    let _ = reply.send(Ok(()));
}
