//! A chain of logits processors applied in an explicit order, and the
//! parameters that build one.

use crate::error::DecodeError;
use crate::penalties::{
    BannedTokens, FrequencyPresencePenalty, LogitBias, MinNewTokens, NoRepeatNGram, PenaltyScope,
    RepetitionPenalty,
};
use crate::probs::check_logits;
use crate::processor::{LogitsProcessor, Stage, TokenHistory};
use crate::processors::{MinP, Temperature, TopK, TopP, TypicalP};

/// The order in which the sampling warpers run after the penalties.
///
/// Order changes results: with logits `[3, 2, 1]`, top-p 0.8 and T = 0.5,
/// Hugging Face order (temperature first) keeps only token 0, while
/// llama.cpp order (temperature last) keeps tokens 0 and 1 — see the
/// `order_changes_result` test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProcessorOrder {
    /// Penalties, then temperature, top-k, top-p, min-p, typical-p
    /// (Hugging Face `generate`). The default.
    #[default]
    HuggingFace,
    /// Penalties, then top-k, typical-p, top-p, min-p, and temperature last
    /// (llama.cpp's default sampler chain).
    LlamaCpp,
}

/// Every knob of the logits pipeline. The defaults switch everything off
/// (T = 1, no truncation, no penalties), so the distribution is the model's own.
#[derive(Debug, Clone)]
pub struct SamplingParams {
    /// Temperature τ (> 0; 1 = off). `0` is not valid here: the generation
    /// entry points turn `temperature == 0` into the greedy strategy.
    pub temperature: f32,
    /// Keep the k most likely tokens (0 = off).
    pub top_k: usize,
    /// Nucleus mass in (0, 1] (1 = off).
    pub top_p: f32,
    /// Min-p ratio in [0, 1] (0 = off).
    pub min_p: f32,
    /// Typical-p mass in (0, 1] (1 = off).
    pub typical_p: f32,
    /// CTRL/HF repetition penalty (> 0; 1 = off).
    pub repetition_penalty: f32,
    /// Which tokens the repetition penalty counts.
    pub repetition_scope: PenaltyScope,
    /// OpenAI frequency penalty (>= 0; 0 = off).
    pub frequency_penalty: f32,
    /// OpenAI presence penalty (>= 0; 0 = off).
    pub presence_penalty: f32,
    /// Which tokens the frequency and presence penalties count.
    pub frequency_scope: PenaltyScope,
    /// Ban repeats of n-grams of this size (0 = off).
    pub no_repeat_ngram: usize,
    /// `(token, bias)` pairs added to logits.
    pub logit_bias: Vec<(u32, f32)>,
    /// Tokens that may never be chosen.
    pub banned_ids: Vec<u32>,
    /// End-of-sequence tokens are suppressed until this many tokens were generated.
    pub min_new_tokens: usize,
    /// Warper order.
    pub order: ProcessorOrder,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            typical_p: 1.0,
            repetition_penalty: 1.0,
            repetition_scope: PenaltyScope::PromptAndGenerated,
            frequency_penalty: 0.0,
            presence_penalty: 0.0,
            frequency_scope: PenaltyScope::GeneratedOnly,
            no_repeat_ngram: 0,
            logit_bias: Vec::new(),
            banned_ids: Vec::new(),
            min_new_tokens: 0,
            order: ProcessorOrder::HuggingFace,
        }
    }
}

impl SamplingParams {
    /// Build the chain. `eos_ids` feed `min_new_tokens`. With
    /// `with_warpers = false` only the penalties are included and only they
    /// are validated (greedy and beam search, as Hugging Face does when
    /// `do_sample = False`).
    pub fn build_chain(
        &self,
        eos_ids: &[u32],
        with_warpers: bool,
    ) -> Result<LogitsChain, DecodeError> {
        // Validate every penalty, even those that end up switched off.
        let repetition = RepetitionPenalty::new(self.repetition_penalty, self.repetition_scope)?;
        let freq = FrequencyPresencePenalty::new(
            self.frequency_penalty,
            self.presence_penalty,
            self.frequency_scope,
        )?;
        let bias = LogitBias::new(self.logit_bias.clone())?;

        let mut chain = LogitsChain::new();
        // ANCHOR: penalty_order
        if !self.logit_bias.is_empty() {
            chain.push(bias);
        }
        if self.repetition_penalty != 1.0 {
            chain.push(repetition);
        }
        if self.frequency_penalty != 0.0 || self.presence_penalty != 0.0 {
            chain.push(freq);
        }
        if self.no_repeat_ngram > 0 {
            chain.push(NoRepeatNGram::new(self.no_repeat_ngram));
        }
        if !self.banned_ids.is_empty() {
            chain.push(BannedTokens::new(self.banned_ids.clone()));
        }
        if self.min_new_tokens > 0 && !eos_ids.is_empty() {
            chain.push(MinNewTokens::new(self.min_new_tokens, eos_ids.to_vec()));
        }
        // ANCHOR_END: penalty_order
        if !with_warpers {
            return Ok(chain);
        }
        let temperature = Temperature::new(self.temperature)?;
        let top_p = TopP::new(self.top_p)?;
        let min_p = MinP::new(self.min_p)?;
        let typical = TypicalP::new(self.typical_p)?;
        let use_t = self.temperature != 1.0;
        let top_k = TopK::new(self.top_k);
        // ANCHOR: warper_order
        match self.order {
            ProcessorOrder::HuggingFace => {
                if use_t {
                    chain.push(temperature);
                    chain.temperature = Some(self.temperature);
                }
                chain.push_if(self.top_k > 0, top_k);
                chain.push_if(self.top_p < 1.0, top_p);
                chain.push_if(self.min_p > 0.0, min_p);
                chain.push_if(self.typical_p < 1.0, typical);
            }
            ProcessorOrder::LlamaCpp => {
                chain.push_if(self.top_k > 0, top_k);
                chain.push_if(self.typical_p < 1.0, typical);
                chain.push_if(self.top_p < 1.0, top_p);
                chain.push_if(self.min_p > 0.0, min_p);
                if use_t {
                    chain.push(temperature);
                    chain.temperature = Some(self.temperature);
                }
            }
        }
        // ANCHOR_END: warper_order
        Ok(chain)
    }
}

/// What the chain did to each token, for the explain table.
#[derive(Debug, Clone)]
pub struct ChainTrace {
    /// Logits as the model gave them.
    pub raw: Vec<f32>,
    /// After every [`Stage::Penalty`] processor.
    pub after_penalties: Vec<f32>,
    /// After the temperature (equal to `after_penalties` scaled, whatever the order;
    /// `None` when no temperature runs).
    pub temperature: Option<f32>,
    /// Name of the processor that removed each token (`None`: kept).
    pub cut_by: Vec<Option<&'static str>>,
    /// Final logits (removed tokens are `-inf`).
    pub final_logits: Vec<f32>,
}

/// An ordered list of processors.
#[derive(Default)]
pub struct LogitsChain {
    processors: Vec<Box<dyn LogitsProcessor>>,
    temperature: Option<f32>,
}

impl std::fmt::Debug for LogitsChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl LogitsChain {
    /// An empty chain (the identity).
    pub fn new() -> Self {
        LogitsChain::default()
    }

    /// Append a processor.
    pub fn push<P: LogitsProcessor + 'static>(&mut self, p: P) {
        self.processors.push(Box::new(p));
    }

    fn push_if<P: LogitsProcessor + 'static>(&mut self, cond: bool, p: P) {
        if cond {
            self.push(p);
        }
    }

    /// True when the chain changes nothing (no processors, no temperature):
    /// a greedy choice may then be made on the raw logits, where they are.
    pub fn is_empty(&self) -> bool {
        self.processors.is_empty() && self.temperature.is_none()
    }

    /// The processors' names, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.processors.iter().map(|p| p.name()).collect()
    }

    /// Run every processor in order on `logits`. Errors on an empty row,
    /// NaN / `+inf` logits, or when a processor removes every token.
    pub fn apply(&self, history: &TokenHistory<'_>, logits: &mut [f32]) -> Result<(), DecodeError> {
        check_logits("logits_chain", logits)?;
        for p in &self.processors {
            p.process(history, logits)?;
            check_logits(p.name(), logits)?;
        }
        Ok(())
    }

    /// Like [`LogitsChain::apply`], and record what each stage did.
    pub fn apply_traced(
        &self,
        history: &TokenHistory<'_>,
        logits: &mut [f32],
    ) -> Result<ChainTrace, DecodeError> {
        check_logits("logits_chain", logits)?;
        let raw = logits.to_vec();
        let mut cut_by: Vec<Option<&'static str>> = vec![None; logits.len()];
        let mut after_penalties = raw.clone();
        for p in &self.processors {
            p.process(history, logits)?;
            check_logits(p.name(), logits)?;
            match p.stage() {
                Stage::Penalty => {
                    after_penalties.copy_from_slice(logits);
                    for (c, x) in cut_by.iter_mut().zip(logits.iter()) {
                        if c.is_none() && *x == f32::NEG_INFINITY {
                            *c = Some(p.name());
                        }
                    }
                }
                Stage::Temperature => {}
                Stage::Filter => {
                    for (c, x) in cut_by.iter_mut().zip(logits.iter()) {
                        if c.is_none() && *x == f32::NEG_INFINITY {
                            *c = Some(p.name());
                        }
                    }
                }
            }
        }
        Ok(ChainTrace {
            raw,
            after_penalties,
            temperature: self.temperature,
            cut_by,
            final_logits: logits.to_vec(),
        })
    }
}
