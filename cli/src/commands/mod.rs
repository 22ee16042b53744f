//! One file per subcommand.

pub mod bench;
pub mod bench_batch;
pub mod bench_serve;
pub mod chat;
pub mod generate;
pub mod inspect;
pub mod perplexity;
pub mod quantize;
pub mod tokenize;
