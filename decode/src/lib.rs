//! # decode
//!
//! Model-agnostic decoding: logits processors, greedy, beam search,
//! sampling, stop conditions and streaming, plus post-processing
//! (non-maximum suppression, calibration, thresholds).
//!
//! Nothing here names a concrete model: strategies drive anything that
//! implements [`LanguageModel`], and text comes from anything that
//! implements [`Detokenize`].
//!
//! The pipeline for one step: logits → [`LogitsChain`] (penalties, then the
//! warpers in a [`ProcessorOrder`]) → [`greedy_choice`] or
//! [`sample_from_logits`]. [`beam_search`] runs the penalties on log-probs
//! as Hugging Face does.
#![deny(missing_docs)]

pub mod beam;
mod cdf;
pub mod chain;
pub mod detok;
pub mod error;
pub mod explain;
pub mod generate;
pub mod greedy;
pub mod lm;
pub mod output;
pub mod params;
pub mod penalties;
pub mod perplexity;
pub mod post;
pub mod probs;
pub mod processor;
pub mod processors;
pub mod prompt_cache;
pub mod run;
pub mod sample;
pub mod scheduler;
mod sequence;
pub mod stop;
pub mod sweep;
pub mod toy;
mod widest;

pub use beam::{BeamHypothesis, beam_search};
pub use chain::{ChainTrace, LogitsChain, ProcessorOrder, SamplingParams};
pub use detok::{Detokenize, Utf8Stream};
pub use error::DecodeError;
pub use explain::{ExplainRow, ExplainStep};
pub use generate::{Generation, Generator, collect_steps, generate, generate_batch};
pub use greedy::greedy_choice;
pub use lm::{LanguageModel, ModelError};
pub use output::{StepOutput, TokenOutput};
pub use params::{BeamParams, EarlyStopping, FinishReason, GenerateParams, Strategy};
pub use penalties::PenaltyScope;
pub use processor::{LogitsProcessor, Stage, TokenHistory};
pub use run::{Outcome, run};
pub use sample::{sample_from_logits, sample_with_logprob, seeded_rng};
pub use scheduler::{
    Event, Request, RequestId, Scheduler, SchedulerConfig, SchedulerStats, SubmitError,
};
pub use stop::StopMatcher;
