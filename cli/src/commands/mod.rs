//! One file per subcommand.

pub mod bench;
pub mod bench_batch;
pub mod chat;
pub mod generate;
pub mod inspect;
pub mod perplexity;
pub mod quantize;
pub mod tokenize;
