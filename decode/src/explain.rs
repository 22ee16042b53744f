//! The explain table: what each processor did to the leading candidates.

use crate::chain::ChainTrace;
use crate::probs::{softmax, top_n};
use std::fmt;

/// One candidate token's journey through the chain.
#[derive(Debug, Clone)]
pub struct ExplainRow {
    /// Token id.
    pub id: u32,
    /// Token text (lossy UTF-8).
    pub text: String,
    /// Logit from the model.
    pub raw: f32,
    /// After the penalties.
    pub after_penalties: f32,
    /// After dividing by the temperature (`None` when no temperature runs).
    pub after_temperature: Option<f32>,
    /// `None` if kept, else the processor that removed it.
    pub cut_by: Option<&'static str>,
    /// Probability in the final distribution (0 if removed).
    pub final_prob: f32,
    /// Whether this token was chosen.
    pub chosen: bool,
}

/// One decoding step of the explain table.
#[derive(Debug, Clone)]
pub struct ExplainStep {
    /// Index of the step (0 = first generated token).
    pub step: usize,
    /// Leading candidates, highest raw logit first.
    pub rows: Vec<ExplainRow>,
    /// The chosen token.
    pub chosen: u32,
}

impl ExplainStep {
    /// Build the table from a chain trace: the `n` best tokens by raw logit,
    /// the `n` best by final probability, and the chosen one.
    pub fn from_trace(
        step: usize,
        trace: &ChainTrace,
        chosen: u32,
        n: usize,
        text_of: impl Fn(u32) -> String,
    ) -> ExplainStep {
        let probs = softmax(&trace.final_logits);
        let mut ids = top_n(&trace.raw, n);
        for i in top_n(&probs, n) {
            if !ids.contains(&i) {
                ids.push(i);
            }
        }
        if !ids.contains(&(chosen as usize)) {
            ids.push(chosen as usize);
        }
        ids.sort_by(|&a, &b| trace.raw[b].total_cmp(&trace.raw[a]).then(a.cmp(&b)));
        let rows = ids
            .into_iter()
            .map(|i| ExplainRow {
                id: i as u32,
                text: text_of(i as u32),
                raw: trace.raw[i],
                after_penalties: trace.after_penalties[i],
                after_temperature: trace.temperature.map(|t| trace.after_penalties[i] / t),
                cut_by: trace.cut_by[i],
                final_prob: probs[i],
                chosen: i as u32 == chosen,
            })
            .collect();
        ExplainStep { step, rows, chosen }
    }
}

fn num(x: f32) -> String {
    if x == f32::NEG_INFINITY {
        "-inf".to_string()
    } else {
        format!("{x:.3}")
    }
}

impl fmt::Display for ExplainStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "step {}", self.step)?;
        writeln!(
            f,
            "  {:>7} {:<14} {:>9} {:>9} {:>9} {:<20} {:>8}",
            "id", "token", "raw", "penalized", "/T", "kept?", "prob"
        )?;
        for r in &self.rows {
            let t = r.after_temperature.map(num).unwrap_or_else(|| "-".into());
            let kept = match r.cut_by {
                None => "kept".to_string(),
                Some(p) => format!("cut by {p}"),
            };
            let mut text = format!("{:?}", r.text);
            if text.chars().count() > 14 {
                text = text.chars().take(13).collect::<String>() + "…";
            }
            writeln!(
                f,
                "  {:>7} {:<14} {:>9} {:>9} {:>9} {:<20} {:>8.4}{}",
                r.id,
                text,
                num(r.raw),
                num(r.after_penalties),
                t,
                kept,
                r.final_prob,
                if r.chosen { "  <- chosen" } else { "" }
            )?;
        }
        Ok(())
    }
}
