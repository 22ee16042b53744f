//! `infer bench-serve`: streaming clients against a running server (`infer
//! serve`, or any server with the OpenAI API) on loopback, for a fixed time,
//! all of them on one thread. On a small machine the clients share the
//! server's cores, so what they spend is taken from the server: here each
//! token costs the clients one read and one small JSON parse. Prints one
//! JSON object: requests, refusals, requests that did not complete, the
//! aggregate rate of generated tokens (the server's own `usage` counts),
//! time to first token and the gaps between a request's text chunks.
//! `scripts/load-test.py` runs it once for each client count.

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Most clients one run may start.
const MAX_CLIENTS: usize = 64;
/// Longest run, in seconds.
const MAX_SECONDS: f64 = 1800.0;
/// A refused client's first wait before it asks again, doubled on each
/// refusal up to [`BACKOFF_LAST`].
const BACKOFF_FIRST: Duration = Duration::from_millis(50);
/// A refused client's longest wait.
const BACKOFF_LAST: Duration = Duration::from_secs(1);
/// Longest a request may take before it counts as not completed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// Which endpoint the clients call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Endpoint {
    /// `/v1/chat/completions`, the prompt as a user message (the instruct
    /// model answers at length, so the steps are mostly decoding).
    Chat,
    /// `/v1/completions`, the prompt as plain text to continue.
    Completions,
}

/// Arguments of `infer bench-serve`.
#[derive(Debug, Args)]
pub struct BenchServeArgs {
    /// The server: a loopback address such as `http://127.0.0.1:8080`.
    #[arg(long)]
    pub url: String,
    /// Concurrent clients, each sending streaming requests back to back.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Seconds to send requests for (a request under way then finishes).
    #[arg(long, default_value_t = 20.0)]
    pub seconds: f64,
    /// `max_tokens` of every request.
    #[arg(long, default_value_t = 64)]
    pub max_tokens: usize,
    /// The prompt (a user message, or text to continue).
    #[arg(long, default_value = "Write a short story about a lighthouse keeper.")]
    pub prompt: String,
    /// The endpoint.
    #[arg(long, value_enum, default_value_t = Endpoint::Chat)]
    pub endpoint: Endpoint,
    /// Start every request's text with its own number, so that requests
    /// share only the chat template (the server's prompt cache then saves
    /// that much and no more).
    #[arg(long)]
    pub vary: bool,
    /// The server's key (`infer serve --api-key`), sent with every request
    /// as `Authorization: Bearer KEY`.
    #[arg(long, env = "INFER_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
}

/// What one streaming request gave.
struct Outcome {
    /// The HTTP status.
    status: u16,
    /// When the request was sent.
    start: Instant,
    /// When each chunk that carried text arrived.
    times: Vec<Instant>,
    /// `completion_tokens` from the usage chunk, if one came.
    tokens: Option<u64>,
    /// Whether `data: [DONE]` ended the stream.
    done: bool,
}

/// The clients' counts, shared on their one thread.
#[derive(Default)]
struct Stats {
    requests: usize,
    refused: usize,
    incomplete: usize,
    tokens: u64,
    ttft_ms: Vec<f64>,
    itl_ms: Vec<f64>,
    first: Option<Instant>,
    last: Option<Instant>,
    /// Whether the server refused a request's key (401): the clients stop.
    unauthorized: bool,
}

/// Where the requests go and what they say.
struct Target {
    /// `host:port` to connect to.
    addr: String,
    /// The request's path.
    path: &'static str,
    /// The request body, less the text.
    base: Value,
    /// The text, and whether each request numbers it.
    prompt: (String, bool),
    /// Requests made so far (for `vary`).
    sent: RefCell<usize>,
    /// The `Authorization` header line, or nothing.
    auth: String,
}

impl Target {
    /// The next request's body.
    fn body(&self) -> Vec<u8> {
        let (prompt, vary) = &self.prompt;
        let text = if *vary {
            let mut n = self.sent.borrow_mut();
            *n += 1;
            format!("Request {n}. {prompt}")
        } else {
            prompt.clone()
        };
        let mut body = self.base.clone();
        if self.path.ends_with("chat/completions") {
            body["messages"] = json!([{"role": "user", "content": text}]);
        } else {
            body["prompt"] = json!(text);
        }
        body.to_string().into_bytes()
    }
}

/// Run `infer bench-serve`.
///
/// # Errors
/// A URL that is not a loopback `http://host:port`, arguments out of
/// range, or a runtime that does not start. Requests that fail are
/// counted, not errors.
pub fn run(a: &BenchServeArgs, out: &mut dyn Write) -> Result<()> {
    if !(1..=MAX_CLIENTS).contains(&a.clients) {
        bail!("--clients must be in 1..={MAX_CLIENTS}, got {}", a.clients);
    }
    if !(a.seconds > 0.0 && a.seconds <= MAX_SECONDS) {
        bail!("--seconds must be in (0, {MAX_SECONDS}], got {}", a.seconds);
    }
    let addr = loopback_addr(&a.url)?;
    let target = Rc::new(Target {
        addr,
        path: match a.endpoint {
            Endpoint::Chat => "/v1/chat/completions",
            Endpoint::Completions => "/v1/completions",
        },
        base: json!({
            "max_tokens": a.max_tokens,
            "temperature": 0.8,
            "stream": true,
            "stream_options": {"include_usage": true},
        }),
        prompt: (a.prompt.clone(), a.vary),
        sent: RefCell::new(0),
        auth: a
            .api_key
            .as_ref()
            .map(|k| format!("Authorization: Bearer {k}\r\n"))
            .unwrap_or_default(),
    });
    // Whether the machine's cores are near or far right now (the server is
    // idle): the eight-client rate follows it on a shared virtual machine.
    let hand_off = engine::threads::hand_off_seconds(5_000);
    let stats = Rc::new(RefCell::new(Stats::default()));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the clients' runtime")?;
    let deadline = Instant::now() + Duration::from_secs_f64(a.seconds);
    let local = tokio::task::LocalSet::new();
    for _ in 0..a.clients {
        local.spawn_local(client(Rc::clone(&target), Rc::clone(&stats), deadline));
    }
    runtime.block_on(local);
    let s = stats.borrow();
    if s.unauthorized {
        bail!(
            "{} refused the clients' key (401): give bench-serve the server's key with \
             --api-key or INFER_API_KEY",
            a.url
        );
    }
    let span = match (s.first, s.last) {
        (Some(f), Some(l)) => l.duration_since(f).as_secs_f64(),
        _ => 0.0,
    };
    let report = json!({
        "clients": a.clients,
        "requests": s.requests,
        "refused": s.refused,
        "incomplete": s.incomplete,
        "tok_per_s": if span > 0.0 { s.tokens as f64 / span } else { 0.0 },
        "ttft_ms_p50": quantile(&s.ttft_ms, 0.5),
        "itl_ms_p50": quantile(&s.itl_ms, 0.5),
        "itl_ms_p99": quantile(&s.itl_ms, 0.99),
        "hand_off_us": hand_off.map(|h| h * 1e6),
    });
    writeln!(out, "{report}")?;
    Ok(())
}

/// `host:port` of a loopback `http://` URL (an error for any other).
fn loopback_addr(url: &str) -> Result<String> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("--url must start with http://, got {url:?}"))?;
    let hostport = rest.split('/').next().unwrap_or_default();
    let (host, port) = hostport
        .rsplit_once(':')
        .with_context(|| format!("--url needs a port, got {url:?}"))?;
    if !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
        bail!("load tests run on loopback only (127.0.0.1, localhost, [::1]), got {host:?}");
    }
    let port: u16 = port
        .parse()
        .with_context(|| format!("--url: a bad port {port:?}"))?;
    Ok(format!("{host}:{port}"))
}

/// One client: streaming requests back to back until the deadline, each
/// counted into `stats`. A refused request (503) waits before the next,
/// longer after each refusal in a row.
async fn client(target: Rc<Target>, stats: Rc<RefCell<Stats>>, deadline: Instant) {
    let mut backoff = BACKOFF_FIRST;
    while Instant::now() < deadline {
        let body = target.body();
        let sent = tokio::time::timeout(REQUEST_TIMEOUT, stream_once(&target, &body)).await;
        let outcome = match sent {
            Ok(Ok(o)) => Some(o),
            _ => None,
        };
        if outcome.as_ref().is_some_and(|o| o.status == 401) {
            // No key, or the wrong one: every request would fail alike.
            stats.borrow_mut().unauthorized = true;
            return;
        }
        if outcome.as_ref().is_some_and(|o| o.status == 503) {
            stats.borrow_mut().refused += 1;
            // Not at once again: the queue is full, give it time to drain.
            let left = deadline.saturating_duration_since(Instant::now());
            tokio::time::sleep(backoff.min(left)).await;
            backoff = (2 * backoff).min(BACKOFF_LAST);
            continue;
        }
        backoff = BACKOFF_FIRST;
        let mut s = stats.borrow_mut();
        s.requests += 1;
        let Some(o) = outcome.filter(|o| o.status == 200 && o.done) else {
            s.incomplete += 1;
            continue;
        };
        s.tokens += o.tokens.unwrap_or(o.times.len() as u64);
        if let (Some(&first), Some(&last)) = (o.times.first(), o.times.last()) {
            s.ttft_ms.push(ms(first - o.start));
            s.itl_ms.extend(o.times.windows(2).map(|w| ms(w[1] - w[0])));
            s.first = Some(s.first.map_or(o.start, |f| f.min(o.start)));
            s.last = Some(s.last.map_or(last, |l| l.max(last)));
        }
    }
}

/// A duration in milliseconds.
fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The `q` quantile of `v` as the load script takes it: the value at rank
/// `ceil(q·n)` (0 when empty).
fn quantile(v: &[f64], q: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len().max(1));
    v.get(rank - 1).copied().unwrap_or(0.0)
}

/// The error for a response this client cannot read.
fn malformed(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string())
}

/// One streaming request over its own connection: the status, and for a
/// 200 the server-sent events, read as they come (a chunked body or one
/// that ends with the connection).
async fn stream_once(target: &Target, body: &[u8]) -> std::io::Result<Outcome> {
    let start = Instant::now();
    let Target {
        addr, path, auth, ..
    } = target;
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut conn = BufReader::new(stream);
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         {auth}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.get_mut().write_all(head.as_bytes()).await?;
    conn.get_mut().write_all(body).await?;
    let mut line = String::new();
    conn.read_line(&mut line).await?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| malformed("no HTTP status line"))?;
    let mut chunked = false;
    loop {
        line.clear();
        if conn.read_line(&mut line).await? == 0 || line.trim_end().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            chunked |= name.trim().eq_ignore_ascii_case("transfer-encoding")
                && value.to_ascii_lowercase().contains("chunked");
        }
    }
    let mut o = Outcome {
        status,
        start,
        times: Vec::new(),
        tokens: None,
        done: false,
    };
    if status != 200 {
        return Ok(o);
    }
    let (mut pending, mut data) = (Vec::new(), Vec::new());
    while !o.done {
        if chunked {
            line.clear();
            conn.read_line(&mut line).await?;
            let size = line.trim_end().split(';').next().unwrap_or_default();
            let size = usize::from_str_radix(size.trim(), 16)
                .map_err(|_| malformed("a bad chunk size"))?;
            if size == 0 {
                break;
            }
            // The chunk and the line end after it.
            data.resize(size + 2, 0);
            conn.read_exact(&mut data).await?;
            data.truncate(size);
        } else {
            data.resize(1 << 16, 0);
            let n = conn.read(&mut data).await?;
            if n == 0 {
                break;
            }
            data.truncate(n);
        }
        pending.extend_from_slice(&data);
        while let Some(end) = pending.windows(2).position(|w| w == b"\n\n") {
            let event: Vec<u8> = pending.drain(..end + 2).collect();
            read_event(&event, &mut o)?;
        }
    }
    Ok(o)
}

/// One server-sent event's `data:` lines into `o`: `[DONE]` ends the
/// stream, a usage chunk gives the token count, a chunk with text is a
/// token's arrival.
fn read_event(event: &[u8], o: &mut Outcome) -> std::io::Result<()> {
    for line in event.split(|&b| b == b'\n') {
        let Some(payload) = line.strip_prefix(b"data: ") else {
            continue;
        };
        if payload == b"[DONE]" {
            o.done = true;
            continue;
        }
        let now = Instant::now();
        let v: Value =
            serde_json::from_slice(payload).map_err(|_| malformed("a chunk not JSON"))?;
        if let Some(n) = v["usage"]["completion_tokens"].as_u64() {
            o.tokens = Some(n);
        }
        let choice = &v["choices"][0];
        let text = choice["text"]
            .as_str()
            .or_else(|| choice["delta"]["content"].as_str());
        if text.is_some_and(|t| !t.is_empty()) {
            o.times.push(now);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_urls_are_accepted() {
        assert_eq!(
            loopback_addr("http://127.0.0.1:8080").unwrap(),
            "127.0.0.1:8080"
        );
        assert_eq!(
            loopback_addr("http://localhost:9/v1").unwrap(),
            "localhost:9"
        );
        assert_eq!(loopback_addr("http://[::1]:80").unwrap(), "[::1]:80");
        for bad in [
            "http://10.0.0.1:8080",
            "https://127.0.0.1:8080",
            "127.0.0.1:8080",
            "http://127.0.0.1",
            "http://127.0.0.1:99999",
        ] {
            assert!(loopback_addr(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn quantiles_take_the_ceiling_rank_as_the_script_did() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 50.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&[3.0, 1.0, 2.0], 0.5), 2.0);
        assert_eq!(quantile(&[], 0.99), 0.0);
    }

    #[test]
    fn events_give_text_arrivals_usage_and_the_end() {
        let mut o = Outcome {
            status: 200,
            start: Instant::now(),
            times: Vec::new(),
            tokens: None,
            done: false,
        };
        let chat = br#"data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}"#;
        read_event(chat, &mut o).unwrap();
        let empty = br#"data: {"choices":[{"index":0,"delta":{"role":"assistant"}}]}"#;
        read_event(empty, &mut o).unwrap();
        let text = br#"data: {"choices":[{"index":0,"text":" there"}]}"#;
        read_event(text, &mut o).unwrap();
        let usage = br#"data: {"choices":[],"usage":{"completion_tokens":7}}"#;
        read_event(usage, &mut o).unwrap();
        assert_eq!((o.times.len(), o.tokens, o.done), (2, Some(7), false));
        read_event(b": keep-alive\ndata: [DONE]", &mut o).unwrap();
        assert!(o.done);
        assert!(read_event(b"data: {not json", &mut o).is_err());
    }
}
