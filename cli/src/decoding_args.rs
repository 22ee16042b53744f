//! The decoding options of `infer generate` / `infer chat`, turned into
//! [`decode::GenerateParams`].

use clap::{Args, ValueEnum};
use decode::{
    BeamParams, DecodeError, EarlyStopping, GenerateParams, PenaltyScope, ProcessorOrder,
    SamplingParams, Strategy,
};

/// Which decoding strategy to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StrategyArg {
    /// Always the most likely token.
    Greedy,
    /// Draw from the processed distribution (seeded).
    Sample,
    /// Beam search.
    Beam,
}

/// Hugging Face's `early_stopping` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EarlyStoppingArg {
    /// Stop when `num_beams` hypotheses are finished.
    True,
    /// Stop when no running beam can beat the finished ones (heuristic).
    False,
    /// Stop only when no running beam could ever win (exhaustive).
    Never,
}

/// Order of the sampling warpers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OrderArg {
    /// Temperature, top-k, top-p, min-p, typical (Hugging Face).
    Hf,
    /// Top-k, typical, top-p, min-p, temperature last (llama.cpp).
    LlamaCpp,
}

/// Decoding options shared by the generating commands.
#[derive(Debug, Clone, Args)]
pub struct DecodingArgs {
    /// Decoding strategy.
    #[arg(long, value_enum, default_value_t = StrategyArg::Sample)]
    pub strategy: StrategyArg,
    /// Sampling temperature (> 0; 0 means greedy).
    #[arg(long, default_value_t = 0.7)]
    pub temperature: f32,
    /// Keep only the k most likely tokens (0 = off).
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// Nucleus sampling mass in (0, 1] (1 = off).
    #[arg(long, default_value_t = 0.9)]
    pub top_p: f32,
    /// Drop tokens below min-p × the top probability (0 = off).
    #[arg(long, default_value_t = 0.0)]
    pub min_p: f32,
    /// Locally typical sampling mass in (0, 1] (1 = off).
    #[arg(long, default_value_t = 1.0)]
    pub typical_p: f32,
    /// Order of the sampling steps.
    #[arg(long, value_enum, default_value_t = OrderArg::Hf)]
    pub order: OrderArg,
    /// CTRL/HF repetition penalty over prompt and output (1 = off).
    #[arg(long, default_value_t = 1.0)]
    pub repetition_penalty: f32,
    /// OpenAI frequency penalty over the output (0 = off).
    #[arg(long, default_value_t = 0.0)]
    pub frequency_penalty: f32,
    /// OpenAI presence penalty over the output (0 = off).
    #[arg(long, default_value_t = 0.0)]
    pub presence_penalty: f32,
    /// Make every penalty count only the last N tokens (llama.cpp style).
    #[arg(long)]
    pub penalty_last_n: Option<usize>,
    /// Never repeat an n-gram of this size (0 = off).
    #[arg(long, default_value_t = 0)]
    pub no_repeat_ngram: usize,
    /// Suppress end-of-sequence until this many tokens were generated.
    #[arg(long, default_value_t = 0)]
    pub min_new_tokens: usize,
    /// Beam width (with --strategy beam).
    #[arg(long, default_value_t = 4)]
    pub num_beams: usize,
    /// Beam length penalty α: score = sum of log-probs / length^α.
    #[arg(long, default_value_t = 1.0)]
    pub length_penalty: f32,
    /// Beam early stopping: true, false or never (Hugging Face meanings).
    #[arg(long, value_enum, default_value_t = EarlyStoppingArg::False)]
    pub early_stopping: EarlyStoppingArg,
    /// Number of beam hypotheses to print.
    #[arg(long, default_value_t = 1)]
    pub num_return_sequences: usize,
    /// Diverse beam search: number of beam groups (must divide --num-beams).
    #[arg(long, default_value_t = 1)]
    pub num_beam_groups: usize,
    /// Diverse beam search: penalty per earlier group choosing the same token.
    #[arg(long, default_value_t = 0.0)]
    pub diversity_penalty: f32,
    /// Stop when this text appears (repeatable); it is not printed.
    #[arg(long)]
    pub stop: Vec<String>,
    /// Random seed for sampling (same seed, same text).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Report the N most likely alternatives and their log-probs per token.
    #[arg(long, default_value_t = 0)]
    pub logprobs: usize,
    /// Print, per step, what every processor did to the leading candidates.
    #[arg(long)]
    pub explain: bool,
}

impl DecodingArgs {
    /// Build decode's parameters. `max_new_tokens` and `eos_ids` come from
    /// the command and the model. `--strategy sample --temperature 0` runs
    /// greedy (decode maps it explicitly).
    pub fn to_params(
        &self,
        max_new_tokens: usize,
        eos_ids: Vec<u32>,
    ) -> Result<GenerateParams, DecodeError> {
        let (rep_scope, freq_scope) = match self.penalty_last_n {
            Some(n) => (PenaltyScope::LastN(n), PenaltyScope::LastN(n)),
            None => (
                PenaltyScope::PromptAndGenerated,
                PenaltyScope::GeneratedOnly,
            ),
        };
        let greedy_like = self.strategy != StrategyArg::Sample;
        let sampling = SamplingParams {
            // Greedy and beam ignore the warpers; keep them valid so that
            // build_chain's checks pass whatever the sampling defaults are.
            temperature: if greedy_like { 1.0 } else { self.temperature },
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            typical_p: self.typical_p,
            repetition_penalty: self.repetition_penalty,
            repetition_scope: rep_scope,
            frequency_penalty: self.frequency_penalty,
            presence_penalty: self.presence_penalty,
            frequency_scope: freq_scope,
            no_repeat_ngram: self.no_repeat_ngram,
            min_new_tokens: self.min_new_tokens,
            order: match self.order {
                OrderArg::Hf => ProcessorOrder::HuggingFace,
                OrderArg::LlamaCpp => ProcessorOrder::LlamaCpp,
            },
            ..SamplingParams::default()
        };
        let strategy = match self.strategy {
            StrategyArg::Greedy => Strategy::Greedy,
            StrategyArg::Sample => Strategy::Sample { seed: self.seed },
            StrategyArg::Beam => Strategy::Beam(BeamParams {
                num_beams: self.num_beams,
                length_penalty: self.length_penalty,
                early_stopping: match self.early_stopping {
                    EarlyStoppingArg::True => EarlyStopping::WhenFull,
                    EarlyStoppingArg::False => EarlyStopping::Heuristic,
                    EarlyStoppingArg::Never => EarlyStopping::Never,
                },
                num_return_sequences: self.num_return_sequences,
                num_beam_groups: self.num_beam_groups,
                diversity_penalty: self.diversity_penalty,
            }),
        };
        let params = GenerateParams {
            strategy,
            sampling,
            max_new_tokens,
            eos_ids,
            stop_strings: self.stop.clone(),
            top_logprobs: self.logprobs,
            explain_top: if self.explain { 8 } else { 0 },
        };
        // Validate now, so a bad flag fails before the model loads.
        let temperature_zero = params.sampling.temperature == 0.0;
        let mut check = params.sampling.clone();
        if temperature_zero {
            check.temperature = 1.0;
        }
        check.build_chain(&params.eos_ids, true)?;
        Ok(params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        d: DecodingArgs,
    }

    fn parse(args: &[&str]) -> DecodingArgs {
        T::parse_from(std::iter::once("t").chain(args.iter().copied())).d
    }

    #[test]
    fn defaults_are_chat_sampling() {
        let p = parse(&[]).to_params(16, vec![2]).unwrap();
        assert!(matches!(p.strategy, Strategy::Sample { seed: 0 }));
        assert_eq!(p.sampling.temperature, 0.7);
        assert_eq!(p.sampling.top_p, 0.9);
    }

    #[test]
    fn beam_and_errors() {
        let p = parse(&[
            "--strategy",
            "beam",
            "--num-beams",
            "3",
            "--early-stopping",
            "never",
        ])
        .to_params(8, vec![])
        .unwrap();
        match p.strategy {
            Strategy::Beam(b) => {
                assert_eq!(b.num_beams, 3);
                assert_eq!(b.early_stopping, EarlyStopping::Never);
            }
            other => panic!("expected beam, got {other:?}"),
        }
        assert!(parse(&["--top-p", "1.5"]).to_params(8, vec![]).is_err());
        assert!(
            parse(&["--temperature", "0"]).to_params(8, vec![]).is_ok(),
            "T = 0 means greedy"
        );
    }
}
