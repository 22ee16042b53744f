//! OpenAI response objects: whole completions, stream chunks, log-probs
//! and usage, for the completions and chat endpoints.

use decode::{Detokenize, FinishReason, TokenOutput};
use serde_json::{Value, json};

/// Which endpoint's shapes to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/v1/completions`: `text`, `text_completion`.
    Completions,
    /// `/v1/chat/completions`: `message` / `delta`, `chat.completion`.
    Chat,
}

/// OpenAI's `finish_reason` for decode's reason.
pub fn finish_reason(f: &FinishReason) -> &'static str {
    match f {
        FinishReason::Eos(_) | FinishReason::StopString(_) => "stop",
        FinishReason::MaxNewTokens | FinishReason::ContextFull => "length",
        FinishReason::Cancelled => "cancelled",
    }
}

/// The fields every response and chunk starts with.
pub struct Header {
    /// `cmpl-…` or `chatcmpl-…`.
    pub id: String,
    /// Unix seconds.
    pub created: u64,
    /// The model name.
    pub model: String,
    /// Which endpoint.
    pub endpoint: Endpoint,
}

impl Header {
    fn object(&self, chunk: bool) -> &'static str {
        match (self.endpoint, chunk) {
            (Endpoint::Completions, _) => "text_completion",
            (Endpoint::Chat, false) => "chat.completion",
            (Endpoint::Chat, true) => "chat.completion.chunk",
        }
    }

    fn wrap(&self, chunk: bool, choices: Vec<Value>) -> Value {
        json!({
            "id": self.id,
            "object": self.object(chunk),
            "created": self.created,
            "model": self.model,
            "choices": choices,
        })
    }
}

/// `usage`: `cached` of the prompt tokens came from the server's prompt
/// cache (OpenAI's `prompt_tokens_details.cached_tokens`).
pub fn usage(prompt: usize, completion: usize, cached: usize) -> Value {
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": { "cached_tokens": cached },
    })
}

fn piece(detok: &dyn Detokenize, id: u32) -> String {
    String::from_utf8_lossy(detok.token_bytes(id)).into_owned()
}

/// Log-probs of `tokens` in the endpoint's shape; `offset` is the text
/// offset of the first token (completions report one per token).
pub fn logprobs(
    endpoint: Endpoint,
    tokens: &[TokenOutput],
    detok: &dyn Detokenize,
    offset: usize,
) -> Value {
    match endpoint {
        Endpoint::Completions => {
            let mut at = offset;
            let mut offsets = Vec::with_capacity(tokens.len());
            for t in tokens {
                offsets.push(at);
                at += t.text.len();
            }
            json!({
                "tokens": tokens.iter().map(|t| t.text.clone()).collect::<Vec<_>>(),
                "token_logprobs": tokens.iter().map(|t| t.logprob).collect::<Vec<_>>(),
                "top_logprobs": tokens.iter().map(|t| {
                    t.top.iter().map(|&(id, lp)| (piece(detok, id), json!(lp)))
                        .collect::<serde_json::Map<_, _>>()
                }).collect::<Vec<_>>(),
                "text_offset": offsets,
            })
        }
        Endpoint::Chat => {
            let entry = |id: u32, lp: f32| {
                let bytes = detok.token_bytes(id);
                json!({
                    "token": String::from_utf8_lossy(bytes),
                    "logprob": lp,
                    "bytes": bytes,
                })
            };
            let content: Vec<Value> = tokens
                .iter()
                .map(|t| {
                    let mut e = entry(t.id, t.logprob);
                    e["top_logprobs"] = t.top.iter().map(|&(id, lp)| entry(id, lp)).collect();
                    e
                })
                .collect();
            json!({ "content": content })
        }
    }
}

/// One choice of a finished (non-streaming) response.
pub struct Choice {
    /// Generated text (with the prompt first when echoing).
    pub text: String,
    /// Generated tokens.
    pub tokens: Vec<TokenOutput>,
    /// Why it ended.
    pub finish: Option<FinishReason>,
}

/// A whole response.
pub fn response(
    h: &Header,
    choices: &[Choice],
    logprobs_on: bool,
    detok: &dyn Detokenize,
    (prompt_tokens, cached): (usize, usize),
    text_offset: usize,
) -> Value {
    let completion: usize = choices.iter().map(|c| c.tokens.len()).sum();
    let list = choices
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let lp = if logprobs_on {
                logprobs(h.endpoint, &c.tokens, detok, text_offset)
            } else {
                Value::Null
            };
            let finish = c.finish.as_ref().map(finish_reason);
            match h.endpoint {
                Endpoint::Completions => json!({
                    "index": i, "text": c.text, "logprobs": lp, "finish_reason": finish,
                }),
                Endpoint::Chat => json!({
                    "index": i,
                    "message": { "role": "assistant", "content": c.text },
                    "logprobs": lp,
                    "finish_reason": finish,
                }),
            }
        })
        .collect();
    let mut v = h.wrap(false, list);
    v["usage"] = usage(prompt_tokens, completion, cached);
    v
}

/// One stream chunk for choice `index`: a text delta, its tokens'
/// log-probs when asked for, and the finish reason on the last one.
pub fn chunk(
    h: &Header,
    index: usize,
    delta: &str,
    first: bool,
    logprobs_of: Option<(&[TokenOutput], &dyn Detokenize, usize)>,
    finish: Option<&FinishReason>,
) -> Value {
    let lp = logprobs_of.map_or(Value::Null, |(t, d, off)| logprobs(h.endpoint, t, d, off));
    let finish = finish.map(finish_reason);
    let choice = match h.endpoint {
        Endpoint::Completions => json!({
            "index": index, "text": delta, "logprobs": lp, "finish_reason": finish,
        }),
        Endpoint::Chat => {
            let mut d = serde_json::Map::new();
            if first {
                d.insert("role".into(), json!("assistant"));
            }
            if !delta.is_empty() || first {
                d.insert("content".into(), json!(delta));
            }
            json!({ "index": index, "delta": d, "logprobs": lp, "finish_reason": finish })
        }
    };
    h.wrap(true, vec![choice])
}

/// The last chunk of a stream that asked for usage: no choices, the totals.
pub fn usage_chunk(h: &Header, (prompt, cached): (usize, usize), completion: usize) -> Value {
    let mut v = h.wrap(true, Vec::new());
    v["usage"] = usage(prompt, completion, cached);
    v
}
