//! Sampling: reproducibility, the chi-square frequency test, batching, greedy.

mod common;

use decode::probs::{check_logits, exp_weights, log_sum_exp, softmax, weights};
use decode::{
    DecodeError, FinishReason, GenerateParams, Generator, SamplingParams, Strategy, generate,
    generate_batch, sample_from_logits, sample_with_logprob, seeded_rng,
};
use proptest::prelude::*;

fn sample_params(seed: u64, n: usize) -> GenerateParams {
    GenerateParams {
        strategy: Strategy::Sample { seed },
        sampling: SamplingParams {
            temperature: 0.9,
            top_p: 0.95,
            ..Default::default()
        },
        max_new_tokens: n,
        ..Default::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, cases: 64, ..ProptestConfig::default() })]

    // ANCHOR: prop_seeded
    /// Same seed, same tokens: two runs of the same sampler agree exactly.
    #[test]
    fn seeded_sampling_is_reproducible(seed in any::<u64>(), v in 2usize..20, tseed in any::<u64>(), n in 1usize..20) {
        let detok = common::letters(v);
        let params = sample_params(seed, n);
        let a = generate(&mut common::model(v, tseed, 1), &detok, &[0], &params).unwrap();
        let b = generate(&mut common::model(v, tseed, 1), &detok, &[0], &params).unwrap();
        prop_assert_eq!(a.tokens, b.tokens);
        prop_assert_eq!(a.text.len(), n);
    }
    // ANCHOR_END: prop_seeded

    /// One pass of exponentials serves the draw and the log-probability:
    /// the same token as [`sample_from_logits`] from the same generator, the
    /// bits of [`log_sum_exp`], and weights that sum to their total. Rows of
    /// odd lengths (whole lanes and a tail), some tokens masked.
    #[test]
    fn one_pass_draws_and_scores_as_the_two_did(n in 1usize..200, seed in any::<u64>(), masked in 0usize..4) {
        let mut rng = seeded_rng(seed, 7);
        let mut logits: Vec<f32> = (0..n).map(|_| rand::Rng::gen_range(&mut rng, -20.0f32..20.0)).collect();
        for k in 0..masked.min(n - 1) {
            logits[(k * 31 + seed as usize) % n] = f32::NEG_INFINITY;
        }
        prop_assume!(logits.iter().any(|x| x.is_finite()));
        let (mut a, mut b) = (seeded_rng(seed, 1), seeded_rng(seed, 1));
        let (id, logprob) = sample_with_logprob(&logits, &mut a);
        prop_assert_eq!(id, sample_from_logits(&logits, &mut b));
        let lse = log_sum_exp(&logits);
        prop_assert_eq!(weights(&logits).log_sum_exp.to_bits(), lse.to_bits());
        prop_assert_eq!(logprob.to_bits(), (logits[id as usize] - lse).to_bits());
        let (w, total) = exp_weights(&logits);
        let sum: f64 = w.iter().map(|&x| f64::from(x)).sum();
        prop_assert!((sum - total).abs() <= 1e-9 * total, "{} vs {}", sum, total);
        for (x, p) in logits.iter().zip(&w) {
            prop_assert_eq!(*x == f32::NEG_INFINITY, *p == 0.0);
        }
    }

    /// The vectorised check finds the first NaN or `+inf` wherever it is.
    #[test]
    fn check_logits_names_the_first_bad_value(n in 1usize..200, at in any::<usize>(), nan in any::<bool>()) {
        let mut logits = vec![0.5f32; n];
        let at = at % n;
        logits[at] = if nan { f32::NAN } else { f32::INFINITY };
        if at + 1 < n {
            logits[n - 1] = f32::NAN;
        }
        let err = check_logits("test", &logits).unwrap_err();
        prop_assert!(matches!(err, DecodeError::InvalidLogit { index, .. } if index == at), "{}", err);
        logits[at] = 0.0;
        logits[n - 1] = 0.0;
        prop_assert!(check_logits("test", &logits).is_ok());
    }

    /// Greedy = the arg-max path, and `temperature = 0` under sampling is greedy.
    #[test]
    fn temperature_zero_sampling_is_greedy(seed in any::<u64>(), v in 2usize..20, tseed in any::<u64>()) {
        let detok = common::letters(v);
        let greedy = GenerateParams { max_new_tokens: 8, ..Default::default() };
        let mut t0 = sample_params(seed, 8);
        t0.sampling.temperature = 0.0;
        let a = generate(&mut common::model(v, tseed, 1), &detok, &[0], &greedy).unwrap();
        let b = generate(&mut common::model(v, tseed, 1), &detok, &[0], &t0).unwrap();
        prop_assert_eq!(&a.tokens, &b.tokens);
        let tab = common::table(v, tseed);
        let mut prev = 0usize;
        for t in &a.tokens {
            prop_assert_eq!(t.id as usize, decode::probs::argmax(&tab[prev]));
            prev = t.id as usize;
        }
    }

    /// Batched generation equals running each prompt alone in its stream.
    #[test]
    fn batch_equals_single(seed in any::<u64>(), v in 2usize..20, tseed in any::<u64>(),
                           prompts in prop::collection::vec(prop::collection::vec(0u32..20, 1..4), 1..4)) {
        let prompts: Vec<Vec<u32>> = prompts.into_iter().map(|p| p.into_iter().map(|t| t % v as u32).collect()).collect();
        let detok = common::letters(v);
        let params = sample_params(seed, 6);
        let mut m = common::model(v, tseed, prompts.len());
        let batch = generate_batch(&mut m, &detok, &prompts, &params).unwrap();
        // Sequence 0 uses stream 0, exactly like a single run.
        let single = generate(&mut common::model(v, tseed, 1), &detok, &prompts[0], &params).unwrap();
        prop_assert_eq!(&batch[0].tokens, &single.tokens);
        // Greedy batches equal greedy singles for every prompt.
        let greedy = GenerateParams { max_new_tokens: 6, ..Default::default() };
        let gb = generate_batch(&mut common::model(v, tseed, prompts.len()), &detok, &prompts, &greedy).unwrap();
        for (i, p) in prompts.iter().enumerate() {
            let g = generate(&mut common::model(v, tseed, 1), &detok, p, &greedy).unwrap();
            prop_assert_eq!(&gb[i].tokens, &g.tokens);
        }
    }
}

// ANCHOR: chi_square
/// Empirical frequencies match the distribution: Pearson's chi-square test
/// with N = 20 000 draws at seed 7, significance 0.001. Critical values of
/// χ² at p = 0.001 (from the standard table) for df = 5 and df = 9.
#[test]
fn sampling_frequencies_match_distribution() {
    let cases: [(&[f32], f64); 3] = [
        (&[2.0, 1.0, 0.5, 0.0, -1.0, -3.0], 20.515),
        (&[0.0; 6], 20.515),
        (
            &[1.0, 1.2, 0.3, -0.5, 2.0, 0.1, 0.0, -2.0, 0.7, 1.1],
            27.877,
        ),
    ];
    let n = 20_000usize;
    for (logits, critical) in cases {
        let probs = softmax(logits);
        let mut counts = vec![0usize; logits.len()];
        let mut rng = seeded_rng(7, 0);
        for _ in 0..n {
            counts[sample_from_logits(logits, &mut rng) as usize] += 1;
        }
        let chi2: f64 = counts
            .iter()
            .zip(&probs)
            .map(|(&c, &p)| {
                let e = p as f64 * n as f64;
                (c as f64 - e).powi(2) / e
            })
            .sum();
        assert!(
            chi2 < critical,
            "chi-square {chi2:.2} >= {critical} for logits {logits:?}: counts {counts:?}"
        );
    }
}
// ANCHOR_END: chi_square

#[test]
fn masked_tokens_are_never_sampled() {
    let logits = [f32::NEG_INFINITY, 0.0, f32::NEG_INFINITY, 1.0];
    let mut rng = seeded_rng(1, 0);
    for _ in 0..1000 {
        let t = sample_from_logits(&logits, &mut rng);
        assert!(t == 1 || t == 3, "drew masked token {t}");
    }
}

#[test]
fn streaming_deltas_concatenate_to_text_and_logprobs_are_reported() {
    let detok = common::letters(8);
    let mut params = sample_params(3, 10);
    params.top_logprobs = 3;
    params.explain_top = 3;
    let mut m = common::model(8, 5, 1);
    let mut streamed = String::new();
    let g = Generator::new(&mut m, &detok, 0, &[1, 2], &params).unwrap();
    let collected = decode::collect_steps(g, |d| streamed.push_str(d)).unwrap();
    assert_eq!(streamed, collected.text);
    assert_eq!(collected.finish, Some(FinishReason::MaxNewTokens));
    assert_eq!(collected.explain.len(), 10);
    for t in &collected.tokens {
        assert!(t.logprob <= 0.0 && t.logprob.is_finite());
        assert!(!t.top.is_empty() && t.top.len() <= 3);
        assert!(
            t.top.windows(2).all(|w| w[0].1 >= w[1].1),
            "top alternatives sorted"
        );
    }
    // The explain table marks the chosen token and prints.
    let table = collected.explain[0].to_string();
    assert!(table.contains("<- chosen"), "{table}");
}

#[test]
fn eos_ends_generation_and_min_new_tokens_delays_it() {
    // Token 2 is overwhelmingly likely after anything: it is the EOS.
    let tab: Vec<Vec<f32>> = (0..4).map(|_| vec![0.0, 0.0, 10.0, 0.0]).collect();
    let detok = common::letters(4);
    let mut params = GenerateParams {
        max_new_tokens: 10,
        eos_ids: vec![2],
        ..Default::default()
    };
    let g = generate(
        &mut decode::toy::bigram_model(tab.clone(), 1, 64),
        &detok,
        &[0],
        &params,
    )
    .unwrap();
    assert_eq!(g.finish, Some(FinishReason::Eos(2)));
    assert_eq!(g.tokens.len(), 1);
    assert_eq!(g.text, "");
    params.sampling.min_new_tokens = 3;
    let g = generate(
        &mut decode::toy::bigram_model(tab, 1, 64),
        &detok,
        &[0],
        &params,
    )
    .unwrap();
    assert_eq!(g.tokens.len(), 4, "3 forced tokens, then EOS");
    assert_eq!(g.finish, Some(FinishReason::Eos(2)));
}

#[test]
fn context_limit_and_bad_prompts() {
    let detok = common::letters(4);
    let params = GenerateParams {
        max_new_tokens: 100,
        ..Default::default()
    };
    let mut m = decode::toy::bigram_model(common::table(4, 1), 1, 5);
    let g = generate(&mut m, &detok, &[0, 1], &params).unwrap();
    assert_eq!(g.finish, Some(FinishReason::ContextFull));
    assert_eq!(g.tokens.len(), 3);
    assert!(generate(&mut m, &detok, &[], &params).is_err());
    assert!(generate(&mut m, &detok, &[9], &params).is_err());
}

#[test]
fn resume_feeds_only_the_uncached_suffix() {
    let detok = common::letters(6);
    let params = GenerateParams {
        max_new_tokens: 4,
        ..Default::default()
    };
    let full = generate(&mut common::model(6, 9, 1), &detok, &[1, 2, 3], &params).unwrap();
    let mut m = common::model(6, 9, 1);
    use decode::LanguageModel;
    m.forward(&[(0, &[1, 2])]).unwrap();
    let fed_before = m.tokens_fed;
    let g = Generator::resume(&mut m, &detok, 0, &[1, 2, 3], &params).unwrap();
    let resumed = decode::collect_steps(g, |_| {}).unwrap();
    assert_eq!(resumed.tokens, full.tokens);
    assert_eq!(
        m.tokens_fed - fed_before,
        1 + 3,
        "one new prompt token, then one per step"
    );
}

/// Weights over many orders of magnitude, some zero, as a softmax of
/// spread logits gives them.
fn spread_weights(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = seeded_rng(seed, 3);
    (0..n)
        .map(|i| {
            if i % 37 == 5 {
                0.0
            } else {
                (-30.0 * rand::Rng::r#gen::<f32>(&mut rng)).exp()
            }
        })
        .collect()
}

/// The block search's token is the walk's, for points between the walk's
/// boundaries and for points exactly on them and one rounding either side,
/// where the search's own sums could round the other way (with its margin
/// removed it gives another token there).
#[test]
fn token_at_is_the_walks_token_even_at_its_boundaries() {
    use decode::sample::{token_at, walk};
    for (n, seed) in [(49_152, 1), (1000, 2), (300, 3), (17, 4), (256, 5)] {
        let w = spread_weights(n, seed);
        let total: f64 = w.iter().map(|&x| f64::from(x)).sum();
        let stride = (n / 700).max(1);
        let mut cum = 0.0f64;
        for (i, &x) in w.iter().enumerate() {
            cum += f64::from(x);
            if i % stride != 0 || cum >= total {
                continue;
            }
            for u in [cum, cum.next_up(), cum.next_down()] {
                assert_eq!(
                    token_at(&w, total, u),
                    walk(&w, u),
                    "n {n}, token {i}, u {u:e}"
                );
            }
        }
        for k in 0..2000 {
            let u = total * (k as f64 + 0.5) / 2000.0;
            assert_eq!(token_at(&w, total, u), walk(&w, u), "n {n}, u {u:e}");
        }
    }
}
