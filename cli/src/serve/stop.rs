//! How `infer serve` stops. At the first SIGINT (Ctrl-C) or SIGTERM (what a
//! service manager or a container runtime sends) it stops accepting
//! connections and finishes every request under way, those still waiting
//! for a slot included, then returns; nothing it accepted is lost. A second
//! signal ends the process at once.

use anyhow::{Context, Result};

/// The process's stop signals, listened for from the moment this is made,
/// so that none sent after the server has printed its address is missed.
pub struct StopSignals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// Start listening (inside a tokio runtime).
    ///
    /// # Errors
    /// If the operating system refuses the signal handlers.
    pub fn listen() -> Result<StopSignals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(StopSignals {
                int: signal(SignalKind::interrupt()).context("listening for SIGINT")?,
                term: signal(SignalKind::terminate()).context("listening for SIGTERM")?,
            })
        }
        #[cfg(not(unix))]
        Ok(StopSignals {})
    }

    // ANCHOR: first
    /// Resolves at the first signal, and from then on ends the process at
    /// the next one (with the shell's code for it: 128 + its number).
    pub async fn first(mut self) {
        let (name, _) = self.next().await;
        eprintln!("[{name}: finishing the requests under way; send it again to stop at once]");
        tokio::spawn(async move {
            let (name, code) = self.next().await;
            eprintln!("[{name} again: stopping now]");
            std::process::exit(code);
        });
    }
    // ANCHOR_END: first

    /// The next signal's name and exit code.
    async fn next(&mut self) -> (&'static str, i32) {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.int.recv() => ("SIGINT", 130),
                _ = self.term.recv() => ("SIGTERM", 143),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            ("Ctrl-C", 130)
        }
    }
}
