//! Perplexity scored exactly as llama.cpp's `llama-perplexity` does, so the
//! figures of the two engines can be compared.
//!
//! The text's tokens are cut into chunks of `ctx` tokens (a trailing
//! partial chunk is dropped); each chunk runs from an empty cache, with its
//! first token replaced by BOS when the vocabulary adds one; only the
//! second half is scored: the logits at positions `ctx/2 … ctx−2` predict
//! the tokens at `ctx/2+1 … ctx−1`. PPL = exp(mean negative log-likelihood),
//! with llama.cpp's ± estimate, `PPL · sqrt(var(nll) / (n − 1))`.

use crate::error::DecodeError;
use crate::lm::LanguageModel;

/// The result of [`perplexity`].
#[derive(Debug, Clone, PartialEq)]
pub struct Perplexity {
    /// exp(mean negative log-likelihood).
    pub ppl: f64,
    /// llama.cpp's uncertainty estimate of `ppl`.
    pub plus_minus: f64,
    /// Chunks scored.
    pub chunks: usize,
    /// Tokens scored.
    pub tokens: usize,
    /// Running perplexity after each chunk (what llama.cpp prints as `[1]…`).
    pub per_chunk: Vec<f64>,
}

/// −log softmax(logits)[target], in f64.
fn nll(logits: &[f32], target: usize) -> f64 {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x)) as f64;
    let sum: f64 = logits.iter().map(|&x| (x as f64 - max).exp()).sum();
    max + sum.ln() - logits[target] as f64
}

// ANCHOR: perplexity
/// Score `tokens` (the whole text, BOS already added if the vocabulary
/// wants one) in chunks of `ctx` on slot 0 of `lm`. `bos` replaces each
/// chunk's first token when given. `progress(done, total)` runs after
/// each chunk.
///
/// # Errors
/// [`DecodeError::InvalidParameter`] for `ctx < 4` or a text shorter than
/// one chunk, [`DecodeError::ModelLimit`] when `ctx` exceeds the model's
/// sequence length, [`DecodeError::Model`] when the model fails.
pub fn perplexity(
    lm: &mut dyn LanguageModel,
    tokens: &[u32],
    ctx: usize,
    bos: Option<u32>,
    mut progress: impl FnMut(usize, usize),
) -> Result<Perplexity, DecodeError> {
    if ctx < 4 {
        return Err(DecodeError::param("ctx", ctx, "must be at least 4"));
    }
    if ctx > lm.max_seq_len() {
        return Err(DecodeError::ModelLimit {
            op: "perplexity",
            reason: format!(
                "ctx {ctx} exceeds the model's {} positions",
                lm.max_seq_len()
            ),
        });
    }
    let n_chunks = tokens.len() / ctx;
    if n_chunks == 0 {
        return Err(DecodeError::param(
            "text",
            format!("{} tokens", tokens.len()),
            "needs at least ctx tokens",
        ));
    }
    let vocab = lm.vocab_size();
    let first = ctx / 2;
    let (mut sum, mut sum2, mut count) = (0f64, 0f64, 0usize);
    let mut per_chunk = Vec::with_capacity(n_chunks);
    for c in 0..n_chunks {
        let mut chunk = tokens[c * ctx..(c + 1) * ctx].to_vec();
        if let Some(b) = bos {
            chunk[0] = b;
        }
        lm.clear(0);
        let logits = lm
            .forward_all(0, &chunk)
            .map_err(DecodeError::model("perplexity"))?;
        // The target is the original token, not the BOS put in its place.
        for pos in first..ctx - 1 {
            let target = tokens[c * ctx + pos + 1] as usize;
            let v = nll(&logits[pos * vocab..(pos + 1) * vocab], target);
            sum += v;
            sum2 += v * v;
            count += 1;
        }
        per_chunk.push((sum / count as f64).exp());
        progress(c + 1, n_chunks);
    }
    lm.clear(0);
    let mean = sum / count as f64;
    let var = sum2 / count as f64 - mean * mean;
    let ppl = mean.exp();
    let plus_minus = if var > 0.0 && count > 1 {
        ppl * (var / (count - 1) as f64).sqrt()
    } else {
        0.0
    };
    Ok(Perplexity {
        ppl,
        plus_minus,
        chunks: n_chunks,
        tokens: count,
        per_chunk,
    })
}
// ANCHOR_END: perplexity

#[cfg(test)]
mod tests {
    use super::*;
    use crate::toy::FnModel;

    /// Equal logits for every token, whatever the context.
    fn uniform(vocab: usize, len: usize) -> FnModel<impl Fn(&[u32]) -> Vec<f32>> {
        FnModel::new(vocab, 1, len, move |_| vec![0.0; vocab])
    }

    #[test]
    fn a_uniform_model_has_perplexity_equal_to_its_vocabulary() {
        let mut m = uniform(10, 64);
        let toks: Vec<u32> = (0..40).map(|i| i % 10).collect();
        let p = perplexity(&mut m, &toks, 16, Some(0), |_, _| {}).unwrap();
        assert_eq!((p.chunks, p.tokens), (2, 2 * 7));
        assert!((p.ppl - 10.0).abs() < 1e-9, "{}", p.ppl);
        assert_eq!(p.plus_minus, 0.0);
    }

    /// A model that bets on the first token of its context: logit 3 for
    /// it, 0 for the other nine. Over a text that cycles through 0..9,
    /// each chunk of 16 has one scored target equal to its first token;
    /// with BOS 9 (never in the text) put in the first place, none.
    #[test]
    fn the_first_token_of_each_chunk_becomes_bos() {
        let mut m = FnModel::new(10, 1, 64, |ctx: &[u32]| {
            (0..10u32)
                .map(|t| if Some(&t) == ctx.first() { 3.0 } else { 0.0 })
                .collect()
        });
        let toks: Vec<u32> = (0..40).map(|i| i % 9).collect();
        let miss = (3f64.exp() + 9.0).ln();
        let p = perplexity(&mut m, &toks, 16, Some(9), |_, _| {}).unwrap();
        assert!((p.ppl - miss.exp()).abs() < 1e-9, "{}", p.ppl);
        // Without BOS: one hit (its log-prob is 3 − miss) in seven targets.
        let p = perplexity(&mut m, &toks, 16, None, |_, _| {}).unwrap();
        assert!((p.ppl - (miss - 3.0 / 7.0).exp()).abs() < 1e-9, "{}", p.ppl);
    }

    #[test]
    fn bad_arguments_are_errors() {
        let mut m = uniform(10, 64);
        assert!(perplexity(&mut m, &[1; 40], 2, None, |_, _| {}).is_err());
        assert!(perplexity(&mut m, &[1; 10], 16, None, |_, _| {}).is_err());
        assert!(perplexity(&mut m, &[1; 400], 128, None, |_, _| {}).is_err());
    }
}
