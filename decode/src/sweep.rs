//! Measuring what batching buys: run N requests together through a
//! [`Scheduler`] and time them. `infer bench-batch` and the batching
//! chapter print these figures.

use std::time::Instant;

use crate::detok::Detokenize;
use crate::error::DecodeError;
use crate::lm::LanguageModel;
use crate::params::{GenerateParams, Strategy};
use crate::scheduler::{Event, Request, Scheduler, SchedulerConfig};

/// The figures of one batch of requests run together.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepRow {
    /// Requests run together.
    pub clients: usize,
    /// Generated tokens of all requests per second of wall time.
    pub tok_per_s: f64,
    /// Decode throughput with every request decoding: the tokens of the
    /// steps that read no prompt and gave every request a token, per
    /// second of those steps.
    pub decode_tok_per_s: f64,
    /// Median time from the start to a request's first token, ms.
    pub ttft_ms: f64,
    /// Median gap between consecutive tokens of one request, ms.
    pub itl_p50_ms: f64,
    /// 99th-percentile gap, ms.
    pub itl_p99_ms: f64,
    /// Forward passes.
    pub steps: u64,
}

/// The `q`-quantile of `v` by nearest rank (0 for an empty list).
pub fn quantile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    v[i]
}

/// Start one greedy request per prompt at once, each generating
/// `new_tokens` (EOS is not watched, so every request runs its full
/// length), step the scheduler until all are done, and time it. Prompts
/// are read in chunks of `prefill_chunk` tokens, at most `prefill_budget`
/// prompt tokens a step (`None`: as many as the longest prompt, so the
/// prompts are read in a burst). The model comes back for the next
/// measurement.
///
/// # Errors
/// A request the scheduler refuses, or one that ends without its tokens.
pub fn measure<M: LanguageModel, D: Detokenize>(
    model: M,
    detok: D,
    prompts: &[Vec<u32>],
    new_tokens: usize,
    prefill_chunk: usize,
    prefill_budget: Option<usize>,
) -> Result<(SweepRow, M), DecodeError> {
    let clients = prompts.len();
    let longest = prompts.iter().map(Vec::len).max().unwrap_or(1);
    let config = SchedulerConfig {
        max_queue: clients.max(1),
        prefill_chunk,
        prefill_budget: prefill_budget.unwrap_or(longest).max(prefill_chunk),
    };
    let mut sched = Scheduler::new(model, detok, config)?;
    let params = GenerateParams {
        strategy: Strategy::Greedy,
        max_new_tokens: new_tokens,
        ..Default::default()
    };
    let mut index = std::collections::HashMap::new();
    for (i, p) in prompts.iter().enumerate() {
        let id = sched
            .submit(Request {
                prompt: p.clone(),
                params: params.clone(),
                stream: 0,
            })
            .map_err(|e| DecodeError::ModelLimit {
                op: "sweep",
                reason: e.to_string(),
            })?;
        index.insert(id, i);
    }
    let t0 = Instant::now();
    let mut last: Vec<Option<f64>> = vec![None; clients];
    let (mut ttft, mut gaps) = (Vec::new(), Vec::new());
    let mut generated = 0usize;
    // The steps in which every request decoded: their tokens and time.
    let (mut full_tokens, mut full_secs) = (0usize, 0.0f64);
    let mut before = 0.0;
    while !sched.is_idle() {
        let read = sched.stats().prompt_tokens;
        let events = sched.step();
        let now = t0.elapsed().as_secs_f64();
        let tokens = events
            .iter()
            .filter(|e| matches!(e, Event::Token { .. }))
            .count();
        if tokens == clients && sched.stats().prompt_tokens == read {
            full_tokens += tokens;
            full_secs += now - before;
        }
        before = now;
        for e in events {
            match e {
                Event::Token { id, .. } => {
                    generated += 1;
                    let slot = &mut last[index[&id]];
                    match slot {
                        None => ttft.push(now * 1e3),
                        Some(prev) => gaps.push((now - *prev) * 1e3),
                    }
                    *slot = Some(now);
                }
                Event::Ended { id, result } => {
                    return Err(DecodeError::ModelLimit {
                        op: "sweep",
                        reason: format!("request {id} ended early: {result:?}"),
                    });
                }
            }
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let row = SweepRow {
        clients,
        tok_per_s: generated as f64 / secs.max(1e-9),
        decode_tok_per_s: full_tokens as f64 / full_secs.max(1e-9),
        ttft_ms: quantile(&mut ttft, 0.5),
        itl_p50_ms: quantile(&mut gaps, 0.5),
        itl_p99_ms: quantile(&mut gaps, 0.99),
        steps: sched.stats().steps,
    };
    Ok((row, sched.into_model()))
}

/// The rows as a table: clients, aggregate tok/s and its ratio to the
/// first row, decode tok/s and its ratio, TTFT, inter-token p50 and p99
/// and the p99's ratio to the first row's.
pub fn table(rows: &[SweepRow]) -> String {
    let first = rows.first();
    let base = first.map_or(1.0, |r| r.tok_per_s).max(1e-9);
    let base_dec = first.map_or(1.0, |r| r.decode_tok_per_s).max(1e-9);
    let base_p99 = first.map_or(1.0, |r| r.itl_p99_ms).max(1e-9);
    let mut t = format!(
        "{:>7} {:>8} {:>6} {:>8} {:>6} {:>9} {:>9} {:>9} {:>6}\n",
        "clients", "tok/s", "x one", "decode", "x one", "TTFT ms", "ITL p50", "ITL p99", "x p99"
    );
    for r in rows {
        t += &format!(
            "{:>7} {:>8.1} {:>6.2} {:>8.1} {:>6.2} {:>9.1} {:>9.1} {:>9.1} {:>6.2}\n",
            r.clients,
            r.tok_per_s,
            r.tok_per_s / base,
            r.decode_tok_per_s,
            r.decode_tok_per_s / base_dec,
            r.ttft_ms,
            r.itl_p50_ms,
            r.itl_p99_ms,
            r.itl_p99_ms / base_p99
        );
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::toy::FnModel;

    #[test]
    fn quantiles_by_nearest_rank_and_a_toy_sweep() {
        let mut v = vec![5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(quantile(&mut v, 0.5), 3.0);
        assert_eq!(quantile(&mut v, 0.99), 5.0);
        assert_eq!(quantile(&mut [], 0.5), 0.0);
        let m = FnModel::new(4, 3, 64, |_: &[u32]| vec![0.0, 1.0, 0.0, 0.0]);
        let prompts = vec![vec![0, 1], vec![2], vec![3, 3, 3]];
        let (row, _) = measure(m, Vec::<Vec<u8>>::new(), &prompts, 5, 2, None).unwrap();
        assert_eq!(row.clients, 3);
        // Chunks of 2 and a budget of 3 prompt tokens a step: step 1 reads
        // the first two prompts (3 tokens), step 2 the third's first chunk,
        // step 3 its last token with its first new token; 4 more follow.
        assert_eq!(row.steps, 7);
    }
}
