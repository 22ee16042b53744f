//! `infer`: the command-line front end of Inference from Scratch.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    infer::run(infer::Cli::parse(), &mut stdout)
}
