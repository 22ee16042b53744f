//! A model that chooses greedy tokens itself ([`LanguageModel::forward_greedy`],
//! as a model on a GPU does) gives the generator the same tokens as its
//! logits would, and is asked only when nothing needs the logits.

mod common;

use decode::{
    DecodeError, GenerateParams, LanguageModel, ModelError, SamplingParams, Strategy, generate,
};

/// A toy model that also picks greedily "on its device": the argmax and
/// its log-probability in f64, computed apart from decode's own code.
struct ChoosesItself<M> {
    inner: M,
    greedy_calls: usize,
    /// Hand back NaN log-probabilities, as a device does for bad logits.
    poisoned: bool,
}

impl<M: LanguageModel> LanguageModel for ChoosesItself<M> {
    fn vocab_size(&self) -> usize {
        self.inner.vocab_size()
    }
    fn num_slots(&self) -> usize {
        self.inner.num_slots()
    }
    fn max_seq_len(&self) -> usize {
        self.inner.max_seq_len()
    }
    fn seq_len(&self, slot: usize) -> usize {
        self.inner.seq_len(slot)
    }
    fn forward(&mut self, batch: &[(usize, &[u32])]) -> Result<Vec<Vec<f32>>, ModelError> {
        self.inner.forward(batch)
    }
    fn forward_greedy(
        &mut self,
        batch: &[(usize, &[u32])],
    ) -> Result<Option<Vec<(u32, f32)>>, ModelError> {
        self.greedy_calls += 1;
        let rows = self.inner.forward(batch)?;
        let poisoned = self.poisoned;
        Ok(Some(
            rows.iter()
                .map(|r| {
                    let mut id = 0;
                    for (i, &v) in r.iter().enumerate() {
                        if v > r[id] {
                            id = i;
                        }
                    }
                    let m = f64::from(r[id]);
                    let lse = m + r
                        .iter()
                        .map(|&v| (f64::from(v) - m).exp())
                        .sum::<f64>()
                        .ln();
                    let lp = if poisoned { f32::NAN } else { (m - lse) as f32 };
                    (id as u32, lp)
                })
                .collect(),
        ))
    }
    fn truncate(&mut self, slot: usize, len: usize) -> Result<(), ModelError> {
        self.inner.truncate(slot, len)
    }
    fn reorder(&mut self, sources: &[usize]) -> Result<(), ModelError> {
        self.inner.reorder(sources)
    }
    fn clear(&mut self, slot: usize) {
        self.inner.clear(slot)
    }
}

fn wrap<M>(inner: M) -> ChoosesItself<M> {
    ChoosesItself {
        inner,
        greedy_calls: 0,
        poisoned: false,
    }
}

#[test]
fn greedy_chosen_by_the_model_equals_greedy_from_the_logits() {
    let detok = common::letters(12);
    for seed in 0..20 {
        let params = GenerateParams {
            max_new_tokens: 15,
            ..Default::default()
        };
        let want = generate(&mut common::model(12, seed, 1), &detok, &[1, 2], &params).unwrap();
        let mut m = wrap(common::model(12, seed, 1));
        let got = generate(&mut m, &detok, &[1, 2], &params).unwrap();
        assert_eq!(
            m.greedy_calls,
            got.tokens.len(),
            "every step chose on the model"
        );
        assert_eq!(got.text, want.text);
        assert_eq!(got.finish, want.finish);
        for (g, w) in got.tokens.iter().zip(&want.tokens) {
            assert_eq!(g.id, w.id);
            assert!(
                (g.logprob - w.logprob).abs() < 1e-4,
                "{} against {}",
                g.logprob,
                w.logprob
            );
        }
    }
}

#[test]
fn anything_that_needs_the_logits_keeps_them() {
    let detok = common::letters(12);
    let asks = [
        GenerateParams {
            top_logprobs: 2,
            ..Default::default()
        },
        GenerateParams {
            explain_top: 2,
            ..Default::default()
        },
        GenerateParams {
            sampling: SamplingParams {
                repetition_penalty: 1.3,
                ..Default::default()
            },
            ..Default::default()
        },
        GenerateParams {
            strategy: Strategy::Sample { seed: 3 },
            sampling: SamplingParams {
                temperature: 0.8,
                ..Default::default()
            },
            ..Default::default()
        },
    ];
    for mut params in asks {
        params.max_new_tokens = 6;
        let mut m = wrap(common::model(12, 4, 1));
        generate(&mut m, &detok, &[1, 2], &params).unwrap();
        assert_eq!(m.greedy_calls, 0, "{params:?}");
    }
}

#[test]
fn a_nan_log_probability_from_the_model_is_refused() {
    let detok = common::letters(12);
    let mut m = wrap(common::model(12, 4, 1));
    m.poisoned = true;
    let params = GenerateParams {
        max_new_tokens: 4,
        ..Default::default()
    };
    let err = generate(&mut m, &detok, &[1, 2], &params).unwrap_err();
    assert!(matches!(err, DecodeError::InvalidLogit { .. }), "{err}");
}
