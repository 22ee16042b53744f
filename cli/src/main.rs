//! `infer`: the command-line front end of Inference from Scratch.

use std::process::ExitCode;

use clap::Parser;

/// Large buffers (weights, the KV cache) on cache-line boundaries, where
/// the kernels' wide loads read them fastest (`engine::alloc`).
#[global_allocator]
static ALLOC: engine::alloc::LineAligned = engine::alloc::LineAligned;

fn main() -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match infer::run(infer::Cli::parse(), &mut stdout) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The message and its causes, one line: no backtrace for a user error.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
