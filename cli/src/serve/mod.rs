//! `infer serve`: an OpenAI-compatible HTTP server over the library's
//! continuous-batching scheduler.
//!
//! One engine thread owns the model and steps the [`decode::Scheduler`];
//! HTTP runs on a small tokio runtime (axum) beside it. Endpoints:
//! `POST /v1/completions`, `POST /v1/chat/completions` (each whole or
//! streamed as server-sent events), `GET /v1/models`, `GET /health`, and
//! `GET /metrics` (Prometheus's text format).

pub mod api;
pub mod engine;
pub mod error;
pub mod metrics;
pub mod respond;
pub mod routes;
pub mod stop;

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use anyhow::{Context, Result, bail};
use clap::Args;
use decode::SchedulerConfig;

use crate::loader::ModelArgs;

/// Arguments of `infer serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on: an IPv4 or IPv6 address, or `localhost`
    /// (loopback by default; beyond it, give the server a key with
    /// `--api-key`).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// A key every request must bring as `Authorization: Bearer KEY` (what
    /// OpenAI's clients send as their `api_key`); `/health` stays open.
    /// Without one the server answers anyone who can reach it. The
    /// `INFER_API_KEY` environment variable keeps it out of the process
    /// list.
    #[arg(long, env = "INFER_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Port to listen on (0 picks a free one; the address is printed).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Most requests decoding at once (sequence slots in the KV cache).
    #[arg(long, default_value_t = 8)]
    pub max_batch: usize,
    /// Most requests waiting for a slot; more get 503.
    #[arg(long, default_value_t = 64)]
    pub max_queue: usize,
    /// Prompt tokens read per step (prompts are cut into chunks of this
    /// size, one chunk per step, so a new prompt delays the running
    /// requests' next tokens by one chunk's work). Small chunks keep the
    /// streams smooth; large ones read a long prompt sooner (a 1,024-token
    /// prompt alone: about a fifth longer at 16 than at 256 on two cores).
    #[arg(long, default_value_t = 16)]
    pub prefill_chunk: usize,
    /// Model, threads, context (`--ctx` is per request).
    #[command(flatten)]
    pub model: ModelArgs,
}

/// The address `--host` names: an IPv4 or IPv6 address (`::1` or
/// `[::1]`), or `localhost` for 127.0.0.1.
///
/// # Errors
/// Anything else, with what was given.
fn host_ip(host: &str) -> Result<IpAddr> {
    if host == "localhost" {
        return Ok(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
    bare.unwrap_or(host).parse().with_context(|| {
        format!(
            "--host {host:?} is not an IP address (such as 127.0.0.1, 0.0.0.0, ::1) or localhost"
        )
    })
}

/// Run the server until interrupted ([`stop`]: the requests under way
/// finish first). Prints `listening on http://ADDR` on `out` once it
/// accepts connections.
///
/// # Errors
/// Bad arguments, a model that does not load, an address that cannot be bound.
pub fn run(a: &ServeArgs, out: &mut dyn Write) -> Result<()> {
    if a.max_batch == 0 || a.max_queue == 0 || a.prefill_chunk == 0 {
        bail!("--max-batch, --max-queue and --prefill-chunk must be at least 1");
    }
    if a.api_key.as_deref().is_some_and(|k| k.trim().is_empty()) {
        bail!("--api-key (or INFER_API_KEY) must not be empty");
    }
    let config = SchedulerConfig {
        max_queue: a.max_queue,
        prefill_chunk: a.prefill_chunk,
        prefill_budget: a.prefill_chunk,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the HTTP runtime")?;
    let (engine, info) = engine::start(
        a.model
            .clone()
            .sum_order_or(::engine::quant::SumOrder::Block),
        a.max_batch,
        config,
        rt.handle(),
    )?;
    let state = routes::AppState {
        engine,
        info: Arc::new(info),
        next_id: Arc::new(AtomicU64::new(0)),
        api_key: a.api_key.as_deref().map(Arc::from),
    };
    rt.block_on(async {
        let stop = stop::StopSignals::listen()?;
        let addr = SocketAddr::new(host_ip(&a.host)?, a.port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        let local = listener.local_addr()?;
        if !local.ip().is_loopback() && state.api_key.is_none() {
            eprintln!(
                "[warning: listening on {} without --api-key: anyone who can reach it can use it]",
                local.ip()
            );
        }
        writeln!(out, "listening on http://{local}")?;
        out.flush()?;
        eprintln!(
            "[serving {} with {} slots of {} positions; Ctrl-C or SIGTERM stops, \
             after the requests under way]",
            state.info.name, state.info.slots, state.info.ctx
        );
        axum::serve(listener, routes::router(state))
            .with_graceful_shutdown(stop.first())
            .await
            .context("serving")?;
        eprintln!("[stopped]");
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::host_ip;

    #[test]
    fn hosts_are_ip_addresses_of_either_family_or_localhost() {
        for (host, ip) in [
            ("127.0.0.1", "127.0.0.1"),
            ("0.0.0.0", "0.0.0.0"),
            ("::1", "::1"),
            ("[::1]", "::1"),
            ("localhost", "127.0.0.1"),
        ] {
            assert_eq!(host_ip(host).unwrap().to_string(), ip, "{host}");
        }
        for bad in ["", "example.com", "127.0.0.1:80", "[::1", "::1]"] {
            let e = format!("{:#}", host_ip(bad).unwrap_err());
            assert!(e.contains("--host") && e.contains(bad), "{bad}: {e}");
        }
    }
}
