//! The HTTP routes: OpenAI's completions, chat completions and models, a
//! health check, and the same counters for Prometheus. Handlers parse and
//! tokenize; the engine thread runs.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use decode::{Event, Request};
use model::chat_template::ChatMessage;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::api::{self, Job, PromptField};
use super::engine::{CachedTokens, ChoiceEvent, EngineHandle, ModelInfo};
use super::error::ApiError;
use super::metrics::counters;
use super::respond::{self, Choice, Endpoint, Header};

/// Largest request body accepted (larger ones get 413).
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The engine thread.
    pub engine: EngineHandle,
    /// The model's tokenizer, template and sizes.
    pub info: Arc<ModelInfo>,
    /// Numbers response ids.
    pub next_id: Arc<AtomicU64>,
    /// The key every request but `/health` must bring, if any
    /// (`--api-key`).
    pub api_key: Option<Arc<str>>,
}

/// The server's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/completions", post(completions))
        .route("/v1/chat/completions", post(chat))
        .route("/v1/models", get(models))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), require_key))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

// ANCHOR: require_key
/// With a key (`--api-key`), every request but `/health` must carry
/// `Authorization: Bearer KEY`, as OpenAI's clients send their `api_key`;
/// any other gets OpenAI's answer to a wrong key, 401 with the code
/// `invalid_api_key`, before its body is read.
async fn require_key(
    State(s): State<AppState>,
    req: axum::extract::Request,
    next: Next,
) -> Response {
    let Some(key) = &s.api_key else {
        return next.run(req).await;
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if req.uri().path() == "/health" || same_secret(given.as_bytes(), key.as_bytes()) {
        return next.run(req).await;
    }
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_request_error",
        "a missing or wrong API key: send `Authorization: Bearer` and the key the server was started with",
    )
    .with_code("invalid_api_key")
    .into_response()
}

/// Whether `a` and `b` are the same bytes, looking at every byte whatever
/// the first difference, so the time taken does not tell how much of a
/// guess was right.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}
// ANCHOR_END: require_key

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        "no such route",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request_error",
        "method not allowed on this route",
    )
}

async fn models(State(s): State<AppState>) -> Json<serde_json::Value> {
    Json(json!({
        "object": "list",
        "data": [{
            "id": s.info.name,
            "object": "model",
            "created": 0,
            "owned_by": "inference-from-scratch",
        }],
    }))
}

async fn health(State(s): State<AppState>) -> Json<serde_json::Value> {
    let mut v = json!({"status": "ok", "model": s.info.name});
    for c in counters(&s.engine.load(), s.info.slots) {
        v[c.key] = c.value.into();
    }
    Json(v)
}

async fn metrics(State(s): State<AppState>) -> Response {
    let text = super::metrics::prometheus(&counters(&s.engine.load(), s.info.slots));
    ([(header::CONTENT_TYPE, super::metrics::CONTENT_TYPE)], text).into_response()
}

fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|r| {
        let status = r.status();
        let e = ApiError::new(status, "invalid_request_error", r.body_text());
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            e.with_code("request_too_large")
        } else {
            e
        }
    })
}

async fn completions(State(s): State<AppState>, body: Result<Bytes, BytesRejection>) -> Response {
    let run = async {
        let body = body_bytes(body)?;
        let (prompt, echo, job) = api::parse_completion(&body)?;
        let tok = &s.info.tokenizer;
        let prompts: Vec<(String, Vec<u32>)> = match prompt {
            PromptField::Text(t) => vec![(t.clone(), tok.encode(&t))],
            PromptField::Texts(ts) => ts
                .into_iter()
                .map(|t| (t.clone(), tok.encode(&t)))
                .collect(),
            PromptField::Ids(ids) => vec![(tok.decode(&ids), ids)],
            PromptField::IdLists(l) => l.into_iter().map(|ids| (tok.decode(&ids), ids)).collect(),
        };
        if prompts.is_empty() {
            return Err(ApiError::invalid(
                Some("prompt"),
                "prompt must not be empty",
            ));
        }
        let echoed: Vec<String> = prompts
            .iter()
            .map(|(t, _)| if echo { t.clone() } else { String::new() })
            .collect();
        let ids: Vec<Vec<u32>> = prompts.into_iter().map(|p| p.1).collect();
        start(&s, Endpoint::Completions, ids, job, echoed).await
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

async fn chat(State(s): State<AppState>, body: Result<Bytes, BytesRejection>) -> Response {
    let run = async {
        let body = body_bytes(body)?;
        let (msgs, job) = api::parse_chat(&body)?;
        let msgs: Vec<ChatMessage> = msgs
            .into_iter()
            .map(|(role, text)| ChatMessage::new(role, text))
            .collect();
        let text = s.info.template.render(&msgs, true);
        let ids = s.info.tokenizer.encode(&text);
        start(&s, Endpoint::Chat, vec![ids], job, vec![String::new()]).await
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

/// Check the prompts, submit `n` choices per prompt, and answer whole or
/// as a stream. `echoed[p]` is put before prompt `p`'s choices.
async fn start(
    s: &AppState,
    endpoint: Endpoint,
    prompts: Vec<Vec<u32>>,
    mut job: Job,
    echoed: Vec<String>,
) -> Result<Response, ApiError> {
    let info = &s.info;
    for p in &prompts {
        if p.is_empty() {
            return Err(ApiError::invalid(
                Some("prompt"),
                "the prompt has no tokens",
            ));
        }
        if p.len() >= info.ctx {
            return Err(ApiError::invalid(
                Some("prompt"),
                format!(
                    "the prompt has {} tokens; this server's context holds {} (at least one must be left to generate)",
                    p.len(),
                    info.ctx
                ),
            )
            .with_code("context_length_exceeded"));
        }
        if let Some(bad) = p.iter().find(|&&t| t as usize >= info.vocab) {
            return Err(ApiError::invalid(
                Some("prompt"),
                format!("token id {bad} is outside the vocabulary of {}", info.vocab),
            ));
        }
    }
    if let Some(bad) = job.bias_ids.iter().find(|&&t| t as usize >= info.vocab) {
        return Err(ApiError::invalid(
            Some("logit_bias"),
            format!("token id {bad} is outside the vocabulary of {}", info.vocab),
        ));
    }
    job.params.eos_ids = info.eos_ids.clone();
    let prompt_tokens: usize = prompts.iter().map(Vec::len).sum();
    let mut requests = Vec::new();
    let mut echo_of = Vec::new();
    for (p, e) in prompts.into_iter().zip(echoed) {
        for i in 0..job.n {
            requests.push(Request {
                prompt: p.clone(),
                params: job.params.clone(),
                stream: i as u64,
            });
            echo_of.push(e.clone());
        }
    }
    let (rx, cached) = s.engine.submit(requests).await?;
    let prompt_tokens = PromptTokens {
        total: prompt_tokens,
        cached,
        n: job.n,
    };
    let n = s.next_id.fetch_add(1, Ordering::Relaxed);
    let header = Header {
        id: match endpoint {
            Endpoint::Completions => format!("cmpl-{n}"),
            Endpoint::Chat => format!("chatcmpl-{n}"),
        },
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        model: job.model.clone().unwrap_or_else(|| info.name.clone()),
        endpoint,
    };
    if job.stream {
        Ok(stream(s.clone(), header, rx, job, echo_of, prompt_tokens).into_response())
    } else {
        whole(s, header, rx, &job, echo_of, prompt_tokens).await
    }
}

/// A submission's prompt tokens: their total (each prompt once, whatever
/// `n`), and where the engine notes what each choice took from the cache.
struct PromptTokens {
    total: usize,
    cached: CachedTokens,
    n: usize,
}

impl PromptTokens {
    /// The total and the cached tokens, counting each prompt's first
    /// choice (its `n` choices read the same prompt).
    fn counts(&self) -> (usize, usize) {
        let cached = self
            .cached
            .iter()
            .step_by(self.n.max(1))
            .map(|c| c.load(Ordering::Relaxed))
            .sum();
        (self.total, cached)
    }
}

/// Wait for every choice, then answer with one JSON object.
async fn whole(
    s: &AppState,
    header: Header,
    mut rx: mpsc::UnboundedReceiver<ChoiceEvent>,
    job: &Job,
    echo_of: Vec<String>,
    prompt_tokens: PromptTokens,
) -> Result<Response, ApiError> {
    let mut choices: Vec<Choice> = echo_of
        .iter()
        .map(|e| Choice {
            text: e.clone(),
            tokens: Vec::new(),
            finish: None,
        })
        .collect();
    let mut open = choices.len();
    while open > 0 {
        let Some((c, event)) = rx.recv().await else {
            return Err(engine_stopped());
        };
        match event {
            Event::Token { step, .. } => {
                let ch = &mut choices[c];
                ch.text.push_str(&step.delta);
                ch.tokens.push(step.token);
                if step.finish.is_some() {
                    ch.finish = step.finish;
                    open -= 1;
                }
            }
            Event::Ended { result, .. } => {
                choices[c].finish = Some(result.map_err(generation_failed)?);
                open -= 1;
            }
        }
    }
    let offset = echo_of.first().map_or(0, String::len);
    let v = respond::response(
        &header,
        &choices,
        job.logprobs,
        &s.info.tokenizer,
        prompt_tokens.counts(),
        offset,
    );
    Ok(Json(v).into_response())
}

fn engine_stopped() -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        "the engine stopped before the request finished",
    )
}

fn generation_failed(e: decode::DecodeError) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        format!("generation failed: {e}"),
    )
}

/// Answer as server-sent events: one chunk per token per choice, a usage
/// chunk when asked for, then `data: [DONE]`. A task turns engine events
/// into chunks; when the client goes away the chunk channel closes, the
/// task ends, and with it the engine's channel, so the engine cancels the
/// request's choices before its next step.
fn stream(
    s: AppState,
    header: Header,
    mut rx: mpsc::UnboundedReceiver<ChoiceEvent>,
    job: Job,
    echo_of: Vec<String>,
    prompt_tokens: PromptTokens,
) -> impl IntoResponse + use<> {
    let (tx, out) = mpsc::channel::<Result<SseEvent, Infallible>>(64);
    tokio::spawn(async move {
        let send = |v: serde_json::Value| {
            let tx = tx.clone();
            async move {
                tx.send(Ok(SseEvent::default().data(v.to_string())))
                    .await
                    .is_ok()
            }
        };
        let n = echo_of.len();
        let mut first = vec![true; n];
        let mut offsets: Vec<usize> = echo_of.iter().map(String::len).collect();
        let mut completion = 0;
        for (c, e) in echo_of.iter().enumerate() {
            if !e.is_empty() && !send(respond::chunk(&header, c, e, true, None, None)).await {
                return;
            }
            first[c] = first[c] && e.is_empty();
        }
        let mut open = n;
        while open > 0 {
            let Some((c, event)) = rx.recv().await else {
                let _ = send(engine_stopped().body()).await;
                return;
            };
            let v = match event {
                Event::Token { step, .. } => {
                    completion += 1;
                    let tokens = [step.token];
                    let lp = job.logprobs.then_some((
                        &tokens[..],
                        &s.info.tokenizer as &dyn decode::Detokenize,
                        offsets[c],
                    ));
                    let v =
                        respond::chunk(&header, c, &step.delta, first[c], lp, step.finish.as_ref());
                    offsets[c] += tokens[0].text.len();
                    if step.finish.is_some() {
                        open -= 1;
                    }
                    v
                }
                Event::Ended { result: Ok(f), .. } => {
                    open -= 1;
                    respond::chunk(&header, c, "", first[c], None, Some(&f))
                }
                Event::Ended { result: Err(e), .. } => {
                    open -= 1;
                    generation_failed(e).body()
                }
            };
            first[c] = false;
            if !send(v).await {
                return;
            }
        }
        if job.include_usage
            && !send(respond::usage_chunk(
                &header,
                prompt_tokens.counts(),
                completion,
            ))
            .await
        {
            return;
        }
        let _ = tx.send(Ok(SseEvent::default().data("[DONE]"))).await;
    });
    Sse::new(ReceiverStream::new(out)).keep_alive(KeepAlive::default())
}
