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

use crate::detok::{Detokenize, Utf8Stream};
use crate::error::DecodeError;
use crate::lm::LanguageModel;
use crate::params::{BeamParams, EarlyStopping, FinishReason, GenerateParams, Strategy};
use crate::probs::{log_softmax, sorted_desc};
use crate::processor::TokenHistory;
use crate::stop::StopMatcher;

/// One returned hypothesis.
#[derive(Debug, Clone, PartialEq)]
pub struct BeamHypothesis {
    /// Generated tokens (EOS included when it ended the hypothesis).
    pub tokens: Vec<u32>,
    /// Sum of the (processed) log-probs of `tokens`.
    pub sum_logprobs: f32,
    /// `sum_logprobs / tokens.len() ^ length_penalty`; results are sorted by it.
    pub score: f32,
    /// Which beam group found it (always 0 without diverse beam search).
    pub group: usize,
    /// The text of `tokens`: EOS not shown, cut before the first stop string.
    pub text: String,
    /// Why the hypothesis ended (EOS, a stop string, or the length limit).
    pub finish: FinishReason,
}

/// HF's "very unlikely" score used to mask candidates.
const MASK: f32 = -1.0e9;

/// Length-penalised score, computed as HF does (`f32 / f32(len^α)`).
#[cfg(not(feature = "mutant-beam-no-length-penalty"))]
// ANCHOR: length_penalty
pub fn length_normalised(sum_logprobs: f32, len: usize, length_penalty: f32) -> f32 {
    let denom = (len as f64).powf(length_penalty as f64) as f32;
    sum_logprobs / denom
}
// ANCHOR_END: length_penalty

/// The mutant: forgets to divide by the length penalty.
#[cfg(feature = "mutant-beam-no-length-penalty")]
pub fn length_normalised(sum_logprobs: f32, len: usize, length_penalty: f32) -> f32 {
    let denom = (len as f64).powf(length_penalty as f64) as f32;
    sum_logprobs + 0.0 * denom
}

#[derive(Clone)]
struct Finished {
    tokens: Vec<u32>,
    sum: f32,
    score: f32,
    done: bool,
}

/// The state of one group of beams (the whole beam without diversity).
struct Group {
    /// Generated tokens of each running beam.
    running: Vec<Vec<u32>>,
    /// Running sums of log-probs (HF `running_beam_scores`).
    scores: Vec<f32>,
    /// The `width` best finished hypotheses (HF `beam_scores` / `sequences`).
    finished: Vec<Finished>,
    /// HF `is_early_stop_heuristic_unsatisfied`.
    unsatisfied: bool,
    /// Set once this group stops.
    stopped: bool,
}

/// Fixed settings of a run, shared by the groups.
struct Run<'a> {
    vocab: usize,
    width: usize,
    keep: usize,
    max_new: usize,
    lp: f32,
    early: EarlyStopping,
    eos: &'a [u32],
}

impl Group {
    fn new(width: usize) -> Self {
        Group {
            running: vec![Vec::new(); width],
            scores: (0..width)
                .map(|j| if j == 0 { 0.0 } else { MASK })
                .collect(),
            finished: vec![
                Finished {
                    tokens: Vec::new(),
                    sum: MASK,
                    score: MASK,
                    done: false
                };
                width
            ],
            unsatisfied: true,
            stopped: false,
        }
    }

    /// One HF beam step at generated length `t`, given each beam's processed
    /// log-probs. Returns, per new running beam, (source beam, token).
    fn step(&mut self, run: &Run<'_>, rows: &[Vec<f32>], t: usize) -> Vec<(usize, u32)> {
        let (nb, vocab, keep) = (run.width, run.vocab, run.keep);
        // ANCHOR: beam_step
        let mut acc = Vec::with_capacity(nb * vocab);
        for (row, &score) in rows.iter().zip(&self.scores) {
            acc.extend(row.iter().map(|&x| x + score));
        }
        let mut cand = sorted_desc(&acc);
        cand.truncate(keep);
        let cand_scores: Vec<f32> = cand.iter().map(|&i| acc[i]).collect();
        let cand_src: Vec<usize> = cand.iter().map(|&i| i / vocab).collect();
        let cand_tok: Vec<u32> = cand.iter().map(|&i| (i % vocab) as u32).collect();
        let hits: Vec<bool> = cand_tok
            .iter()
            .map(|tok| run.eos.contains(tok) || t + 1 >= run.max_new)
            .collect();
        // Running beams for the next step: the best candidates that did not end.
        let masked: Vec<f32> = (0..keep)
            .map(|c| cand_scores[c] + if hits[c] { MASK } else { 0.0 })
            .collect();
        let next: Vec<usize> = sorted_desc(&masked).into_iter().take(nb).collect();
        // Finished set: merge in those of the top `nb` candidates that ended.
        let full = self.finished.iter().all(|f| f.done) && run.early == EarlyStopping::WhenFull;
        let mut merged: Vec<Finished> = self.finished.clone();
        for c in 0..keep {
            let just_finished = hits[c] && c < nb;
            let mut s = length_normalised(cand_scores[c], t + 1, run.lp);
            if full {
                s += MASK;
            }
            if !self.unsatisfied {
                s += MASK;
            }
            if !just_finished {
                s += MASK;
            }
            let mut tokens = self.running[cand_src[c]].clone();
            tokens.push(cand_tok[c]);
            merged.push(Finished {
                tokens,
                sum: cand_scores[c],
                score: s,
                done: just_finished,
            });
        }
        let merged_scores: Vec<f32> = merged.iter().map(|f| f.score).collect();
        self.finished = sorted_desc(&merged_scores)
            .into_iter()
            .take(nb)
            .map(|i| merged[i].clone())
            .collect();
        // ANCHOR_END: beam_step
        self.running = next
            .iter()
            .map(|&c| {
                let mut s = self.running[cand_src[c]].clone();
                s.push(cand_tok[c]);
                s
            })
            .collect();
        self.scores = next.iter().map(|&c| masked[c]).collect();

        // Stopping rules (HF `_check_early_stop_heuristic` and friends),
        // with `t + 1` tokens generated now.
        let best_len = if run.early == EarlyStopping::Never && run.lp > 0.0 {
            run.max_new
        } else {
            t + 1
        };
        let best_running = self.scores[0] / (best_len as f64).powf(run.lp as f64) as f32;
        let worst = self
            .finished
            .iter()
            .map(|f| f.score)
            .fold(f32::INFINITY, f32::min);
        let improvable = self
            .finished
            .iter()
            .any(|f| best_running > if f.done { worst } else { MASK });
        self.unsatisfied = self.unsatisfied && improvable;
        let all_done = self.finished.iter().all(|f| f.done);
        let open = !(all_done && run.early == EarlyStopping::WhenFull);
        let can_continue = !hits.iter().all(|&h| h);
        self.stopped = !(self.unsatisfied && open && can_continue);
        next.iter().map(|&c| (cand_src[c], cand_tok[c])).collect()
    }
}

/// Run beam search from `prompt` in slots `0..num_beams` of `model`, with
/// the beam settings of `params.strategy` (any other strategy searches
/// with one beam, which is greedy). The penalties in
/// `params.sampling` run on log-probs, its warpers (temperature, top-k, …)
/// are not used. Returns `num_return_sequences` hypotheses, best first,
/// each cut at its stop string or EOS (see [`BeamHypothesis::text`]).
///
/// With `num_beam_groups > 1` this is diverse (group) beam search: group
/// `g` owns slots `g·w .. (g+1)·w` (w = num_beams / groups) and runs the
/// step above on its own, after the earlier groups of the same step, with
/// the Hamming diversity penalty on the tokens they chose. Hugging Face
/// moved group beam search out of its core library, so this variant is
/// checked by properties (groups = 1 is plain beam search; a zero penalty
/// makes every group equal) rather than against a reference.
pub fn beam_search<M: LanguageModel + ?Sized>(
    model: &mut M,
    detok: &dyn Detokenize,
    prompt: &[u32],
    params: &GenerateParams,
) -> Result<Vec<BeamHypothesis>, DecodeError> {
    params.validate()?;
    if params.max_new_tokens == 0 {
        return Err(DecodeError::param(
            "max_new_tokens",
            0,
            "beam search needs at least 1",
        ));
    }
    let bp = match &params.strategy {
        Strategy::Beam(bp) => bp,
        // A streaming strategy is a beam of one whose only hypothesis is
        // the greedy path; `run` sends those to the generator instead.
        _ => &BeamParams {
            num_beams: 1,
            ..BeamParams::default()
        },
    };
    let nb = bp.num_beams;
    let vocab = model.vocab_size();
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
    let groups = bp.num_beam_groups;
    let width = nb / groups;
    let keep = 2usize.max(1 + params.eos_ids.len()) * width;
    if keep > width * vocab {
        return Err(DecodeError::ModelLimit {
            op: "beam_search",
            reason: format!(
                "needs {keep} candidates per step but only {width} beams x {vocab} tokens exist"
            ),
        });
    }
    let chain = params.sampling.build_chain(&params.eos_ids, false)?;
    let run = Run {
        vocab,
        width,
        keep,
        max_new: params
            .max_new_tokens
            .min(model.max_seq_len() - prompt.len()),
        lp: bp.length_penalty,
        early: bp.early_stopping,
        eos: &params.eos_ids,
    };

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
    let mut state: Vec<Group> = (0..groups).map(|_| Group::new(width)).collect();
    let mut t = 0usize;
    loop {
        let mut sources: Vec<usize> = (0..nb).collect();
        let mut chosen_now = vec![0u32; vocab];
        for (g, group) in state.iter_mut().enumerate() {
            if group.stopped {
                continue;
            }
            let mut rows = Vec::with_capacity(width);
            for j in 0..width {
                let row = &logits[g * width + j];
                if row.len() != vocab {
                    return Err(DecodeError::LengthMismatch {
                        op: "beam_search",
                        got: row.len(),
                        expected: vocab,
                    });
                }
                crate::probs::check_logits("beam_search", row)?;
                let mut lp_row = log_softmax(row);
                let mut hist = prompt.to_vec();
                hist.extend_from_slice(&group.running[j]);
                chain.apply(&TokenHistory::new(&hist, prompt.len()), &mut lp_row)?;
                // ANCHOR: diversity
                if bp.diversity_penalty > 0.0 {
                    for (x, &n) in lp_row.iter_mut().zip(&chosen_now) {
                        *x -= bp.diversity_penalty * n as f32;
                    }
                }
                // ANCHOR_END: diversity
                rows.push(lp_row);
            }
            let picks = group.step(&run, &rows, t);
            for (j, &(src, tok)) in picks.iter().enumerate() {
                sources[g * width + j] = g * width + src;
                chosen_now[tok as usize] += 1;
            }
        }
        t += 1;
        if state.iter().all(|g| g.stopped) {
            break;
        }
        // Move the caches to follow the surviving beams, then feed each
        // beam of a still-running group its new token.
        model
            .reorder(&sources)
            .map_err(DecodeError::model("beam_search reorder"))?;
        let mut feeds: Vec<(usize, [u32; 1])> = Vec::new();
        for (g, group) in state.iter().enumerate() {
            if group.stopped {
                continue;
            }
            for (j, s) in group.running.iter().enumerate() {
                feeds.push((g * width + j, [*s.last().unwrap_or(&0)]));
            }
        }
        let batch: Vec<(usize, &[u32])> = feeds.iter().map(|(slot, f)| (*slot, &f[..])).collect();
        let out = model
            .forward(&batch)
            .map_err(DecodeError::model("beam_search step"))?;
        if out.len() != batch.len() {
            return Err(DecodeError::ModelLimit {
                op: "beam_search",
                reason: format!(
                    "model returned {} rows for {} beams",
                    out.len(),
                    batch.len()
                ),
            });
        }
        for ((slot, _), row) in feeds.iter().zip(out) {
            logits[*slot] = row;
        }
    }
    let mut all: Vec<BeamHypothesis> = state
        .into_iter()
        .enumerate()
        .flat_map(|(g, group)| {
            group.finished.into_iter().map(move |f| BeamHypothesis {
                score: f.score,
                sum_logprobs: f.sum,
                tokens: f.tokens,
                group: g,
                text: String::new(),
                finish: FinishReason::MaxNewTokens,
            })
        })
        .collect();
    // Stable sort: within a group the HF order is kept for equal scores.
    all.sort_by(|a, b| b.score.total_cmp(&a.score));
    all.truncate(bp.num_return_sequences);
    for h in &mut all {
        h.cut(detok, params, model.max_seq_len() - prompt.len());
    }
    Ok(all)
}

impl BeamHypothesis {
    /// Cut the hypothesis as a streaming run would have ended it: the text
    /// stops before the first stop string (the tokens after the one that
    /// completed it are dropped) and never shows EOS; `finish` says why it
    /// ended. The score stays the one the search ranked it by.
    fn cut(&mut self, detok: &dyn Detokenize, params: &GenerateParams, room: usize) {
        let mut utf8 = Utf8Stream::new();
        let mut stop = StopMatcher::new(&params.stop_strings);
        let mut text = String::new();
        for (i, &id) in self.tokens.iter().enumerate() {
            if params.eos_ids.contains(&id) {
                self.finish = FinishReason::Eos(id);
                break;
            }
            let check = stop.push(&utf8.push(detok.token_bytes(id)));
            text.push_str(&check.emit);
            if let Some(s) = check.stopped {
                self.tokens.truncate(i + 1);
                self.finish = FinishReason::StopString(s);
                self.text = text;
                return;
            }
        }
        let check = stop.push(&utf8.finish());
        text.push_str(&check.emit);
        if let Some(s) = check.stopped {
            self.finish = FinishReason::StopString(s);
        } else {
            text.push_str(&stop.finish());
            if !matches!(self.finish, FinishReason::Eos(_)) {
                self.finish = if room < params.max_new_tokens && self.tokens.len() >= room {
                    FinishReason::ContextFull
                } else {
                    FinishReason::MaxNewTokens
                };
            }
        }
        self.text = text;
    }
}
