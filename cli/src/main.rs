//! `infer`: the command-line front end of Inference from Scratch.

use std::process::ExitCode;

use clap::Parser;

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
