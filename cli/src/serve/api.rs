//! OpenAI request bodies, parsed and checked into what the scheduler runs.
//!
//! Parsing is a pure function of the body's bytes ([`parse_completion`],
//! [`parse_chat`]) so that it can be fuzzed and tested without a server.
//! Unknown fields are ignored, as OpenAI ignores them; a field of the wrong
//! type or out of range is an [`ApiError`] naming the field. The extension
//! fields are spelled as vLLM and llama.cpp's server spell them: `top_k`,
//! `min_p`, and `repetition_penalty` or `repeat_penalty`.

use std::collections::BTreeMap;

use decode::{GenerateParams, PenaltyScope, SamplingParams, Strategy};
use serde::Deserialize;
use serde_json::Value;

use super::error::ApiError;

/// Most choices one request may ask for (`n`).
pub const MAX_N: usize = 16;
/// Most stop strings, as OpenAI allows.
pub const MAX_STOP: usize = 4;
/// Most alternatives per token for `logprobs` (completions) and
/// `top_logprobs` (chat).
pub const MAX_TOP_LOGPROBS: usize = 20;

/// A prompt as the completions endpoint accepts it.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum PromptField {
    /// One text.
    Text(String),
    /// Several texts (each gets `n` choices).
    Texts(Vec<String>),
    /// One prompt as token ids.
    Ids(Vec<u32>),
    /// Several prompts as token ids.
    IdLists(Vec<Vec<u32>>),
}

/// `stop`: one string or a list.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum StopField {
    /// One stop string.
    One(String),
    /// Up to [`MAX_STOP`] stop strings.
    Many(Vec<String>),
}

/// `logprobs` is an integer for completions and a boolean for chat.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum LogprobsField {
    /// Chat: return log-probs or not.
    Flag(bool),
    /// Completions: how many alternatives per token.
    Count(i64),
}

/// The sampling fields both endpoints share.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Sampling {
    /// Model name (any value is accepted; the server serves one model).
    pub model: Option<String>,
    /// Most new tokens per choice.
    pub max_tokens: Option<i64>,
    /// Chat's newer spelling of `max_tokens`.
    pub max_completion_tokens: Option<i64>,
    /// 0..=2; 0 is greedy.
    pub temperature: Option<f32>,
    /// (0, 1].
    pub top_p: Option<f32>,
    /// Choices per prompt.
    pub n: Option<i64>,
    /// Stop strings.
    pub stop: Option<StopField>,
    /// Seed for sampling.
    pub seed: Option<i64>,
    /// -2..=2, over the generated tokens.
    pub presence_penalty: Option<f32>,
    /// -2..=2, over the generated tokens.
    pub frequency_penalty: Option<f32>,
    /// Token id (as a string) → bias in -100..=100.
    pub logit_bias: Option<BTreeMap<String, f32>>,
    /// See [`LogprobsField`].
    pub logprobs: Option<LogprobsField>,
    /// Chat: alternatives per token (0..=20).
    pub top_logprobs: Option<i64>,
    /// Stream server-sent events.
    pub stream: Option<bool>,
    /// `{"include_usage": true}` adds a usage chunk to a stream.
    pub stream_options: Option<StreamOptions>,
    /// Extension: keep the k most likely tokens (0 = off).
    pub top_k: Option<i64>,
    /// Extension: drop tokens below min_p × the top probability.
    pub min_p: Option<f32>,
    /// Extension (vLLM spelling): CTRL repetition penalty, > 0.
    pub repetition_penalty: Option<f32>,
    /// Extension (llama.cpp spelling) of the same.
    pub repeat_penalty: Option<f32>,
}

/// `stream_options`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct StreamOptions {
    /// Send a last chunk with token counts.
    pub include_usage: bool,
}

/// `POST /v1/completions`.
#[derive(Debug, Clone, Deserialize)]
pub struct CompletionBody {
    /// The prompt(s).
    pub prompt: PromptField,
    /// Echo the prompt before the completion.
    #[serde(default)]
    pub echo: bool,
    /// Everything else, read from the same object on its own (not with
    /// serde's `flatten`, which loses the path of a field of the wrong type).
    #[serde(skip)]
    pub sampling: Sampling,
}

/// A chat message's content: a string or a list of parts.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ContentField {
    /// Plain text.
    Text(String),
    /// Parts; only `{"type": "text", "text": …}` parts are supported.
    Parts(Vec<Value>),
}

/// One chat message.
#[derive(Debug, Clone, Deserialize)]
pub struct MessageBody {
    /// `system`, `user`, `assistant` (or `developer`, read as `system`).
    pub role: String,
    /// The text.
    #[serde(default)]
    pub content: Option<ContentField>,
}

/// `POST /v1/chat/completions`.
#[derive(Debug, Clone, Deserialize)]
pub struct ChatBody {
    /// The conversation.
    pub messages: Vec<MessageBody>,
    /// Everything else, read as [`CompletionBody::sampling`] is.
    #[serde(skip)]
    pub sampling: Sampling,
}

/// What a parsed request asks the engine for, before tokenization.
#[derive(Debug, Clone)]
pub struct Job {
    /// Decoding settings shared by every choice (the seed is per choice:
    /// choice `i` draws from stream `i`).
    pub params: GenerateParams,
    /// Choices per prompt.
    pub n: usize,
    /// Stream server-sent events.
    pub stream: bool,
    /// Add a usage chunk at the end of a stream.
    pub include_usage: bool,
    /// Return log-probs.
    pub logprobs: bool,
    /// Logit-bias entries to check against the vocabulary.
    pub bias_ids: Vec<u32>,
    /// The model name the client gave.
    pub model: Option<String>,
}

fn bad(param: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::invalid(Some(param), message)
}

fn in_range(param: &'static str, v: f32, lo: f32, hi: f32) -> Result<f32, ApiError> {
    if v.is_finite() && (lo..=hi).contains(&v) {
        Ok(v)
    } else {
        Err(bad(
            param,
            format!("{param} must be in [{lo}, {hi}], got {v}"),
        ))
    }
}

/// The body as a JSON object.
fn object(body: &[u8]) -> Result<Value, ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid(None, format!("the body is not valid JSON: {e}")))?;
    if !v.is_object() {
        return Err(ApiError::invalid(None, "the body must be a JSON object"));
    }
    Ok(v)
}

/// Read `T` from the body's object; a field of the wrong type is named,
/// as `param` and in the message, by its path (`messages[0].role`).
fn fields<T: for<'de> Deserialize<'de>>(v: &Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            ApiError::invalid(None, format!("invalid request: {inner}"))
        } else {
            ApiError::invalid(None, format!("invalid request: {path}: {inner}")).with_param(path)
        }
    })
}

/// Parse a completions body: the prompts and the job.
///
/// # Errors
/// Malformed JSON, a field of the wrong type, a value out of range.
pub fn parse_completion(body: &[u8]) -> Result<(PromptField, bool, Job), ApiError> {
    let v = object(body)?;
    let mut b: CompletionBody = fields(&v)?;
    b.sampling = fields(&v)?;
    let logprobs = match &b.sampling.logprobs {
        None => None,
        Some(LogprobsField::Count(k)) if (0..=MAX_TOP_LOGPROBS as i64).contains(k) => {
            Some(*k as usize)
        }
        Some(_) => {
            return Err(bad(
                "logprobs",
                format!("logprobs must be an integer in 0..={MAX_TOP_LOGPROBS}"),
            ));
        }
    };
    let job = job(&b.sampling, logprobs, 16)?;
    Ok((b.prompt, b.echo, job))
}

/// Parse a chat body: the messages as `(role, text)` and the job.
///
/// # Errors
/// As [`parse_completion`]; also an empty conversation, an unknown role,
/// or content that is not text.
pub fn parse_chat(body: &[u8]) -> Result<(Vec<(String, String)>, Job), ApiError> {
    let v = object(body)?;
    let mut b: ChatBody = fields(&v)?;
    b.sampling = fields(&v)?;
    if b.messages.is_empty() {
        return Err(bad("messages", "messages must not be empty"));
    }
    let mut msgs = Vec::with_capacity(b.messages.len());
    for m in &b.messages {
        let role = match m.role.as_str() {
            "system" | "developer" => "system",
            "user" => "user",
            "assistant" => "assistant",
            other => {
                return Err(bad(
                    "messages",
                    format!("unknown role {other:?} (system, user or assistant)"),
                ));
            }
        };
        let text = match &m.content {
            None => String::new(),
            Some(ContentField::Text(t)) => t.clone(),
            Some(ContentField::Parts(parts)) => {
                let mut t = String::new();
                for p in parts {
                    match (p.get("type").and_then(Value::as_str), p.get("text")) {
                        (Some("text"), Some(Value::String(s))) => t.push_str(s),
                        _ => {
                            return Err(bad("messages", "only text content parts are supported"));
                        }
                    }
                }
                t
            }
        };
        msgs.push((role.to_string(), text));
    }
    let top = match (&b.sampling.logprobs, b.sampling.top_logprobs) {
        (None | Some(LogprobsField::Flag(false)), None) => None,
        (Some(LogprobsField::Flag(true)), None) => Some(0),
        (Some(LogprobsField::Flag(true)), Some(k))
            if (0..=MAX_TOP_LOGPROBS as i64).contains(&k) =>
        {
            Some(k as usize)
        }
        (Some(LogprobsField::Flag(true)), Some(_)) => {
            return Err(bad(
                "top_logprobs",
                format!("top_logprobs must be in 0..={MAX_TOP_LOGPROBS}"),
            ));
        }
        (_, Some(_)) => {
            return Err(bad("top_logprobs", "top_logprobs needs logprobs: true"));
        }
        (Some(LogprobsField::Count(_)), None) => {
            return Err(bad("logprobs", "logprobs must be a boolean for chat"));
        }
    };
    let job = job(&b.sampling, top, 512)?;
    Ok((msgs, job))
}

/// The shared fields → decode's parameters, every range checked.
fn job(s: &Sampling, logprobs: Option<usize>, default_max: usize) -> Result<Job, ApiError> {
    let max = s.max_completion_tokens.or(s.max_tokens);
    let max_new_tokens = match max {
        None => default_max,
        Some(m) if m >= 1 => usize::try_from(m).unwrap_or(usize::MAX),
        Some(m) => {
            return Err(bad(
                "max_tokens",
                format!("max_tokens must be >= 1, got {m}"),
            ));
        }
    };
    let temperature = in_range("temperature", s.temperature.unwrap_or(1.0), 0.0, 2.0)?;
    let top_p = s.top_p.unwrap_or(1.0);
    if !(top_p.is_finite() && top_p > 0.0 && top_p <= 1.0) {
        return Err(bad(
            "top_p",
            format!("top_p must be in (0, 1], got {top_p}"),
        ));
    }
    let n = match s.n {
        None => 1,
        Some(n) if (1..=MAX_N as i64).contains(&n) => n as usize,
        Some(n) => return Err(bad("n", format!("n must be in 1..={MAX_N}, got {n}"))),
    };
    let stop = match &s.stop {
        None => Vec::new(),
        Some(StopField::One(x)) => vec![x.clone()],
        Some(StopField::Many(v)) if v.len() <= MAX_STOP => v.clone(),
        Some(StopField::Many(_)) => {
            return Err(bad("stop", format!("at most {MAX_STOP} stop strings")));
        }
    };
    let presence = in_range(
        "presence_penalty",
        s.presence_penalty.unwrap_or(0.0),
        -2.0,
        2.0,
    )?;
    let frequency = in_range(
        "frequency_penalty",
        s.frequency_penalty.unwrap_or(0.0),
        -2.0,
        2.0,
    )?;
    let mut bias = Vec::new();
    for (k, v) in s.logit_bias.iter().flatten() {
        let id: u32 = k.parse().map_err(|_| {
            bad(
                "logit_bias",
                format!("logit_bias key {k:?} is not a token id"),
            )
        })?;
        bias.push((id, in_range("logit_bias", *v, -100.0, 100.0)?));
    }
    let top_k = match s.top_k {
        None => 0,
        // vLLM reads -1 as "off".
        Some(k) if k == -1 || k == 0 => 0,
        Some(k) if k > 0 => usize::try_from(k).unwrap_or(usize::MAX),
        Some(k) => return Err(bad("top_k", format!("top_k must be >= 0 (or -1), got {k}"))),
    };
    let min_p = in_range("min_p", s.min_p.unwrap_or(0.0), 0.0, 1.0)?;
    let repetition = match (s.repetition_penalty, s.repeat_penalty) {
        (Some(a), Some(b)) if a != b => {
            return Err(bad(
                "repetition_penalty",
                "repetition_penalty and repeat_penalty disagree",
            ));
        }
        (Some(a), _) | (None, Some(a)) => a,
        (None, None) => 1.0,
    };
    if !(repetition.is_finite() && repetition > 0.0) {
        return Err(bad(
            "repetition_penalty",
            format!("repetition_penalty must be > 0, got {repetition}"),
        ));
    }
    let seed = match s.seed {
        Some(seed) => seed as u64,
        None => fresh_seed(),
    };
    let bias_ids = bias.iter().map(|b| b.0).collect();
    let params = GenerateParams {
        strategy: if temperature == 0.0 {
            Strategy::Greedy
        } else {
            Strategy::Sample { seed }
        },
        sampling: SamplingParams {
            temperature: if temperature == 0.0 { 1.0 } else { temperature },
            top_k,
            top_p,
            min_p,
            repetition_penalty: repetition,
            repetition_scope: PenaltyScope::PromptAndGenerated,
            frequency_penalty: frequency,
            presence_penalty: presence,
            frequency_scope: PenaltyScope::GeneratedOnly,
            logit_bias: bias,
            ..SamplingParams::default()
        },
        max_new_tokens,
        eos_ids: Vec::new(),
        stop_strings: stop,
        top_logprobs: logprobs.unwrap_or(0),
        explain_top: 0,
    };
    params
        .validate()
        .map_err(|e| ApiError::invalid(None, e.to_string()))?;
    Ok(Job {
        params,
        n,
        stream: s.stream.unwrap_or(false),
        include_usage: s.stream_options.as_ref().is_some_and(|o| o.include_usage),
        logprobs: logprobs.is_some(),
        bias_ids,
        model: s.model.clone(),
    })
}

/// A seed for a request that gave none (OpenAI samples afresh each time).
fn fresh_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_map_to_decode_parameters() {
        let body = br#"{"model": "x", "prompt": "Hi", "max_tokens": 5, "temperature": 0.5,
            "top_p": 0.9, "n": 2, "stop": ["\n"], "seed": 3, "presence_penalty": 0.5,
            "frequency_penalty": -0.5, "logit_bias": {"42": -100}, "logprobs": 2,
            "top_k": 40, "min_p": 0.05, "repeat_penalty": 1.1, "unknown_field": [1, 2]}"#;
        let (prompt, echo, job) = parse_completion(body).unwrap();
        assert!(matches!(prompt, PromptField::Text(t) if t == "Hi"));
        assert!(!echo);
        let p = &job.params;
        assert_eq!(p.strategy, Strategy::Sample { seed: 3 });
        assert_eq!(p.max_new_tokens, 5);
        assert_eq!(p.stop_strings, vec!["\n".to_string()]);
        assert_eq!(p.top_logprobs, 2);
        assert_eq!(p.sampling.top_k, 40);
        assert_eq!(p.sampling.repetition_penalty, 1.1);
        assert_eq!(p.sampling.logit_bias, vec![(42, -100.0)]);
        assert_eq!(job.n, 2);
        let (_, job) = parse_chat(
            br#"{"messages": [{"role": "user", "content": "Hi"}], "temperature": 0,
                "logprobs": true, "top_logprobs": 3, "repetition_penalty": 1.2}"#,
        )
        .unwrap();
        assert_eq!(job.params.strategy, Strategy::Greedy);
        assert_eq!(job.params.top_logprobs, 3);
        assert_eq!(job.params.sampling.repetition_penalty, 1.2);
    }

    #[test]
    fn bad_fields_are_named() {
        let cases: [(&[u8], &str); 12] = [
            (b"{not json", "not valid JSON"),
            (b"[1, 2]", "JSON object"),
            (br#"{"prompt": 5}"#, "invalid request"),
            (
                br#"{"prompt": "a", "temperature": "hot"}"#,
                "invalid request",
            ),
            (br#"{"prompt": "a", "temperature": 3}"#, "temperature"),
            (br#"{"prompt": "a", "top_p": 0}"#, "top_p"),
            (br#"{"prompt": "a", "n": 0}"#, "n must"),
            (br#"{"prompt": "a", "max_tokens": 0}"#, "max_tokens"),
            (br#"{"prompt": "a", "stop": ["a","b","c","d","e"]}"#, "stop"),
            (br#"{"prompt": "a", "logit_bias": {"x": 1}}"#, "logit_bias"),
            (br#"{"prompt": "a", "logprobs": 99}"#, "logprobs"),
            (
                br#"{"prompt": "a", "repetition_penalty": 0}"#,
                "repetition_penalty",
            ),
        ];
        for (body, want) in cases {
            let e = parse_completion(body).unwrap_err();
            assert_eq!(e.status.as_u16(), 400);
            assert!(
                e.message.contains(want),
                "{:?}: {}",
                String::from_utf8_lossy(body),
                e.message
            );
        }
        // A field of the wrong type is named by its path, as `param` and
        // in the message.
        let wrong_type: [(&[u8], &str); 5] = [
            (br#"{"prompt": 5}"#, "prompt"),
            (br#"{"prompt": "a", "temperature": "hot"}"#, "temperature"),
            (br#"{"prompt": "a", "n": 1.5}"#, "n"),
            (
                br#"{"prompt": "a", "stream_options": {"include_usage": "yes"}}"#,
                "stream_options.include_usage",
            ),
            (
                br#"{"prompt": "a", "logit_bias": {"5": "x"}}"#,
                "logit_bias.5",
            ),
        ];
        for (body, path) in wrong_type {
            let e = parse_completion(body).unwrap_err();
            assert_eq!(e.param.as_deref(), Some(path), "{}", e.message);
            assert!(e.message.contains(path), "{}", e.message);
        }
        let e = parse_chat(br#"{"messages": [{"role": "user"}, {"role": 5}], "seed": "x"}"#)
            .unwrap_err();
        assert_eq!(
            e.param.as_deref(),
            Some("messages[1].role"),
            "{}",
            e.message
        );
        let e = parse_chat(br#"{"messages": [], "top_logprobs": "x"}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("top_logprobs"), "{}", e.message);
        let e = parse_chat(br#"{"messages": []}"#).unwrap_err();
        assert!(e.message.contains("empty"));
        let e = parse_chat(br#"{"messages": [{"role": "robot", "content": "x"}]}"#).unwrap_err();
        assert!(e.message.contains("robot"));
    }
}
