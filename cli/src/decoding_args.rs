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

/// Sampling temperature used when `--temperature` is not given.
pub const DEFAULT_TEMPERATURE: f32 = 0.7;
/// Nucleus mass used when `--top-p` is not given.
pub const DEFAULT_TOP_P: f32 = 0.9;

/// Decoding options shared by the generating commands.
#[derive(Debug, Clone, Args)]
pub struct DecodingArgs {
    /// Decoding strategy [default: `generate` is greedy unless a sampling
    /// flag (--temperature, --top-k, --top-p, --min-p, --typical-p, --seed)
    /// is given; `chat` samples].
    #[arg(long, value_enum)]
    pub strategy: Option<StrategyArg>,
    /// Sampling temperature (> 0; 0 means greedy) [default: 0.7].
    #[arg(long, allow_negative_numbers = true)]
    pub temperature: Option<f32>,
    /// Keep only the k most likely tokens (0 = off).
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// Nucleus sampling mass in (0, 1] (1 = off) [default: 0.9].
    #[arg(long, allow_negative_numbers = true)]
    pub top_p: Option<f32>,
    /// Drop tokens below min-p × the top probability (0 = off).
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.0)]
    pub min_p: f32,
    /// Locally typical sampling mass in (0, 1] (1 = off).
    #[arg(long, allow_negative_numbers = true, default_value_t = 1.0)]
    pub typical_p: f32,
    /// Order of the sampling steps.
    #[arg(long, value_enum, default_value_t = OrderArg::Hf)]
    pub order: OrderArg,
    /// CTRL/HF repetition penalty over prompt and output (1 = off).
    #[arg(long, allow_negative_numbers = true, default_value_t = 1.0)]
    pub repetition_penalty: f32,
    /// OpenAI frequency penalty over the output, -2..=2 (0 = off).
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.0)]
    pub frequency_penalty: f32,
    /// OpenAI presence penalty over the output, -2..=2 (0 = off).
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.0)]
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
    #[arg(long, allow_negative_numbers = true, default_value_t = 1.0)]
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
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.0)]
    pub diversity_penalty: f32,
    /// Add BIAS to token ID's logit before any other step (repeatable;
    /// `--logit-bias 42=-5`; -100 all but bans, 100 all but forces).
    #[arg(long, value_name = "ID=BIAS", value_parser = parse_bias)]
    pub logit_bias: Vec<(u32, f32)>,
    /// Never generate token ID (repeatable).
    #[arg(long, value_name = "ID")]
    pub ban: Vec<u32>,
    /// Stop when this text appears (repeatable); it is not printed.
    #[arg(long)]
    pub stop: Vec<String>,
    /// Random seed for sampling (same seed, same text) [default: 0].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Report the N most likely alternatives and their log-probs per token.
    #[arg(long, default_value_t = 0)]
    pub logprobs: usize,
    /// Print, per step, what every processor did to the leading candidates.
    #[arg(long)]
    pub explain: bool,
}

/// Parse `ID=BIAS` for `--logit-bias`.
fn parse_bias(s: &str) -> Result<(u32, f32), String> {
    let (id, bias) = s
        .split_once('=')
        .ok_or_else(|| format!("expected ID=BIAS, got {s:?}"))?;
    let id = id
        .trim()
        .parse()
        .map_err(|_| format!("{id:?} is not a token id"))?;
    let bias: f32 = bias
        .trim()
        .parse()
        .map_err(|_| format!("{bias:?} is not a number"))?;
    if !bias.is_finite() {
        return Err(format!("bias {bias} is not finite"));
    }
    Ok((id, bias))
}

impl DecodingArgs {
    /// The strategy to run: `--strategy` if given, else sampling when any
    /// sampling flag was given, else the command's `default`.
    pub fn strategy_or(&self, default: StrategyArg) -> StrategyArg {
        if let Some(s) = self.strategy {
            return s;
        }
        let sampling_flag = self.temperature.is_some()
            || self.top_p.is_some()
            || self.seed.is_some()
            || self.top_k > 0
            || self.min_p > 0.0
            || self.typical_p < 1.0;
        if sampling_flag {
            StrategyArg::Sample
        } else {
            default
        }
    }

    /// Build decode's parameters. `max_new_tokens` and `eos_ids` come from
    /// the command and the model, `default` is the command's strategy when
    /// none is chosen (see [`DecodingArgs::strategy_or`]).
    /// `--strategy sample --temperature 0` runs greedy (decode maps it
    /// explicitly).
    ///
    /// # Errors
    /// Any invalid value (a temperature below 0, top-p outside (0, 1], a
    /// negative penalty, ...), even when the chosen strategy would not use it.
    pub fn to_params(
        &self,
        max_new_tokens: usize,
        eos_ids: Vec<u32>,
        default: StrategyArg,
    ) -> Result<GenerateParams, DecodeError> {
        let strategy_arg = self.strategy_or(default);
        let temperature = self.temperature.unwrap_or(DEFAULT_TEMPERATURE);
        let (rep_scope, freq_scope) = match self.penalty_last_n {
            Some(n) => (PenaltyScope::LastN(n), PenaltyScope::LastN(n)),
            None => (
                PenaltyScope::PromptAndGenerated,
                PenaltyScope::GeneratedOnly,
            ),
        };
        let greedy_like = strategy_arg != StrategyArg::Sample;
        let sampling = SamplingParams {
            // Greedy and beam ignore the warpers; keep them valid so that
            // build_chain's checks pass whatever the sampling defaults are.
            temperature: if greedy_like { 1.0 } else { temperature },
            top_k: self.top_k,
            top_p: self.top_p.unwrap_or(DEFAULT_TOP_P),
            min_p: self.min_p,
            typical_p: self.typical_p,
            repetition_penalty: self.repetition_penalty,
            repetition_scope: rep_scope,
            frequency_penalty: self.frequency_penalty,
            presence_penalty: self.presence_penalty,
            frequency_scope: freq_scope,
            no_repeat_ngram: self.no_repeat_ngram,
            logit_bias: self.logit_bias.clone(),
            banned_ids: self.ban.clone(),
            min_new_tokens: self.min_new_tokens,
            order: match self.order {
                OrderArg::Hf => ProcessorOrder::HuggingFace,
                OrderArg::LlamaCpp => ProcessorOrder::LlamaCpp,
            },
        };
        let strategy = match strategy_arg {
            StrategyArg::Greedy => Strategy::Greedy,
            StrategyArg::Sample => Strategy::Sample {
                seed: self.seed.unwrap_or(0),
            },
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
            explain_top: if self.explain {
                crate::generation::EXPLAIN_ROWS
            } else {
                0
            },
        };
        // Validate now, so a bad flag fails before the model loads, and with
        // the temperature the user gave even when greedy will not use it.
        GenerateParams {
            sampling: SamplingParams {
                temperature,
                ..params.sampling.clone()
            },
            ..params.clone()
        }
        .validate()?;
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
        let p = parse(&[])
            .to_params(16, vec![2], StrategyArg::Sample)
            .unwrap();
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
        .to_params(8, vec![], StrategyArg::Greedy)
        .unwrap();
        match p.strategy {
            Strategy::Beam(b) => {
                assert_eq!(b.num_beams, 3);
                assert_eq!(b.early_stopping, EarlyStopping::Never);
            }
            other => panic!("expected beam, got {other:?}"),
        }
        let g = StrategyArg::Greedy;
        let p = parse(&["--logit-bias", "42=-5.5", "--ban", "7", "--ban", "9"])
            .to_params(8, vec![], g)
            .unwrap();
        assert_eq!(p.sampling.logit_bias, vec![(42, -5.5)]);
        assert_eq!(p.sampling.banned_ids, vec![7, 9]);
        assert!(parse_bias("42").is_err() && parse_bias("x=1").is_err());
        assert!(parse(&["--top-p", "1.5"]).to_params(8, vec![], g).is_err());
        assert!(
            parse(&["--strategy", "greedy", "--temperature", "-1"])
                .to_params(8, vec![], g)
                .is_err(),
            "a negative temperature is refused even for greedy"
        );
        assert!(
            parse(&["--temperature", "0"])
                .to_params(8, vec![], g)
                .is_ok(),
            "T = 0 means greedy"
        );
    }

    #[test]
    fn generate_default_is_greedy_unless_a_sampling_flag_is_given() {
        let g = StrategyArg::Greedy;
        assert_eq!(parse(&[]).strategy_or(g), StrategyArg::Greedy);
        assert_eq!(parse(&["--seed", "3"]).strategy_or(g), StrategyArg::Sample);
        assert_eq!(parse(&["--top-k", "5"]).strategy_or(g), StrategyArg::Sample);
        assert_eq!(
            parse(&["--strategy", "beam", "--temperature", "0.5"]).strategy_or(g),
            StrategyArg::Beam
        );
    }
}
