//! Everything a decoding run is told: the strategy, the logits pipeline,
//! the limits and stop conditions, and the one check of all of them
//! ([`GenerateParams::validate`]) that every way in runs.

use crate::chain::{LogitsChain, SamplingParams};
use crate::error::DecodeError;

/// How the next token is chosen.
#[derive(Debug, Clone, PartialEq)]
pub enum Strategy {
    /// Always the most likely token (after the penalties).
    Greedy,
    /// Draw from the processed distribution with a ChaCha RNG seeded by `seed`.
    Sample {
        /// RNG seed; the same seed gives the same tokens on every platform.
        seed: u64,
    },
    /// Beam search (see [`crate::beam`]): whole hypotheses, not a stream.
    Beam(BeamParams),
}

impl Strategy {
    /// True for the strategies that pick one token per step and can stream
    /// (greedy and sampling); beam search returns whole hypotheses.
    pub fn streams(&self) -> bool {
        !matches!(self, Strategy::Beam(_))
    }
}

/// When beam search may stop before the length limit (Hugging Face's
/// `early_stopping`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EarlyStopping {
    /// HF `True`: stop as soon as `num_beams` finished hypotheses exist.
    WhenFull,
    /// HF `False` (the default): stop when the best running beam, scored as
    /// if it ended now, cannot beat the worst finished one.
    #[default]
    Heuristic,
    /// HF `"never"`: as `Heuristic`, but with a positive length penalty the
    /// running beam is scored at the maximum length (the canonical,
    /// exhaustive stopping rule).
    Never,
}

/// Beam-search settings.
#[derive(Debug, Clone, PartialEq)]
pub struct BeamParams {
    /// Beam width (>= 1; the model needs this many slots).
    pub num_beams: usize,
    /// Exponent α in `score = sum_logprobs / len^α` (len = generated tokens,
    /// EOS included). 0 ranks by the raw sum; > 0 favours longer outputs.
    pub length_penalty: f32,
    /// When to stop.
    pub early_stopping: EarlyStopping,
    /// How many finished hypotheses to return (1..=num_beams).
    pub num_return_sequences: usize,
    /// Diverse beam search: split the beams into this many groups
    /// (must divide `num_beams`; 1 = ordinary beam search).
    pub num_beam_groups: usize,
    /// Diverse beam search: at each step, a group's log-prob for a token is
    /// lowered by `diversity_penalty ×` the number of earlier groups' beams
    /// that chose that token at this step (Hamming diversity). >= 0.
    pub diversity_penalty: f32,
}

impl Default for BeamParams {
    fn default() -> Self {
        BeamParams {
            num_beams: 4,
            length_penalty: 1.0,
            early_stopping: EarlyStopping::Heuristic,
            num_return_sequences: 1,
            num_beam_groups: 1,
            diversity_penalty: 0.0,
        }
    }
}

impl BeamParams {
    /// Check the beam settings on their own.
    ///
    /// # Errors
    /// [`DecodeError::InvalidParameter`] naming the first bad field.
    pub fn validate(&self) -> Result<(), DecodeError> {
        let nb = self.num_beams;
        if nb == 0 {
            return Err(DecodeError::param("num_beams", nb, "must be >= 1"));
        }
        if self.num_return_sequences == 0 || self.num_return_sequences > nb {
            return Err(DecodeError::param(
                "num_return_sequences",
                self.num_return_sequences,
                "must be in 1..=num_beams",
            ));
        }
        if self.num_beam_groups == 0 || !nb.is_multiple_of(self.num_beam_groups) {
            return Err(DecodeError::param(
                "num_beam_groups",
                self.num_beam_groups,
                "must be >= 1 and divide num_beams",
            ));
        }
        if !(self.diversity_penalty.is_finite() && self.diversity_penalty >= 0.0) {
            return Err(DecodeError::param(
                "diversity_penalty",
                self.diversity_penalty,
                "must be a finite number >= 0",
            ));
        }
        if !self.length_penalty.is_finite() {
            return Err(DecodeError::param(
                "length_penalty",
                self.length_penalty,
                "must be finite",
            ));
        }
        Ok(())
    }
}

/// Everything a generation run needs besides the model and the prompt.
#[derive(Debug, Clone)]
pub struct GenerateParams {
    /// Greedy, sampling or beam.
    pub strategy: Strategy,
    /// The logits pipeline. With [`Strategy::Sample`] and `temperature == 0`
    /// the run is greedy (explicitly, not by dividing by zero). Greedy runs
    /// ignore the warpers; beam search runs the penalties on log-probs.
    pub sampling: SamplingParams,
    /// Stop after this many generated tokens.
    pub max_new_tokens: usize,
    /// Tokens that end generation (they are kept in the token list, never in the text).
    pub eos_ids: Vec<u32>,
    /// Strings that end generation when they appear in the decoded text;
    /// the stop string and anything after it are not emitted.
    pub stop_strings: Vec<String>,
    /// Report this many most likely alternatives (with log-probs) per token.
    pub top_logprobs: usize,
    /// Record an explain table per step with this many leading candidates (0 = off).
    pub explain_top: usize,
}

impl Default for GenerateParams {
    fn default() -> Self {
        GenerateParams {
            strategy: Strategy::Greedy,
            sampling: SamplingParams::default(),
            max_new_tokens: 32,
            eos_ids: Vec::new(),
            stop_strings: Vec::new(),
            top_logprobs: 0,
            explain_top: 0,
        }
    }
}

/// The logits pipeline of a validated token-by-token run, and how it picks.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// Penalties, then (when sampling) the warpers.
    pub chain: LogitsChain,
    /// Pick the arg-max (greedy, or sampling at temperature 0).
    pub greedy: bool,
    /// The sampling seed (unused when greedy).
    pub seed: u64,
    /// The parameters it was built from.
    pub params: GenerateParams,
}

impl GenerateParams {
    /// The one check of a run's parameters, whatever the strategy: every
    /// processor's range (a temperature below 0, top-p outside (0, 1], a
    /// negative penalty …, even when the strategy will not use it), the
    /// beam settings, and that beam search has a token to generate.
    ///
    /// # Errors
    /// [`DecodeError::InvalidParameter`] naming the first bad field.
    pub fn validate(&self) -> Result<(), DecodeError> {
        let mut check = self.sampling.clone();
        if check.temperature == 0.0 {
            check.temperature = 1.0;
        }
        check.build_chain(&self.eos_ids, true)?;
        if let Strategy::Beam(b) = &self.strategy {
            b.validate()?;
            if self.max_new_tokens == 0 {
                return Err(DecodeError::param(
                    "max_new_tokens",
                    0,
                    "beam search needs at least 1",
                ));
            }
            // Per-token alternatives and explain tables describe one path
            // chosen token by token; a beam's hypotheses carry their scores.
            if self.top_logprobs > 0 {
                return Err(DecodeError::param(
                    "top_logprobs",
                    self.top_logprobs,
                    "applies to greedy and sampling runs, not beam search (each hypothesis carries its score)",
                ));
            }
            if self.explain_top > 0 {
                return Err(DecodeError::param(
                    "explain_top",
                    self.explain_top,
                    "applies to greedy and sampling runs, not beam search",
                ));
            }
        }
        Ok(())
    }

    /// Validate, and build the pipeline of a streaming (greedy or sampling)
    /// run; `None` for beam search.
    pub(crate) fn prepare(&self) -> Result<Option<Prepared>, DecodeError> {
        self.validate()?;
        let (greedy, seed) = match self.strategy {
            Strategy::Greedy => (true, 0),
            // ANCHOR: temperature_zero
            Strategy::Sample { seed } if self.sampling.temperature == 0.0 => (true, seed),
            // ANCHOR_END: temperature_zero
            Strategy::Sample { seed } => (false, seed),
            Strategy::Beam(_) => return Ok(None),
        };
        let mut sampling = self.sampling.clone();
        if greedy {
            sampling.temperature = 1.0;
        }
        let chain = sampling.build_chain(&self.eos_ids, !greedy)?;
        Ok(Some(Prepared {
            chain,
            greedy,
            seed,
            params: self.clone(),
        }))
    }
}

/// [`GenerateParams::prepare`] for a run that must stream.
pub(crate) fn stream_plan(params: &GenerateParams) -> Result<Prepared, DecodeError> {
    params.prepare()?.ok_or_else(|| {
        DecodeError::param(
            "strategy",
            "beam",
            "beam search returns whole hypotheses and cannot stream; run it with decode::run",
        )
    })
}

/// Why generation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinishReason {
    /// `max_new_tokens` were generated.
    MaxNewTokens,
    /// An end-of-sequence token was chosen.
    Eos(u32),
    /// A stop string appeared in the text.
    StopString(String),
    /// The model's context (`max_seq_len`) is full.
    ContextFull,
    /// The caller cancelled the request (a client went away).
    Cancelled,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_covers_every_strategy() {
        let mut p = GenerateParams::default();
        assert!(p.validate().is_ok());
        p.sampling.top_p = 1.5;
        assert!(p.validate().is_err(), "warpers are checked even for greedy");
        p.sampling.top_p = 1.0;
        p.strategy = Strategy::Beam(BeamParams {
            num_beams: 4,
            num_beam_groups: 3,
            ..Default::default()
        });
        let e = p.validate().unwrap_err().to_string();
        assert!(e.contains("num_beam_groups"), "{e}");
        p.strategy = Strategy::Beam(BeamParams::default());
        p.max_new_tokens = 0;
        assert!(p.validate().is_err());
        p.max_new_tokens = 8;
        assert!(p.validate().is_ok());
        p.top_logprobs = 2;
        let e = p.validate().unwrap_err().to_string();
        assert!(e.contains("top_logprobs"), "{e}");
        p.top_logprobs = 0;
        p.explain_top = 5;
        let e = p.validate().unwrap_err().to_string();
        assert!(e.contains("explain_top"), "{e}");
        p.explain_top = 0;
        p.strategy = Strategy::Sample { seed: 1 };
        p.sampling.temperature = 0.0;
        let prep = p.prepare().unwrap().unwrap();
        assert!(prep.greedy, "temperature 0 samples greedily");
    }
}
