//! What `generate` and `chat` share around decode's [`decode::Generator`]: the
//! detokenizer of a loaded model, timing of the two phases, streaming the
//! text (and, with `--explain`, each step's table) to the output, and the
//! readable per-token log-prob listing.

use std::io::Write;
use std::time::Instant;

use anyhow::Result;
use decode::{
    DecodeError, Detokenize, ExplainStep, Generation, LanguageModel, StepOutput, TokenOutput,
};

/// What to show on the output while tokens arrive.
#[derive(Debug, Clone, Copy, Default)]
pub struct Show {
    /// Stream the text deltas.
    pub text: bool,
    /// Print each step's explain table before its token.
    pub explain: bool,
}

/// A finished generation with the time its two phases took.
#[derive(Debug, Clone)]
pub struct Timed {
    /// Tokens, text, finish reason, explain tables.
    pub generation: Generation,
    /// Seconds for the first step: the prompt (prefill) and the first token.
    pub prefill_secs: f64,
    /// Seconds for the steps after the first.
    pub decode_secs: f64,
    /// Steps after the first (one forward call each).
    pub decode_steps: usize,
}

impl AsRef<Generation> for Timed {
    fn as_ref(&self) -> &Generation {
        &self.generation
    }
}

impl Timed {
    /// Prompt tokens per second of the prefill.
    pub fn prefill_tok_per_s(&self, prompt_len: usize) -> f64 {
        prompt_len as f64 / self.prefill_secs.max(1e-9)
    }

    /// Generated tokens per second after the first.
    pub fn decode_tok_per_s(&self) -> f64 {
        self.decode_steps as f64 / self.decode_secs.max(1e-9)
    }
}

/// A detokenizer for a model without tokenizer files: token `i` reads as
/// `"i "`, so the stream is the ids themselves.
pub fn id_detokenizer(lm: &dyn LanguageModel) -> Vec<Vec<u8>> {
    (0..lm.vocab_size())
        .map(|i| format!("{i} ").into_bytes())
        .collect()
}

/// Drive `steps` (a [`decode::Generator`]) to the end, writing to `out` as
/// tokens arrive what `show` asks for, and time the first step (prefill)
/// apart from the others.
pub fn run_streaming(
    steps: impl Iterator<Item = Result<StepOutput, DecodeError>>,
    show: Show,
    out: &mut dyn Write,
) -> Result<Timed> {
    let mut timer = StepTimer {
        inner: steps,
        first: None,
        rest: 0.0,
        count: 0,
    };
    let mut write_err: Option<std::io::Error> = None;
    let steps = timer.by_ref().inspect(|r| {
        if let Ok(s) = r
            && write_err.is_none()
        {
            let mut w = || -> std::io::Result<()> {
                if show.explain
                    && let Some(e) = &s.explain
                {
                    write!(out, "{}", tidy_explain(e, EXPLAIN_ROWS))?;
                    writeln!(out, "  => {:?}", s.delta)?;
                } else if show.text {
                    write!(out, "{}", s.delta)?;
                }
                out.flush()
            };
            write_err = w().err();
        }
    });
    let generation = decode::collect_steps(steps, |_| {})?;
    if let Some(e) = write_err {
        return Err(e.into());
    }
    Ok(Timed {
        generation,
        prefill_secs: timer.first.unwrap_or(0.0),
        decode_secs: timer.rest,
        decode_steps: timer.count.saturating_sub(1),
    })
}

/// Leading candidates per explain table (decode's `explain_top`).
pub const EXPLAIN_ROWS: usize = 8;

/// The explain table without its padding: decode lists the `n` best tokens
/// by raw logit and the `n` best by final probability; when fewer than `n`
/// survive the cuts, the latter are filled with zero-probability tokens
/// (often special tokens) that say nothing. Keep the `n` best by raw logit
/// (the first `n` rows, which are sorted by raw logit), every token that
/// kept some probability, and the chosen one.
pub fn tidy_explain(e: &ExplainStep, n: usize) -> ExplainStep {
    let mut e = e.clone();
    let mut i = 0;
    e.rows.retain(|r| {
        i += 1;
        i <= n || r.final_prob > 0.0 || r.chosen
    });
    e
}

/// Times each `next` of the inner iterator.
struct StepTimer<I> {
    inner: I,
    first: Option<f64>,
    rest: f64,
    count: usize,
}

impl<I: Iterator> Iterator for StepTimer<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        let t = Instant::now();
        let item = self.inner.next()?;
        let secs = t.elapsed().as_secs_f64();
        if self.first.is_none() {
            self.first = Some(secs);
        } else {
            self.rest += secs;
        }
        self.count += 1;
        Some(item)
    }
}

/// The text of one token, for listings (lossy UTF-8, quoted).
pub fn piece(detok: &dyn Detokenize, id: u32) -> String {
    format!("{:?}", String::from_utf8_lossy(detok.token_bytes(id)))
}

/// Write the readable `--logprobs` listing: one line per generated token
/// with its id, piece and log-prob, then the `n` most likely alternatives.
pub fn write_logprobs(
    out: &mut dyn Write,
    tokens: &[TokenOutput],
    detok: &dyn Detokenize,
    n: usize,
) -> std::io::Result<()> {
    writeln!(out, "log-probs (top {n} alternatives per token):")?;
    writeln!(
        out,
        "  {:>4} {:>7} {:<16} {:>8}  alternatives",
        "step", "id", "token", "logprob"
    )?;
    for (i, t) in tokens.iter().enumerate() {
        let alts: Vec<String> = t
            .top
            .iter()
            .map(|&(id, lp)| format!("{} {lp:.3}", piece(detok, id)))
            .collect();
        writeln!(
            out,
            "  {i:>4} {:>7} {:<16} {:>8.3}  {}",
            t.id,
            piece(detok, t.id),
            t.logprob,
            alts.join(" | ")
        )?;
    }
    Ok(())
}

/// A generated token as JSON: id, piece, log-prob and the alternatives.
pub fn token_json(t: &TokenOutput, detok: &dyn Detokenize) -> serde_json::Value {
    let top: Vec<serde_json::Value> = t
        .top
        .iter()
        .map(|&(id, lp)| {
            serde_json::json!({
                "id": id,
                "piece": String::from_utf8_lossy(detok.token_bytes(id)),
                "logprob": lp,
            })
        })
        .collect();
    serde_json::json!({
        "id": t.id,
        "piece": t.text,
        "logprob": t.logprob,
        "top": top,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use decode::toy::FnModel;
    use decode::{GenerateParams, Generator, SamplingParams, Strategy};

    /// Token `t` is followed by `t + 1` (mod 5) most of the time.
    fn counting_model() -> FnModel<impl Fn(&[u32]) -> Vec<f32>> {
        FnModel::new(5, 1, 32, |toks: &[u32]| {
            let next = (toks.last().copied().unwrap_or(0) + 1) % 5;
            (0..5u32)
                .map(|i| if i == next { 3.0 } else { i as f32 * 0.1 })
                .collect()
        })
    }

    fn words() -> Vec<Vec<u8>> {
        ["a ", "b ", "c ", "d ", "e "]
            .iter()
            .map(|w| w.as_bytes().to_vec())
            .collect()
    }

    #[test]
    fn streaming_prints_the_generated_text_and_counts_the_steps() {
        let mut m = counting_model();
        let detok = words();
        let params = GenerateParams {
            max_new_tokens: 6,
            ..Default::default()
        };
        let steps = Generator::new(&mut m, &detok, 0, &[0], &params).unwrap();
        let mut out = Vec::new();
        let show = Show {
            text: true,
            explain: false,
        };
        let o = run_streaming(steps, show, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "b c d e a b ");
        assert_eq!(o.generation.text, "b c d e a b ");
        assert_eq!(o.decode_steps, 5, "6 tokens: the prefill step and 5 more");
    }

    #[test]
    fn explain_tables_drop_the_zero_probability_padding() {
        let mut m = counting_model();
        let detok = words();
        let params = GenerateParams {
            strategy: Strategy::Sample { seed: 1 },
            sampling: SamplingParams {
                top_k: 2,
                ..Default::default()
            },
            max_new_tokens: 1,
            explain_top: 3,
            ..Default::default()
        };
        let g = decode::generate(&mut m, &detok, &[0], &params).unwrap();
        let step = &g.explain[0];
        let tidy = tidy_explain(step, 3);
        // The 3 best by raw logit stay; a cut token beyond them goes.
        assert_eq!(tidy.rows.len(), 3, "{tidy}");
        assert!(tidy.rows.iter().any(|r| r.chosen));
        // decode pads the 3 best by probability with a zero-probability token.
        assert_eq!(step.rows.len(), 4, "{step}");
        let mut out = Vec::new();
        write_logprobs(&mut out, &g.tokens, &detok, 2).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("\"b \""), "{text}");
    }
}
