//! `infer serve` in this process, driven over plain HTTP/1.1 on
//! 127.0.0.1: starting a server on a free port, sending requests, and
//! reading replies and server-sent events (for the tests of `serve_http`
//! and `serve_stop`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread::JoinHandle;
use std::time::Duration;

use clap::Parser;
use serde_json::Value;

use crate::smollm2_path;

/// Forwards what the server prints to a channel (its first line is the address).
struct LineSink(std::sync::mpsc::Sender<String>);

impl Write for LineSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = self.0.send(String::from_utf8_lossy(buf).into_owned());
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Start `infer serve` with `args` on a free port, on a thread of its own;
/// returns `host:port` and the thread, which ends when the server stops
/// (and panics if it stops with an error).
pub fn start_server(args: &[&str]) -> (String, JoinHandle<()>) {
    let model = smollm2_path().display().to_string();
    let mut argv = vec!["infer", "serve", "--port", "0", "--model", &model];
    argv.extend_from_slice(args);
    let cli = infer::Cli::try_parse_from(&argv).expect("serve arguments");
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let mut sink = LineSink(tx);
        if let Err(e) = infer::run(cli, &mut sink) {
            panic!("infer serve: {e:#}");
        }
    });
    let mut line = String::new();
    while !line.contains('\n') {
        line += &rx
            .recv_timeout(Duration::from_secs(120))
            .expect("the server prints its address");
    }
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (addr, thread)
}

/// A response: status, headers (lower-case names), body (de-chunked).
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The head, lower-cased.
    pub headers: String,
    /// The body, de-chunked.
    pub body: String,
}

impl Reply {
    /// The body as JSON (panics if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body))
    }

    /// The `data:` payloads of a server-sent event stream.
    pub fn events(&self) -> Vec<String> {
        self.body
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .map(str::to_string)
            .collect()
    }
}

/// Send one request (`Connection: close`) and return the open stream.
pub fn send(addr: &str, method: &str, path: &str, body: &[u8]) -> TcpStream {
    send_with(addr, method, path, &[], body)
}

/// [`send`] with more header fields, `(name, value)`.
pub fn send_with(
    addr: &str,
    method: &str,
    path: &str,
    fields: &[(&str, &str)],
    body: &[u8],
) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let extra: String = fields
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         {extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    // A server may answer (413) before reading a large body; ignore a reset.
    let _ = s.write_all(body);
    s
}

/// The payload of a chunked body.
fn dechunk(mut raw: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = raw.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        raw = &rest[n + 2..];
    }
    out
}

/// Send one request and read the whole reply.
pub fn request(addr: &str, method: &str, path: &str, body: &[u8]) -> Reply {
    read_reply(send(addr, method, path, body), Vec::new())
}

/// [`request`] with more header fields, `(name, value)`.
pub fn request_with(
    addr: &str,
    method: &str,
    path: &str,
    fields: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    read_reply(send_with(addr, method, path, fields, body), Vec::new())
}

/// The rest of a reply on `s`, after the bytes `raw` already read from it.
pub fn read_reply(mut s: TcpStream, mut raw: Vec<u8>) -> Reply {
    let _ = s.read_to_end(&mut raw);
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"));
    let headers = head.to_ascii_lowercase();
    let body = if headers.contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_string()
    };
    Reply {
        status,
        headers,
        body,
    }
}
