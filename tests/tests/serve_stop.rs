//! `infer serve` stops cleanly on SIGTERM (what a service manager or a
//! container runtime sends): the requests it has accepted, a stream under
//! way and a whole completion still waiting for the one slot, finish in
//! full, new connections are refused, and the server returns without an
//! error. A test binary of its own, because the signal
//! goes to the whole process. Needs the model.

#![cfg(unix)]

use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use integration_tests::serve_client::{read_reply, request, send, start_server};
use serde_json::{Value, json};

/// Poll `ok` every 20 ms for at most `secs` seconds.
fn wait_for(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !ok() {
        assert!(
            t0.elapsed() < Duration::from_secs(secs),
            "waited {secs} s for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_finishes_the_requests_under_way_then_stops() {
    let (addr, server) = start_server(&["--max-batch", "1", "--ctx", "512"]);
    // A stream of 300 tokens, read up to its first event.
    let body = json!({"prompt": "Once upon a time", "max_tokens": 300, "temperature": 0,
                      "stream": true, "stream_options": {"include_usage": true}});
    let mut stream = send(
        &addr,
        "POST",
        "/v1/completions",
        body.to_string().as_bytes(),
    );
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&raw).contains("data: ") {
        let n = stream.read(&mut buf).expect("the stream starts");
        assert!(n > 0, "the stream ended before its first event");
        raw.extend_from_slice(&buf[..n]);
    }
    // And a whole completion, from another thread, which waits for the
    // slot.
    let whole = {
        let addr = addr.clone();
        let body = json!({"prompt": "Once upon a time", "max_tokens": 200, "temperature": 0});
        std::thread::spawn(move || {
            request(
                &addr,
                "POST",
                "/v1/completions",
                body.to_string().as_bytes(),
            )
        })
    };
    wait_for("the second request to wait", 60, || {
        request(&addr, "GET", "/health", b"").json()["waiting"] == 1
    });

    // SAFETY: kill(2) on this process with SIGTERM, whose handler the
    // server installed before it printed its address; no memory is shared.
    let sent = unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
    assert_eq!(sent, 0, "kill: {}", std::io::Error::last_os_error());

    wait_for("new connections to be refused", 30, || {
        TcpStream::connect(&addr).is_err()
    });
    let streamed = read_reply(stream, raw);
    assert_eq!(streamed.status, 200);
    let events = streamed.events();
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "{}",
        streamed.body
    );
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).expect("a JSON event"))
        .collect();
    let usage = chunks.last().expect("a usage chunk");
    assert_eq!(usage["usage"]["completion_tokens"], 300, "{usage}");
    let whole = whole.join().expect("the whole request's thread");
    assert_eq!(whole.status, 200, "{}", whole.body);
    assert_eq!(whole.json()["usage"]["completion_tokens"], 200);
    assert_eq!(whole.json()["choices"][0]["finish_reason"], "length");
    server.join().expect("the server stops without an error");
}
