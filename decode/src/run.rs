//! One way in for every strategy: [`run`] validates the parameters once,
//! streams greedy and sampling runs through a [`Generator`], and runs beam
//! search for [`Strategy::Beam`].

use crate::beam::{BeamHypothesis, beam_search};
use crate::detok::Detokenize;
use crate::error::DecodeError;
use crate::generate::{Generation, Generator, collect_steps};
use crate::lm::LanguageModel;
use crate::params::{GenerateParams, Strategy};

/// What a run produced.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// A greedy or sampling run, token by token.
    Tokens(Generation),
    /// Beam search's hypotheses, best first, each cut at its stop string or EOS.
    Beams(Vec<BeamHypothesis>),
}

impl Outcome {
    /// The text of the run (the best hypothesis for beam search).
    pub fn text(&self) -> &str {
        match self {
            Outcome::Tokens(g) => &g.text,
            Outcome::Beams(h) => h.first().map_or("", |h| h.text.as_str()),
        }
    }

    /// The generated ids (the best hypothesis for beam search).
    pub fn ids(&self) -> Vec<u32> {
        match self {
            Outcome::Tokens(g) => g.tokens.iter().map(|t| t.id).collect(),
            Outcome::Beams(h) => h.first().map(|h| h.tokens.clone()).unwrap_or_default(),
        }
    }
}

/// Generate from `prompt` with any strategy, starting in slot 0 (beam
/// search uses slots `0..num_beams`). Greedy and sampling runs call
/// `on_delta` with each piece of text as it becomes safe to show; beam
/// search calls it once, with the best hypothesis, when the search ends.
///
/// # Errors
/// Invalid parameters ([`GenerateParams::validate`]), a prompt the model
/// cannot take, or a model error.
pub fn run<M: LanguageModel + ?Sized>(
    model: &mut M,
    detok: &dyn Detokenize,
    prompt: &[u32],
    params: &GenerateParams,
    mut on_delta: impl FnMut(&str),
) -> Result<Outcome, DecodeError> {
    params.validate()?;
    if let Strategy::Beam(_) = params.strategy {
        let hyps = beam_search(model, detok, prompt, params)?;
        if let Some(best) = hyps.first().filter(|h| !h.text.is_empty()) {
            on_delta(&best.text);
        }
        return Ok(Outcome::Beams(hyps));
    }
    let steps = Generator::new(model, detok, 0, prompt, params)?;
    Ok(Outcome::Tokens(collect_steps(steps, on_delta)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::BeamParams;
    use crate::toy::FnModel;

    /// Token `t` is followed by `t + 1` (mod 4); token 3 is EOS.
    fn model(slots: usize) -> FnModel<impl Fn(&[u32]) -> Vec<f32>> {
        FnModel::new(4, slots, 16, |toks: &[u32]| {
            let next = (toks.last().copied().unwrap_or(0) + 1) % 4;
            (0..4u32)
                .map(|i| if i == next { 2.0 } else { 0.0 })
                .collect()
        })
    }

    #[test]
    fn every_strategy_cuts_at_eos_and_stop_strings_the_same_way() {
        let detok: Vec<Vec<u8>> = ["a", "b", "c", "<eos>"]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
        let base = GenerateParams {
            max_new_tokens: 8,
            eos_ids: vec![3],
            ..Default::default()
        };
        let beam = GenerateParams {
            strategy: Strategy::Beam(BeamParams {
                num_beams: 2,
                length_penalty: 0.0,
                ..Default::default()
            }),
            ..base.clone()
        };
        let mut streamed = String::new();
        let g = run(&mut model(2), &detok, &[0], &base, |d| streamed.push_str(d)).unwrap();
        let b = run(&mut model(2), &detok, &[0], &beam, |_| {}).unwrap();
        assert_eq!(g.text(), "bc");
        assert_eq!(streamed, "bc");
        assert_eq!(b.text(), "bc", "beam text never shows EOS");
        let stop = GenerateParams {
            stop_strings: vec!["c".into()],
            ..beam
        };
        let Outcome::Beams(h) = run(&mut model(2), &detok, &[0], &stop, |_| {}).unwrap() else {
            panic!("beam search returns hypotheses");
        };
        assert_eq!(h[0].text, "b");
        assert_eq!(
            h[0].tokens,
            vec![1, 2],
            "tokens end at the one that completed the stop string"
        );
        assert_eq!(h[0].finish, crate::FinishReason::StopString("c".into()));
    }
}
