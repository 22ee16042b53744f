//! Property tests of the logits processors (each is a book exercise).

use decode::penalties::{FrequencyPresencePenalty, PenaltyScope, RepetitionPenalty};
use decode::probs::{argmax, softmax, sorted_desc, top_n};
use decode::processors::{MinP, Temperature, TopK, TopP, TypicalP};
use decode::{DecodeError, LogitsProcessor, ProcessorOrder, SamplingParams, TokenHistory};
use proptest::prelude::*;

const NO_HISTORY: TokenHistory<'static> = TokenHistory {
    tokens: &[],
    prompt_len: 0,
};

fn logits_strategy() -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec(-10.0f32..10.0, 1..64)
}

/// Logits with pairwise distinct values (a shuffled, spaced ramp).
fn distinct_logits() -> impl Strategy<Value = Vec<f32>> {
    (2usize..64).prop_flat_map(|n| {
        Just((0..n).map(|i| i as f32 * 0.37 - 5.0).collect::<Vec<_>>()).prop_shuffle()
    })
}

fn kept(logits: &[f32]) -> Vec<usize> {
    (0..logits.len())
        .filter(|&i| logits[i] > f32::NEG_INFINITY)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]
    /// The `n` best are the head of the full descending order, ties and all.
    #[test]
    fn top_n_is_the_head_of_the_sorted_order(
        v in prop::collection::vec(prop_oneof![-3.0f32..3.0, Just(1.0f32)], 0..60),
        n in 0usize..70,
    ) {
        let want: Vec<usize> = sorted_desc(&v).into_iter().take(n).collect();
        prop_assert_eq!(top_n(&v, n), want);
    }

    // ANCHOR: prop_temperature_zero
    /// Temperature → 0 is greedy: the arg-max takes (almost) all the mass.
    #[test]
    fn temperature_to_zero_is_greedy(mut logits in logits_strategy()) {
        let best = argmax(&logits);
        // Make the maximum unique by a clear margin.
        logits[best] += 0.05;
        let mut x = logits.clone();
        Temperature::new(1e-3).unwrap().process(&NO_HISTORY, &mut x).unwrap();
        let p = softmax(&x);
        prop_assert!(p[best] > 0.999, "p[argmax] = {} after T = 1e-3", p[best]);
    }
    // ANCHOR_END: prop_temperature_zero

    /// Top-k with k = 1 keeps exactly the arg-max (when it is unique).
    #[test]
    fn top_k_one_is_greedy(logits in distinct_logits()) {
        let mut x = logits.clone();
        TopK::new(1).process(&NO_HISTORY, &mut x).unwrap();
        prop_assert_eq!(kept(&x), vec![argmax(&logits)]);
    }

    // ANCHOR: prop_top_k_exact
    /// Without ties, top-k keeps exactly min(k, V) tokens, and they are the largest.
    #[test]
    fn top_k_keeps_exactly_k(logits in distinct_logits(), k in 1usize..80) {
        let mut x = logits.clone();
        TopK::new(k).process(&NO_HISTORY, &mut x).unwrap();
        let kept = kept(&x);
        prop_assert_eq!(kept.len(), k.min(logits.len()), "k = {}, V = {}", k, logits.len());
        let min_kept = kept.iter().map(|&i| logits[i]).fold(f32::INFINITY, f32::min);
        for (i, &l) in logits.iter().enumerate() {
            if !kept.contains(&i) {
                prop_assert!(l < min_kept);
            }
        }
    }
    // ANCHOR_END: prop_top_k_exact

    /// top-k = V, top-p = 1, T = 1 (and min-p 0, typical 1) change nothing.
    #[test]
    fn identity_settings_change_nothing(logits in logits_strategy()) {
        let params = SamplingParams { top_k: logits.len(), ..SamplingParams::default() };
        for order in [ProcessorOrder::HuggingFace, ProcessorOrder::LlamaCpp] {
            let chain = SamplingParams { order, ..params.clone() }.build_chain(&[], true).unwrap();
            let mut x = logits.clone();
            chain.apply(&NO_HISTORY, &mut x).unwrap();
            prop_assert_eq!(&x, &logits);
        }
        let mut x = logits.clone();
        TopK::new(logits.len()).process(&NO_HISTORY, &mut x).unwrap();
        TopP::new(1.0).unwrap().process(&NO_HISTORY, &mut x).unwrap();
        Temperature::new(1.0).unwrap().process(&NO_HISTORY, &mut x).unwrap();
        prop_assert_eq!(&x, &logits);
    }

    /// Whatever the settings, the processed distribution is a distribution.
    #[test]
    fn processed_probs_are_a_distribution(
        logits in logits_strategy(),
        t in 0.05f32..3.0, k in 0usize..20, p in 0.01f32..=1.0, min_p in 0.0f32..=1.0,
        typ in 0.01f32..=1.0, llama in any::<bool>(),
    ) {
        let params = SamplingParams {
            temperature: t, top_k: k, top_p: p, min_p, typical_p: typ,
            order: if llama { ProcessorOrder::LlamaCpp } else { ProcessorOrder::HuggingFace },
            ..SamplingParams::default()
        };
        let mut x = logits.clone();
        params.build_chain(&[], true).unwrap().apply(&NO_HISTORY, &mut x).unwrap();
        let probs = softmax(&x);
        prop_assert!(probs.iter().all(|&q| q >= 0.0 && q.is_finite()));
        let sum: f32 = probs.iter().sum();
        prop_assert!((sum - 1.0).abs() < 1e-5, "sum = {}", sum);
        prop_assert!(!kept(&x).is_empty());
        // Typical-p may drop the arg-max (it keeps *typical* tokens); the others never do.
        if typ >= 1.0 {
            prop_assert!(kept(&x).contains(&argmax(&logits)), "the arg-max must survive");
        }
    }

    // ANCHOR: prop_nucleus
    /// The nucleus reaches p, contains the arg-max, and is minimal: without
    /// its least likely member it would fall short of p.
    #[test]
    fn nucleus_is_minimal_and_contains_argmax(logits in logits_strategy(), p in 0.01f32..1.0) {
        let probs = softmax(&logits);
        let mut x = logits.clone();
        TopP::new(p).unwrap().process(&NO_HISTORY, &mut x).unwrap();
        let kept = kept(&x);
        let mass: f32 = kept.iter().map(|&i| probs[i]).sum();
        let smallest = kept.iter().map(|&i| probs[i]).fold(f32::INFINITY, f32::min);
        prop_assert!(kept.contains(&argmax(&logits)));
        // Tolerance 1e-5: the cumulative sums are f32.
        prop_assert!(mass >= p - 1e-5, "nucleus mass {} < p = {} (kept {:?})", mass, p, kept);
        prop_assert!(mass - smallest < p + 1e-5, "not minimal: mass {} without {} still >= {}", mass, smallest, p);
    }
    // ANCHOR_END: prop_nucleus

    /// Min-p keeps exactly the tokens with p >= min_p · p_max.
    #[test]
    fn min_p_rule(logits in logits_strategy(), m in 0.0f32..=1.0) {
        let probs = softmax(&logits);
        let pmax = probs[argmax(&logits)];
        let mut x = logits.clone();
        MinP::new(m).unwrap().process(&NO_HISTORY, &mut x).unwrap();
        for i in 0..logits.len() {
            let expect_kept = probs[i] >= m * pmax || i == argmax(&logits);
            prop_assert_eq!(x[i] > f32::NEG_INFINITY, expect_kept, "token {} p {} pmax {}", i, probs[i], pmax);
        }
    }

    /// Typical-p keeps at least one token and reaches its mass.
    #[test]
    fn typical_reaches_mass(logits in logits_strategy(), m in 0.01f32..1.0) {
        let probs = softmax(&logits);
        let mut x = logits.clone();
        TypicalP::new(m).unwrap().process(&NO_HISTORY, &mut x).unwrap();
        let mass: f32 = kept(&x).iter().map(|&i| probs[i]).sum();
        prop_assert!(mass >= m - 1e-5, "typical mass {} < {}", mass, m);
    }

    // ANCHOR: prop_repetition
    /// The repetition penalty never raises a seen token's logit, its odds
    /// against any unseen token, or the total probability of the seen tokens.
    /// (A single seen token's probability *can* rise — when a more likely
    /// seen token is pushed down harder — so that is not the property.)
    #[test]
    fn repetition_penalty_never_favours_seen_tokens(
        logits in logits_strategy(), seen in prop::collection::vec(0u32..64, 0..10), pen in 1.0f32..3.0,
    ) {
        let seen: Vec<u32> = seen.into_iter().filter(|&t| (t as usize) < logits.len()).collect();
        let mut x = logits.clone();
        let hist = TokenHistory::new(&seen, seen.len());
        RepetitionPenalty::new(pen, PenaltyScope::PromptAndGenerated).unwrap().process(&hist, &mut x).unwrap();
        let (p0, p1) = (softmax(&logits), softmax(&x));
        let is_seen = |i: usize| seen.contains(&(i as u32));
        let mass = |p: &[f32]| -> f32 { (0..p.len()).filter(|&i| is_seen(i)).map(|i| p[i]).sum() };
        prop_assert!(mass(&p1) <= mass(&p0) + 1e-6);
        for i in (0..logits.len()).filter(|&i| is_seen(i)) {
            prop_assert!(x[i] <= logits[i], "seen token {} logit {} -> {}", i, logits[i], x[i]);
            for u in (0..logits.len()).filter(|&u| !is_seen(u)) {
                prop_assert!(x[i] - x[u] <= logits[i] - logits[u] + 1e-6);
            }
        }
    }
    // ANCHOR_END: prop_repetition

    /// Frequency and presence penalties equal their formula over the generated tokens.
    #[test]
    fn frequency_presence_formula(
        logits in logits_strategy(), prompt in prop::collection::vec(0u32..64, 0..6),
        generated in prop::collection::vec(0u32..64, 0..12), f in 0.0f32..2.0, pr in 0.0f32..2.0,
    ) {
        let v = logits.len() as u32;
        let mut tokens: Vec<u32> = prompt.iter().map(|t| t % v).collect();
        let plen = tokens.len();
        tokens.extend(generated.iter().map(|t| t % v));
        let mut x = logits.clone();
        FrequencyPresencePenalty::new(f, pr, PenaltyScope::GeneratedOnly).unwrap()
            .process(&TokenHistory::new(&tokens, plen), &mut x).unwrap();
        for i in 0..logits.len() {
            let count = tokens[plen..].iter().filter(|&&t| t as usize == i).count() as f32;
            let presence = if count > 0.0 { 1.0 } else { 0.0 };
            let expect = logits[i] - f * count - pr * presence;
            prop_assert!((x[i] - expect).abs() <= 1e-5, "token {}: {} vs {}", i, x[i], expect);
        }
    }
}

// ANCHOR: order_test
/// Logits [3, 2, 1], top-p 0.8, T 0.5: Hugging Face order (temperature
/// first) keeps {0}; llama.cpp order (temperature last) keeps {0, 1}.
#[test]
fn order_changes_result() {
    let run = |order| {
        let params = SamplingParams {
            temperature: 0.5,
            top_p: 0.8,
            order,
            ..SamplingParams::default()
        };
        let mut x = vec![3.0, 2.0, 1.0];
        params
            .build_chain(&[], true)
            .unwrap()
            .apply(&NO_HISTORY, &mut x)
            .unwrap();
        kept(&x)
    };
    assert_eq!(run(ProcessorOrder::HuggingFace), vec![0]);
    assert_eq!(run(ProcessorOrder::LlamaCpp), vec![0, 1]);
}
// ANCHOR_END: order_test

#[test]
fn invalid_parameters_are_errors() {
    let bad = [
        SamplingParams {
            top_p: 0.0,
            ..Default::default()
        },
        SamplingParams {
            top_p: 1.5,
            ..Default::default()
        },
        SamplingParams {
            top_p: f32::NAN,
            ..Default::default()
        },
        SamplingParams {
            temperature: 0.0,
            ..Default::default()
        },
        SamplingParams {
            temperature: -1.0,
            ..Default::default()
        },
        SamplingParams {
            repetition_penalty: 0.0,
            ..Default::default()
        },
        SamplingParams {
            repetition_penalty: -1.2,
            ..Default::default()
        },
        SamplingParams {
            frequency_penalty: -2.5,
            ..Default::default()
        },
        SamplingParams {
            presence_penalty: f32::NAN,
            ..Default::default()
        },
        SamplingParams {
            min_p: 1.5,
            ..Default::default()
        },
        SamplingParams {
            typical_p: 0.0,
            ..Default::default()
        },
    ];
    for p in bad {
        let err = p.build_chain(&[], true).unwrap_err();
        assert!(
            matches!(err, DecodeError::InvalidParameter { .. }),
            "{p:?} gave {err}"
        );
    }
}

#[test]
fn bad_logits_are_errors() {
    let chain = SamplingParams::default().build_chain(&[], true).unwrap();
    let mut nan = vec![1.0, f32::NAN];
    assert!(matches!(
        chain.apply(&NO_HISTORY, &mut nan),
        Err(DecodeError::InvalidLogit { index: 1, .. })
    ));
    let mut empty: Vec<f32> = vec![];
    assert!(matches!(
        chain.apply(&NO_HISTORY, &mut empty),
        Err(DecodeError::EmptyVocab { .. })
    ));
    let ban_all = SamplingParams {
        banned_ids: vec![0, 1],
        ..Default::default()
    };
    let mut x = vec![1.0, 2.0];
    let err = ban_all
        .build_chain(&[], true)
        .unwrap()
        .apply(&NO_HISTORY, &mut x)
        .unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::NothingLeft {
                op: "banned_tokens",
                ..
            }
        ),
        "{err}"
    );
    let out_of_range = SamplingParams {
        banned_ids: vec![7],
        ..Default::default()
    };
    let mut x = vec![1.0, 2.0];
    let err = out_of_range
        .build_chain(&[], true)
        .unwrap()
        .apply(&NO_HISTORY, &mut x)
        .unwrap_err();
    assert!(
        matches!(err, DecodeError::TokenOutOfRange { id: 7, .. }),
        "{err}"
    );
}

#[test]
fn top_k_zero_is_off_and_ties_are_kept() {
    let mut x = vec![1.0, 3.0, 3.0, 0.0];
    TopK::new(0).process(&NO_HISTORY, &mut x).unwrap();
    assert_eq!(kept(&x), vec![0, 1, 2, 3]);
    TopK::new(1).process(&NO_HISTORY, &mut x).unwrap();
    assert_eq!(
        kept(&x),
        vec![1, 2],
        "ties with the k-th value are kept (HF rule)"
    );
}

#[test]
fn penalty_scopes_select_the_right_tokens() {
    let toks = [1u32, 2, 3, 4, 5];
    let h = TokenHistory::new(&toks, 2);
    assert_eq!(PenaltyScope::PromptAndGenerated.select(&h), &toks[..]);
    assert_eq!(PenaltyScope::GeneratedOnly.select(&h), &[3, 4, 5]);
    assert_eq!(PenaltyScope::LastN(2).select(&h), &[4, 5]);
    assert_eq!(PenaltyScope::LastN(0).select(&h), &[] as &[u32]);
    assert_eq!(PenaltyScope::LastN(99).select(&h), &toks[..]);
}

#[test]
fn no_repeat_ngram_and_min_new_tokens() {
    let params = SamplingParams {
        no_repeat_ngram: 2,
        min_new_tokens: 2,
        ..Default::default()
    };
    let chain = params.build_chain(&[4], false).unwrap();
    // History 1 2 3 1: the bigram (1, 2) exists, so after 1, token 2 is banned;
    // only 1 token generated so far (< 2), so EOS (4) is banned too.
    let toks = [1u32, 2, 3, 1];
    let mut x = vec![0.0; 5];
    chain.apply(&TokenHistory::new(&toks, 3), &mut x).unwrap();
    assert_eq!(kept(&x), vec![0, 1, 3]);
    // With 2 generated tokens EOS is allowed again.
    let mut x = vec![0.0; 5];
    chain.apply(&TokenHistory::new(&toks, 2), &mut x).unwrap();
    assert_eq!(kept(&x), vec![0, 1, 3, 4]);
}
