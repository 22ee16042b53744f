//! Beam search, following Hugging Face `transformers` (5.x `_beam_search`)
//! step for step so that results match token for token.
//!
//! Per step: log-softmax each running beam's logits, run the processors on
//! the log-probs (not on the logits, unlike sampling), add the beam's score,
//! take the `max(2, 1 + #eos) · num_beams` best continuations over all
//! beams, move those that end (EOS or length limit) into the finished set
//! (scored `sum_logprobs / generated_len ^ length_penalty`), and keep the
//! `num_beams` best unfinished ones running. The KV cache follows the beams
//! through [`LanguageModel::reorder`]; prefixes are never recomputed.

use crate::error::DecodeError;
use crate::generate::GenerateParams;
use crate::lm::LanguageModel;
use crate::probs::{log_softmax, sorted_desc};
use crate::processor::TokenHistory;

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
#[derive(Debug, Clone)]
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
}

impl Default for BeamParams {
    fn default() -> Self {
        BeamParams {
            num_beams: 4,
            length_penalty: 1.0,
            early_stopping: EarlyStopping::Heuristic,
            num_return_sequences: 1,
        }
    }
}

/// One returned hypothesis.
#[derive(Debug, Clone, PartialEq)]
pub struct BeamHypothesis {
    /// Generated tokens (EOS included when it ended the hypothesis).
    pub tokens: Vec<u32>,
    /// Sum of the (processed) log-probs of `tokens`.
    pub sum_logprobs: f32,
    /// `sum_logprobs / tokens.len() ^ length_penalty`; results are sorted by it.
    pub score: f32,
}

/// HF's "very unlikely" score used to mask candidates.
const MASK: f32 = -1.0e9;

/// Length-penalised score, computed as HF does (`f32 / f32(len^α)`).
pub fn length_normalised(sum_logprobs: f32, len: usize, length_penalty: f32) -> f32 {
    // ANCHOR: length_penalty
    let denom = (len as f64).powf(length_penalty as f64) as f32;
    #[cfg(not(feature = "mutant-beam-no-length-penalty"))]
    let score = sum_logprobs / denom;
    #[cfg(feature = "mutant-beam-no-length-penalty")]
    let score = sum_logprobs + 0.0 * denom;
    // ANCHOR_END: length_penalty
    score
}

#[derive(Clone)]
struct Finished {
    tokens: Vec<u32>,
    sum: f32,
    score: f32,
    done: bool,
}

/// Run beam search from `prompt` in slots `0..num_beams` of `model`.
/// `params.strategy` must be [`crate::Strategy::Beam`]; the penalties in
/// `params.sampling` run on log-probs, its warpers (temperature, top-k, …)
/// are not used. Returns `num_return_sequences` hypotheses, best first.
pub fn beam_search<M: LanguageModel + ?Sized>(
    model: &mut M,
    prompt: &[u32],
    params: &GenerateParams,
) -> Result<Vec<BeamHypothesis>, DecodeError> {
    let crate::Strategy::Beam(bp) = &params.strategy else {
        return Err(DecodeError::param(
            "strategy",
            "not beam",
            "beam_search needs Strategy::Beam",
        ));
    };
    let nb = bp.num_beams;
    let vocab = model.vocab_size();
    if nb == 0 {
        return Err(DecodeError::param("num_beams", nb, "must be >= 1"));
    }
    if bp.num_return_sequences == 0 || bp.num_return_sequences > nb {
        return Err(DecodeError::param(
            "num_return_sequences",
            bp.num_return_sequences,
            "must be in 1..=num_beams",
        ));
    }
    if !bp.length_penalty.is_finite() {
        return Err(DecodeError::param(
            "length_penalty",
            bp.length_penalty,
            "must be finite",
        ));
    }
    if params.max_new_tokens == 0 {
        return Err(DecodeError::param(
            "max_new_tokens",
            0,
            "beam search needs at least 1",
        ));
    }
    if nb > model.num_slots() {
        return Err(DecodeError::ModelLimit {
            op: "beam_search",
            reason: format!(
                "num_beams {nb} but the model has {} slots",
                model.num_slots()
            ),
        });
    }
    if prompt.is_empty() || prompt.len() >= model.max_seq_len() {
        return Err(DecodeError::ModelLimit {
            op: "beam_search",
            reason: format!(
                "prompt of {} tokens must be non-empty and shorter than the context of {}",
                prompt.len(),
                model.max_seq_len()
            ),
        });
    }
    crate::processor::check_ids("prompt", prompt, vocab)?;
    let keep = 2usize.max(1 + params.eos_ids.len()) * nb;
    if keep > nb * vocab {
        return Err(DecodeError::ModelLimit {
            op: "beam_search",
            reason: format!(
                "needs {keep} candidates per step but only {nb} beams x {vocab} tokens exist"
            ),
        });
    }
    let chain = params.sampling.build_chain(&params.eos_ids, false)?;
    let max_new = params
        .max_new_tokens
        .min(model.max_seq_len() - prompt.len());
    let lp = bp.length_penalty;

    // Prefill once in slot 0, then copy that cache to every beam's slot.
    model.clear(0);
    let first = model
        .forward(&[(0, prompt)])
        .map_err(DecodeError::model("beam_search prefill"))?
        .pop()
        .ok_or_else(|| DecodeError::ModelLimit {
            op: "beam_search",
            reason: "model returned no logits".into(),
        })?;
    model
        .reorder(&vec![0; nb])
        .map_err(DecodeError::model("beam_search reorder"))?;
    let mut logits: Vec<Vec<f32>> = vec![first; nb];

    let mut running: Vec<Vec<u32>> = vec![Vec::new(); nb];
    let mut running_scores: Vec<f32> = (0..nb).map(|j| if j == 0 { 0.0 } else { MASK }).collect();
    let mut finished: Vec<Finished> = vec![
        Finished {
            tokens: Vec::new(),
            sum: MASK,
            score: MASK,
            done: false
        };
        nb
    ];
    let mut unsatisfied = true;
    let mut t = 0usize;
    loop {
        // ANCHOR: beam_step
        let mut acc = Vec::with_capacity(nb * vocab);
        for j in 0..nb {
            if logits[j].len() != vocab {
                return Err(DecodeError::LengthMismatch {
                    op: "beam_search",
                    got: logits[j].len(),
                    expected: vocab,
                });
            }
            crate::probs::check_logits("beam_search", &logits[j])?;
            let mut lp_row = log_softmax(&logits[j]);
            let mut hist_tokens = prompt.to_vec();
            hist_tokens.extend_from_slice(&running[j]);
            chain.apply(&TokenHistory::new(&hist_tokens, prompt.len()), &mut lp_row)?;
            acc.extend(lp_row.iter().map(|&x| x + running_scores[j]));
        }
        let mut cand = sorted_desc(&acc);
        cand.truncate(keep);
        let cand_scores: Vec<f32> = cand.iter().map(|&i| acc[i]).collect();
        let cand_src: Vec<usize> = cand.iter().map(|&i| i / vocab).collect();
        let cand_tok: Vec<u32> = cand.iter().map(|&i| (i % vocab) as u32).collect();
        let hits: Vec<bool> = cand_tok
            .iter()
            .map(|tok| params.eos_ids.contains(tok) || t + 1 >= max_new)
            .collect();
        // Running beams for the next step: best unfinished candidates.
        let masked: Vec<f32> = (0..keep)
            .map(|c| cand_scores[c] + if hits[c] { MASK } else { 0.0 })
            .collect();
        let next: Vec<usize> = sorted_desc(&masked).into_iter().take(nb).collect();
        // Finished set: merge the top-`nb` candidates that just ended.
        let all_done = finished.iter().all(|f| f.done);
        let full = all_done && bp.early_stopping == EarlyStopping::WhenFull;
        let mut merged: Vec<Finished> = finished.clone();
        for c in 0..keep {
            let just = hits[c] && c < nb;
            let mut s = length_normalised(cand_scores[c], t + 1, lp);
            if full {
                s += MASK;
            }
            if !unsatisfied {
                s += MASK;
            }
            if !just {
                s += MASK;
            }
            let mut tokens = running[cand_src[c]].clone();
            tokens.push(cand_tok[c]);
            merged.push(Finished {
                tokens,
                sum: cand_scores[c],
                score: s,
                done: just,
            });
        }
        let merged_scores: Vec<f32> = merged.iter().map(|f| f.score).collect();
        finished = sorted_desc(&merged_scores)
            .into_iter()
            .take(nb)
            .map(|i| merged[i].clone())
            .collect();
        // ANCHOR_END: beam_step
        let new_running: Vec<Vec<u32>> = next
            .iter()
            .map(|&c| {
                let mut s = running[cand_src[c]].clone();
                s.push(cand_tok[c]);
                s
            })
            .collect();
        running_scores = next.iter().map(|&c| masked[c]).collect();
        let sources: Vec<usize> = next.iter().map(|&c| cand_src[c]).collect();
        running = new_running;
        t += 1;

        // Stopping rules (HF `_check_early_stop_heuristic` and friends).
        let best_len = if bp.early_stopping == EarlyStopping::Never && lp > 0.0 {
            max_new
        } else {
            t
        };
        let best_running = running_scores[0] / (best_len as f64).powf(lp as f64) as f32;
        let worst = finished
            .iter()
            .map(|f| f.score)
            .fold(f32::INFINITY, f32::min);
        let improvable = finished
            .iter()
            .any(|f| best_running > if f.done { worst } else { MASK });
        unsatisfied = unsatisfied && improvable;
        let all_done = finished.iter().all(|f| f.done);
        let open = !(all_done && bp.early_stopping == EarlyStopping::WhenFull);
        let can_continue = !hits.iter().all(|&h| h);
        if !(unsatisfied && open && can_continue) {
            break;
        }
        // Move the caches to follow the surviving beams, then feed each its new token.
        model
            .reorder(&sources)
            .map_err(DecodeError::model("beam_search reorder"))?;
        let feeds: Vec<[u32; 1]> = running.iter().map(|s| [*s.last().unwrap_or(&0)]).collect();
        let batch: Vec<(usize, &[u32])> =
            feeds.iter().enumerate().map(|(j, f)| (j, &f[..])).collect();
        logits = model
            .forward(&batch)
            .map_err(DecodeError::model("beam_search step"))?;
        if logits.len() != nb {
            return Err(DecodeError::ModelLimit {
                op: "beam_search",
                reason: format!("model returned {} rows for {nb} beams", logits.len()),
            });
        }
    }
    Ok(finished
        .into_iter()
        .take(bp.num_return_sequences)
        .map(|f| BeamHypothesis {
            score: f.score,
            sum_logprobs: f.sum,
            tokens: f.tokens,
        })
        .collect())
}
