//! The `infer` command as a library: argument parsing and every subcommand,
//! writing to any `Write` so tests can run them in-process.
//!
//! `infer generate`, `infer chat`, `infer tokenize`, `infer inspect`,
//! `infer bench`, `infer bench-batch`, `infer bench-serve`, `infer
//! perplexity` and `infer quantize` each live in a file of their own under
//! `commands/`; `infer serve` lives under `serve/`.
#![deny(missing_docs)]

pub mod commands;
pub mod decoding_args;
pub mod generation;
pub mod loader;
pub mod serve;

use clap::{Parser, Subcommand};

/// Run small language models (SmolLM2, GPT-2) on the CPU, from scratch.
#[derive(Debug, Parser)]
#[command(name = "infer", version, about)]
pub struct Cli {
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Continue a prompt (greedy, sampling or beam search), streaming the text
    /// as it is generated.
    Generate(commands::generate::GenerateArgs),
    /// Talk to the model (chat template applied, KV cache kept across turns).
    Chat(commands::chat::ChatArgs),
    /// Show the token ids and pieces of a text.
    Tokenize(commands::tokenize::TokenizeArgs),
    /// Describe a model file: architecture, sizes, tensors, dtypes, KV-cache cost.
    Inspect(commands::inspect::InspectArgs),
    /// Measure prefill and decode speed, with and without the KV cache.
    Bench(commands::bench::BenchArgs),
    /// Measure continuous batching: aggregate tok/s and latencies at 1, 2,
    /// 4, 8, 16 concurrent requests (the library's scheduler, no HTTP).
    BenchBatch(commands::bench_batch::BenchBatchArgs),
    /// Drive a running server on loopback with concurrent streaming
    /// clients on one thread, and print its rate and latencies as JSON
    /// (`scripts/load-test.py` runs it for each client count).
    BenchServe(commands::bench_serve::BenchServeArgs),
    /// Score a text file's perplexity as llama.cpp's `llama-perplexity` does.
    Perplexity(commands::perplexity::PerplexityArgs),
    /// Write a GGUF file with every matrix converted to one dtype.
    Quantize(commands::quantize::QuantizeArgs),
    /// Serve the model over HTTP with the OpenAI API (continuous batching).
    Serve(serve::ServeArgs),
}

/// Run a parsed command line, writing its results to `out` (progress and
/// timing go to stderr).
///
/// # Errors
/// Whatever the subcommand reports (missing model, bad arguments, ...).
pub fn run(cli: Cli, out: &mut dyn std::io::Write) -> anyhow::Result<()> {
    match cli.command {
        Command::Generate(a) => commands::generate::run(&a, out),
        Command::Chat(a) => commands::chat::run(&a, out),
        Command::Tokenize(a) => commands::tokenize::run(&a, out),
        Command::Inspect(a) => commands::inspect::run(&a, out),
        Command::Bench(a) => commands::bench::run(&a, out),
        Command::BenchBatch(a) => commands::bench_batch::run(&a, out),
        Command::BenchServe(a) => commands::bench_serve::run(&a, out),
        Command::Perplexity(a) => commands::perplexity::run(&a, out),
        Command::Quantize(a) => commands::quantize::run(&a, out),
        Command::Serve(a) => serve::run(&a, out),
    }
}
