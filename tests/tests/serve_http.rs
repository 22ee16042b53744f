//! `infer serve` driven over real HTTP on 127.0.0.1 (port 0, so no fixed
//! ports): OpenAI shapes for whole and streamed completions and chat,
//! several choices, errors with the right status, a full queue, and a
//! client that disconnects mid-stream. The server runs in-process through
//! the same entry point as the binary. Needs the model.

use std::io::Read;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use clap::Parser;
use integration_tests::serve_client::{Reply, request, request_with, send, start_server};
use integration_tests::smollm2_path;
use serde_json::{Value, json};

/// Start `infer serve` with `args` on a free port; returns `host:port`.
fn start(args: &[&str]) -> String {
    start_server(args).0
}

/// The shared server: 4 slots, 256 positions.
fn server() -> &'static str {
    static ADDR: OnceLock<String> = OnceLock::new();
    ADDR.get_or_init(|| start(&["--max-batch", "4", "--ctx", "256"]))
}

fn post(path: &str, body: Value) -> Reply {
    request(server(), "POST", path, body.to_string().as_bytes())
}

/// An OpenAI error object with this status, mentioning `what`.
fn assert_error(r: &Reply, status: u16, what: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    let e = &r.json()["error"];
    assert!(e["type"].is_string(), "{e}");
    let msg = e["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains(what) || e["code"] == what || e["param"] == what,
        "{what:?} not in {e}"
    );
}

#[test]
fn completions_whole_and_streamed_agree_with_the_cli() {
    let body = json!({"prompt": "The capital of France is", "max_tokens": 8, "temperature": 0,
                      "logprobs": 2});
    let r = post("/v1/completions", body.clone());
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["object"], "text_completion");
    let text = v["choices"][0]["text"].as_str().unwrap().to_string();
    assert_eq!(v["usage"]["completion_tokens"], 8);
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    let lp = &v["choices"][0]["logprobs"];
    assert_eq!(lp["tokens"].as_array().unwrap().len(), 8);
    assert_eq!(lp["top_logprobs"][0].as_object().unwrap().len(), 2);
    // The same greedy continuation as `infer generate` with the same model.
    let model = smollm2_path().display().to_string();
    let cli = infer::Cli::try_parse_from([
        "infer",
        "generate",
        "The capital of France is",
        "--model",
        &model,
        "--max-new-tokens",
        "8",
        "--json",
    ])
    .unwrap();
    let mut out = Vec::new();
    infer::run(cli, &mut out).unwrap();
    let g: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(g["text"].as_str().unwrap(), text);

    let mut stream = body;
    stream["stream"] = json!(true);
    stream["stream_options"] = json!({"include_usage": true});
    let r = post("/v1/completions", stream);
    assert_eq!(r.status, 200);
    assert!(r.headers.contains("text/event-stream"), "{}", r.headers);
    let events = r.events();
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let streamed: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["text"].as_str())
        .collect();
    assert_eq!(streamed, text);
    let usage = chunks.last().unwrap();
    assert_eq!(usage["usage"]["completion_tokens"], 8);
    assert!(
        chunks
            .iter()
            .any(|c| c["choices"][0]["finish_reason"] == "length")
    );
}

#[test]
fn chat_whole_and_streamed_with_several_seeded_choices() {
    let body = json!({"model": "anything", "messages": [
        {"role": "system", "content": "You are brief."},
        {"role": "user", "content": [{"type": "text", "text": "Name a colour."}]}],
        "max_tokens": 12, "n": 3, "seed": 5, "temperature": 0.9, "top_p": 0.95,
        "frequency_penalty": 0.3, "repeat_penalty": 1.1, "top_k": 40, "min_p": 0.02});
    let a = post("/v1/chat/completions", body.clone());
    assert_eq!(a.status, 200, "{}", a.body);
    let a = a.json();
    assert_eq!(a["object"], "chat.completion");
    assert_eq!(a["model"], "anything");
    let choices = a["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 3);
    for (i, c) in choices.iter().enumerate() {
        assert_eq!(c["index"], i);
        assert_eq!(c["message"]["role"], "assistant");
        assert!(c["finish_reason"] == "stop" || c["finish_reason"] == "length");
    }
    // The same seed gives the same choices; the stream carries the same text.
    let b = post("/v1/chat/completions", body.clone()).json();
    assert_eq!(a["choices"], b["choices"]);
    let mut stream = body;
    stream["stream"] = json!(true);
    let r = post("/v1/chat/completions", stream);
    let events = r.events();
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let mut texts = vec![String::new(); 3];
    for e in &events[..events.len() - 1] {
        let c: Value = serde_json::from_str(e).unwrap();
        assert_eq!(c["object"], "chat.completion.chunk");
        let ch = &c["choices"][0];
        let i = ch["index"].as_u64().unwrap() as usize;
        if let Some(t) = ch["delta"]["content"].as_str() {
            texts[i].push_str(t);
        }
    }
    for (i, t) in texts.iter().enumerate() {
        assert_eq!(t, choices[i]["message"]["content"].as_str().unwrap());
    }
}

#[test]
fn models_health_and_unknown_routes() {
    let m = request(server(), "GET", "/v1/models", b"").json();
    assert_eq!(m["object"], "list");
    assert!(m["data"][0]["id"].as_str().unwrap().contains("SmolLM2"));
    let h = request(server(), "GET", "/health", b"").json();
    assert_eq!(h["status"], "ok");
    assert_error(
        &request(server(), "GET", "/v1/nothing", b""),
        404,
        "no such route",
    );
    assert_error(
        &request(server(), "GET", "/v1/completions", b""),
        405,
        "method",
    );
}

#[test]
fn bad_requests_get_openai_errors_and_others_are_unaffected() {
    let r = request(server(), "POST", "/v1/completions", b"{\"prompt\": ");
    assert_error(&r, 400, "not valid JSON");
    let r = post("/v1/completions", json!({"prompt": ["a", 1]}));
    assert_error(&r, 400, "invalid request");
    assert_eq!(r.json()["error"]["param"], "prompt", "{}", r.body);
    assert_error(
        &post("/v1/completions", json!({"prompt": "a", "temperature": 9})),
        400,
        "temperature",
    );
    assert_error(
        &post("/v1/completions", json!({"prompt": "a", "top_p": -1})),
        400,
        "top_p",
    );
    assert_error(
        &post("/v1/completions", json!({"prompt": "a", "n": 99})),
        400,
        "n",
    );
    assert_error(
        &post(
            "/v1/completions",
            json!({"prompt": "a", "logit_bias": {"999999": 5}}),
        ),
        400,
        "logit_bias",
    );
    assert_error(
        &post("/v1/completions", json!({"prompt": ""})),
        400,
        "prompt",
    );
    assert_error(
        &post("/v1/completions", json!({"prompt": [999999]})),
        400,
        "vocabulary",
    );
    assert_error(
        &post("/v1/chat/completions", json!({"messages": []})),
        400,
        "messages",
    );
    // Five prompts × 16 choices: more than the whole queue (64) ever holds,
    // so not 503 (try again later) but 400.
    let r = post(
        "/v1/completions",
        json!({"prompt": ["a", "b", "c", "d", "e"], "n": 16, "max_tokens": 1}),
    );
    assert_error(&r, 400, "queue");
    assert_eq!(r.json()["error"]["param"], "n", "{}", r.body);
    let long = "word ".repeat(400);
    assert_error(
        &post("/v1/completions", json!({"prompt": long})),
        400,
        "context_length_exceeded",
    );
    let huge = format!("{{\"prompt\": \"{}\"}}", "a".repeat(2 << 20));
    assert_error(
        &request(server(), "POST", "/v1/completions", huge.as_bytes()),
        413,
        "request_too_large",
    );
    // Unknown fields are ignored, and the server still answers.
    let r = post(
        "/v1/completions",
        json!({"prompt": "Hi", "max_tokens": 2, "foo": {"bar": 1}}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn a_client_that_disconnects_mid_stream_frees_its_slot() {
    // A server of its own, so that no other test's requests keep a slot
    // busy while this one waits for its slot to be freed; its context is
    // long and the special tokens (end of sequence among them) are
    // banned, so the request runs for thousands of steps unless it is
    // cancelled.
    let addr = &start(&["--max-batch", "1", "--ctx", "4096"]);
    let max_tokens = 4000;
    let body = json!({"prompt": "Once upon a time", "max_tokens": max_tokens, "stream": true,
                      "temperature": 0.8, "seed": 1,
                      "logit_bias": {"0": -100, "1": -100, "2": -100}});
    let mut s = send(addr, "POST", "/v1/completions", body.to_string().as_bytes());
    // Read until the first token's chunk has come: the request is running.
    let (mut got, mut buf) = (Vec::new(), [0u8; 512]);
    while !String::from_utf8_lossy(&got).contains("data: ") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "the stream ended: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    drop(s);
    let at_drop = request(addr, "GET", "/health", b"").json();
    let t0 = Instant::now();
    let h = loop {
        let h = request(addr, "GET", "/health", b"").json();
        if h["running"] == 0 && h["waiting"] == 0 {
            break h;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "slot still held: {h}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    // Cancelled, not finished: the engine counted it, and it stopped a
    // few steps after the client went away, far short of its length.
    assert_eq!(h["cancelled"], 1, "{h}");
    let steps = |h: &Value| h["steps"].as_u64().unwrap();
    assert!(
        steps(&h) - steps(&at_drop) <= 8,
        "{} steps after the disconnect: {at_drop} then {h}",
        steps(&h) - steps(&at_drop)
    );
    assert!(
        h["generated_tokens"].as_u64().unwrap() < max_tokens / 4,
        "{h}"
    );
}

#[test]
fn a_full_queue_refuses_with_503_and_accepted_requests_complete() {
    let addr = start(&["--max-batch", "1", "--max-queue", "1", "--ctx", "128"]);
    let body = json!({"prompt": "Count to fifty:", "max_tokens": 40, "temperature": 0});
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let (addr, body) = (addr.clone(), body.to_string());
            std::thread::spawn(move || request(&addr, "POST", "/v1/completions", body.as_bytes()))
        })
        .collect();
    let replies: Vec<Reply> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let ok = replies.iter().filter(|r| r.status == 200).count();
    let busy: Vec<&Reply> = replies.iter().filter(|r| r.status == 503).collect();
    assert_eq!(ok + busy.len(), 6, "only 200 or 503");
    assert!(
        ok >= 1 && !busy.is_empty(),
        "{ok} accepted, {} refused",
        busy.len()
    );
    assert_error(busy[0], 503, "queue_full");
    for r in replies.iter().filter(|r| r.status == 200) {
        let v = r.json();
        let n = v["usage"]["completion_tokens"].as_u64().unwrap();
        assert!((1..=40).contains(&n), "{v}");
        let finish = &v["choices"][0]["finish_reason"];
        assert!(finish == "stop" || (finish == "length" && n == 40), "{v}");
    }
}

#[test]
fn a_repeated_conversation_reads_its_prefix_from_the_cache() {
    // One slot, so the second request lands where the first one ended.
    let addr = start(&["--max-batch", "1", "--ctx", "256", "--prefill-chunk", "8"]);
    let body = json!({"messages": [
        {"role": "system", "content": "You are a careful assistant who answers in one sentence."},
        {"role": "user", "content": "Name a large river in Europe."}],
        "max_tokens": 10, "temperature": 0});
    let bytes = body.to_string();
    let first = request(&addr, "POST", "/v1/chat/completions", bytes.as_bytes()).json();
    let h1 = request(&addr, "GET", "/health", b"").json();
    assert_eq!(h1["cached_prompt_tokens"], 0, "{h1}");
    let second = request(&addr, "POST", "/v1/chat/completions", bytes.as_bytes()).json();
    let h2 = request(&addr, "GET", "/health", b"").json();
    let prompt = first["usage"]["prompt_tokens"].as_u64().unwrap();
    // The server runs SmolLM2's Q4_1 summed by block, whose rows do not
    // depend on the chunking (`LanguageModel::chunking_free`): every token
    // but the last, which is read for its logits, and not just the whole
    // chunks of eight before it.
    let cached = h2["cached_prompt_tokens"].as_u64().unwrap();
    assert_eq!(cached, prompt - 1, "{h2}");
    assert_eq!(
        h2["prompt_tokens"].as_u64().unwrap(),
        2 * prompt - cached,
        "{h2}"
    );
    assert_eq!(first["choices"], second["choices"]);
    let details = |v: &Value| v["usage"]["prompt_tokens_details"]["cached_tokens"].clone();
    assert_eq!(details(&first), 0, "{first}");
    assert_eq!(details(&second), cached, "{second}");
    for field in ["prompt_tokens", "completion_tokens"] {
        assert_eq!(first["usage"][field], second["usage"][field]);
    }
    // Streamed, with usage: the same count in the last chunk.
    let mut streamed = body;
    streamed["stream"] = json!(true);
    streamed["stream_options"] = json!({"include_usage": true});
    let r = request(
        &addr,
        "POST",
        "/v1/chat/completions",
        streamed.to_string().as_bytes(),
    );
    let events = r.events();
    let last: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    assert_eq!(details(&last), cached, "{last}");
}

#[test]
fn a_logit_bias_of_minus_100_on_the_greedy_token_changes_the_reply() {
    let body = json!({"prompt": "The capital of France is", "max_tokens": 4, "temperature": 0,
                      "logprobs": 0});
    let plain = post("/v1/completions", body.clone());
    assert_eq!(plain.status, 200, "{}", plain.body);
    let plain = plain.json();
    let first = plain["choices"][0]["logprobs"]["tokens"][0]
        .as_str()
        .unwrap()
        .to_string();
    // The first token's id, from the model's own tokenizer.
    let gguf = model::gguf::GgufFile::open(smollm2_path()).unwrap();
    let tok = model::tokenizer::Tokenizer::from_gguf(&gguf).unwrap();
    let id = match tok.encode(&first).as_slice() {
        [id] => *id,
        other => panic!("{first:?} is not one token: {other:?}"),
    };
    assert_eq!(tok.decode(&[id]), first);
    let mut biased = body;
    biased["logit_bias"] = json!({ id.to_string(): -100 });
    let r = post("/v1/completions", biased);
    assert_eq!(r.status, 200, "{}", r.body);
    let r = r.json();
    let tokens = &r["choices"][0]["logprobs"]["tokens"];
    assert_ne!(tokens[0].as_str().unwrap(), first, "{r}");
    assert_ne!(r["choices"][0]["text"], plain["choices"][0]["text"], "{r}");
}

/// `infer bench-serve` (the load script's clients) run in-process against
/// a server of its own; returns the JSON report.
fn bench_serve(addr: &str, args: &[&str]) -> anyhow::Result<Value> {
    let url = format!("http://{addr}");
    let mut argv = vec!["infer", "bench-serve", "--url", &url];
    argv.extend_from_slice(args);
    let mut out = Vec::new();
    infer::run(infer::Cli::try_parse_from(&argv)?, &mut out)?;
    Ok(serde_json::from_slice(&out)?)
}

#[test]
fn bench_serve_drives_the_server_and_every_request_completes() {
    let addr = start(&["--max-batch", "2", "--ctx", "128"]);
    for (endpoint, extra) in [("chat", None), ("completions", Some("--vary"))] {
        let mut args = vec![
            "--clients",
            "3",
            "--seconds",
            "1.5",
            "--max-tokens",
            "6",
            "--endpoint",
            endpoint,
        ];
        args.extend(extra);
        let r = bench_serve(&addr, &args).expect("bench-serve");
        let count = |k: &str| r[k].as_u64().unwrap_or_else(|| panic!("{k} in {r}"));
        // Three clients for 1.5 s, each request at most six tokens: each
        // client finishes several, and every one the server took completes
        // (two slots: a third request waits in the queue, not refused).
        assert!(count("requests") >= 3, "{r}");
        assert_eq!(count("incomplete"), 0, "{r}");
        assert_eq!(count("refused"), 0, "{r}");
        let f = |k: &str| r[k].as_f64().unwrap_or_else(|| panic!("{k} in {r}"));
        assert!(f("tok_per_s") > 0.0 && f("ttft_ms_p50") > 0.0, "{r}");
        assert!(f("itl_ms_p99") >= f("itl_ms_p50"), "{r}");
    }
}

#[test]
fn bench_serve_refuses_other_hosts_and_bad_counts() {
    for args in [
        &["--url", "http://192.0.2.1:8080"][..],
        &["--url", "http://127.0.0.1:8080", "--clients", "0"],
        &["--url", "http://127.0.0.1:8080", "--clients", "65"],
        &["--url", "http://127.0.0.1:8080", "--seconds", "0"],
    ] {
        let mut argv = vec!["infer", "bench-serve"];
        argv.extend_from_slice(args);
        let cli = infer::Cli::try_parse_from(&argv).expect("parses");
        let err = infer::run(cli, &mut Vec::new()).expect_err("refused");
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn a_server_with_an_api_key_answers_only_requests_that_bring_it() {
    let addr = start(&[
        "--max-batch",
        "1",
        "--ctx",
        "128",
        "--api-key",
        "sk-local-test",
    ]);
    let body = json!({"prompt": "Hi", "max_tokens": 2}).to_string();
    let post = |fields: &[(&str, &str)]| {
        request_with(&addr, "POST", "/v1/completions", fields, body.as_bytes())
    };
    assert_error(&post(&[]), 401, "invalid_api_key");
    assert_error(
        &post(&[("Authorization", "Bearer sk-local-tesT")]),
        401,
        "invalid_api_key",
    );
    assert_error(
        &post(&[("Authorization", "sk-local-test")]),
        401,
        "invalid_api_key",
    );
    let ok = post(&[("Authorization", "Bearer sk-local-test")]);
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.json()["usage"]["completion_tokens"], 2);
    // Every other route needs it too; the health check does not.
    assert_error(
        &request(&addr, "GET", "/v1/models", b""),
        401,
        "invalid_api_key",
    );
    let m = request_with(
        &addr,
        "GET",
        "/v1/models",
        &[("Authorization", "Bearer sk-local-test")],
        b"",
    );
    assert_eq!(m.status, 200, "{}", m.body);
    assert_eq!(request(&addr, "GET", "/health", b"").status, 200);
    // The load clients bring it when told, and stop with an error when not.
    let args = ["--clients", "1", "--seconds", "0.5", "--max-tokens", "4"];
    let keyed = [&args[..], &["--api-key", "sk-local-test"]].concat();
    let report = bench_serve(&addr, &keyed).expect("bench-serve with the key");
    assert!(report["requests"].as_u64() > Some(0), "{report}");
    // The pool's empty hand-off beside the rates (none on one thread).
    let threads = engine::threads::num_threads();
    assert_eq!(report["hand_off_us"].is_f64(), threads > 1, "{report}");
    assert_eq!(report["incomplete"], 0, "{report}");
    let err = bench_serve(&addr, &args).unwrap_err();
    assert!(format!("{err:#}").contains("401"), "{err:#}");
    // An empty key is refused at the start.
    let model = smollm2_path().display().to_string();
    let cli = infer::Cli::try_parse_from(["infer", "serve", "--model", &model, "--api-key", " "])
        .unwrap();
    let err = infer::run(cli, &mut Vec::new()).unwrap_err();
    assert!(format!("{err:#}").contains("--api-key"), "{err:#}");
}

#[test]
fn metrics_give_the_health_counters_in_prometheus_format() {
    let addr = start(&["--max-batch", "1", "--ctx", "128"]);
    let body = json!({"prompt": "The capital of France is", "max_tokens": 5, "temperature": 0});
    let r = request(
        &addr,
        "POST",
        "/v1/completions",
        body.to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let h = request(&addr, "GET", "/health", b"").json();
    let m = request(&addr, "GET", "/metrics", b"");
    assert_eq!(m.status, 200);
    assert!(
        m.headers
            .contains("content-type: text/plain; version=0.0.4"),
        "{}",
        m.headers
    );
    let value = |name: &str| -> u64 {
        m.body
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {}", m.body))
    };
    assert_eq!(value("infer_slots"), 1);
    assert_eq!(value("infer_requests_running"), 0);
    assert_eq!(value("infer_generated_tokens_total"), h["generated_tokens"]);
    assert_eq!(value("infer_generated_tokens_total"), 5);
    assert_eq!(value("infer_steps_total"), h["steps"]);
    assert_eq!(value("infer_prompt_tokens_total"), h["prompt_tokens"]);
}
