//! # Build it yourself
//!
//! Eight graded steps, from tensor strides to beam search. Each file
//! `src/stepN_*.rs` holds the signatures of what you write, with bodies of
//! `todo!()`; each `tests/stepN_*.rs` checks your code against the
//! project's reference fixtures (PyTorch and `transformers` outputs,
//! Hugging Face tokenizer ids and beam ids). The book's page "Build it
//! yourself" (`book/src/exercises.md`) walks through them.
//!
//! ```text
//! cargo test --release --test step1_strides    # one step
//! cargo test --release                         # all of them
//! ```
//!
//! The feature `solution` swaps every step for the project's own
//! implementation (the files under `src/solution/`, each a thin call into
//! the crates); `scripts/check-exercises.sh` checks that every step passes
//! with it and fails without it.
#![deny(missing_docs)]

pub mod support;

// Until you fill them in, the stubs leave their parameters unused.
#[cfg_attr(feature = "solution", path = "solution/step1_strides.rs")]
#[cfg_attr(not(feature = "solution"), allow(unused_variables))]
pub mod step1_strides;

#[cfg_attr(feature = "solution", path = "solution/step2_softmax.rs")]
#[cfg_attr(not(feature = "solution"), allow(unused_variables))]
pub mod step2_softmax;

#[cfg_attr(feature = "solution", path = "solution/step3_attention.rs")]
#[cfg_attr(not(feature = "solution"), allow(unused_variables))]
pub mod step3_attention;

#[cfg_attr(feature = "solution", path = "solution/step4_block.rs")]
#[cfg_attr(not(feature = "solution"), allow(unused_variables))]
pub mod step4_block;

#[cfg_attr(feature = "solution", path = "solution/step5_bpe.rs")]
#[cfg_attr(not(feature = "solution"), allow(unused_variables))]
pub mod step5_bpe;

#[cfg_attr(feature = "solution", path = "solution/step6_greedy.rs")]
#[cfg_attr(not(feature = "solution"), allow(unused_variables))]
pub mod step6_greedy;

#[cfg_attr(feature = "solution", path = "solution/step7_top_p.rs")]
#[cfg_attr(not(feature = "solution"), allow(unused_variables))]
pub mod step7_top_p;

#[cfg_attr(feature = "solution", path = "solution/step8_beam.rs")]
#[cfg_attr(not(feature = "solution"), allow(unused_variables))]
pub mod step8_beam;
