//! Beam search properties on toy models.

mod common;

use decode::probs::log_softmax;
use decode::toy::greedy_trap_model;
use decode::{BeamParams, EarlyStopping, GenerateParams, Strategy, beam_search, generate};
use proptest::prelude::*;

fn beam(
    num_beams: usize,
    lp: f32,
    es: EarlyStopping,
    ret: usize,
    n: usize,
    eos: Vec<u32>,
) -> GenerateParams {
    GenerateParams {
        strategy: Strategy::Beam(BeamParams {
            num_beams,
            length_penalty: lp,
            early_stopping: es,
            num_return_sequences: ret,
            ..Default::default()
        }),
        max_new_tokens: n,
        eos_ids: eos,
        ..Default::default()
    }
}

fn early() -> impl proptest::strategy::Strategy<Value = EarlyStopping> {
    prop_oneof![
        Just(EarlyStopping::WhenFull),
        Just(EarlyStopping::Heuristic),
        Just(EarlyStopping::Never)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, cases: 128, ..ProptestConfig::default() })]

    /// Beam width 1 (without EOS) is greedy search.
    #[test]
    fn width_one_is_greedy(v in 2usize..12, tseed in any::<u64>(), n in 1usize..8, lp in -1.0f32..2.0, es in early()) {
        let detok = common::letters(v);
        let g = generate(&mut common::model(v, tseed, 1), &detok, &[0],
                         &GenerateParams { max_new_tokens: n, ..Default::default() }).unwrap();
        let b = beam_search(&mut common::model(v, tseed, 1), &common::letters(26), &[0], &beam(1, lp, es, 1, n, vec![])).unwrap();
        let gi: Vec<u32> = g.tokens.iter().map(|t| t.id).collect();
        prop_assert_eq!(&b[0].tokens, &gi);
    }

    // ANCHOR: prop_beam_scores
    /// Returned beams are sorted, and each score equals the recomputed sum
    /// of log-probs along its tokens divided by len^α.
    #[test]
    fn beams_sorted_and_scores_recomputed(
        v in 3usize..12, tseed in any::<u64>(), nb in 1usize..5, n in 1usize..7,
        lp in 0.5f32..2.0, es in early(), eos in prop::option::of(0u32..3),
    ) {
        let eos: Vec<u32> = eos.into_iter().collect();
        let keep = 2usize.max(1 + eos.len()) * nb;
        prop_assume!(keep <= nb * v);
        let params = beam(nb, lp, es, nb, n, eos);
        let hyps = beam_search(&mut common::model(v, tseed, nb), &common::letters(26), &[0], &params).unwrap();
        prop_assert_eq!(hyps.len(), nb);
        prop_assert!(hyps.windows(2).all(|w| w[0].score >= w[1].score), "not sorted: {:?}", hyps);
        let tab = common::table(v, tseed);
        for h in hyps.iter().filter(|h| h.score > -1e8) {
            let mut prev = 0usize;
            let mut sum = 0.0f32;
            for &t in &h.tokens {
                sum += log_softmax(&tab[prev])[t as usize];
                prev = t as usize;
            }
            let expect = sum / (h.tokens.len() as f32).powf(lp);
            // Tolerance 1e-4: f32 sums of at most 7 terms in a different order.
            prop_assert!((h.score - expect).abs() <= 1e-4 * (1.0 + expect.abs()),
                "tokens {:?}: score {} vs recomputed {} (sum {})", h.tokens, h.score, expect, sum);
        }
    }
    // ANCHOR_END: prop_beam_scores

    /// The KV cache follows the beams: each step feeds one token per beam,
    /// never a prefix again.
    #[test]
    fn beam_never_recomputes_prefixes(v in 3usize..12, tseed in any::<u64>(), nb in 1usize..5, n in 1usize..7) {
        let mut m = common::model(v, tseed, nb);
        let prompt = [0u32, 1, 2];
        let hyps = beam_search(&mut m, &common::letters(26), &prompt, &beam(nb, 1.0, EarlyStopping::Never, 1, n, vec![])).unwrap();
        prop_assert!(m.tokens_fed <= prompt.len() + nb * (n - 1), "fed {} tokens", m.tokens_fed);
        prop_assert_eq!(hyps[0].tokens.len(), n);
    }
}

fn groups(nb: usize, g: usize, div: f32, n: usize) -> GenerateParams {
    GenerateParams {
        strategy: Strategy::Beam(BeamParams {
            num_beams: nb,
            num_beam_groups: g,
            diversity_penalty: div,
            num_return_sequences: nb,
            length_penalty: 1.0,
            early_stopping: EarlyStopping::Never,
        }),
        max_new_tokens: n,
        ..Default::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, cases: 64, ..ProptestConfig::default() })]

    /// Diverse beam search with a zero penalty: every group is an ordinary
    /// beam search of width num_beams / groups.
    #[test]
    fn zero_diversity_groups_equal_plain_beam(v in 3usize..10, tseed in any::<u64>(), w in 1usize..3, g in 1usize..4, n in 1usize..6) {
        let plain = beam_search(&mut common::model(v, tseed, w), &common::letters(26), &[0], &beam(w, 1.0, EarlyStopping::Never, w, n, vec![])).unwrap();
        let div = beam_search(&mut common::model(v, tseed, w * g), &common::letters(26), &[0], &groups(w * g, g, 0.0, n)).unwrap();
        for gi in 0..g {
            let mine: Vec<&Vec<u32>> = div.iter().filter(|h| h.group == gi).map(|h| &h.tokens).collect();
            let want: Vec<&Vec<u32>> = plain.iter().map(|h| &h.tokens).collect();
            prop_assert_eq!(mine, want, "group {}", gi);
        }
    }

    /// A large diversity penalty makes groups of width 1 start with different tokens.
    #[test]
    fn strong_diversity_separates_groups(v in 4usize..10, tseed in any::<u64>(), g in 2usize..4, n in 1usize..5) {
        let hyps = beam_search(&mut common::model(v, tseed, g), &common::letters(26), &[0], &groups(g, g, 100.0, n)).unwrap();
        let mut firsts: Vec<u32> = hyps.iter().map(|h| h.tokens[0]).collect();
        firsts.sort();
        firsts.dedup();
        prop_assert_eq!(firsts.len(), g);
    }
}

// ANCHOR: greedy_trap
/// A model whose best two-token sequence starts with the second most
/// likely token: greedy misses it, beam search of width 2 finds it.
#[test]
fn wide_beam_finds_what_greedy_misses() {
    let detok = common::letters(16);
    let greedy = generate(
        &mut greedy_trap_model(1),
        &detok,
        &[0],
        &GenerateParams {
            max_new_tokens: 3,
            eos_ids: vec![4],
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        greedy.tokens[0].id, 1,
        "greedy takes the locally best token A"
    );
    for nb in 2..5 {
        let hyps = beam_search(
            &mut greedy_trap_model(nb),
            &common::letters(26),
            &[0],
            &beam(nb, 0.0, EarlyStopping::Never, 1, 3, vec![4]),
        )
        .unwrap();
        assert_eq!(
            hyps[0].tokens,
            vec![2, 3, 4],
            "width {nb}: B C EOS is the best sequence"
        );
    }
}
// ANCHOR_END: greedy_trap

#[test]
fn when_full_stops_with_num_beams_finished() {
    let hyps = beam_search(
        &mut greedy_trap_model(3),
        &common::letters(26),
        &[0],
        &beam(3, 1.0, EarlyStopping::WhenFull, 3, 10, vec![4]),
    )
    .unwrap();
    assert_eq!(hyps.len(), 3);
    assert!(hyps.iter().all(|h| h.score > -1e8 && h.tokens.len() <= 10));
}

#[test]
fn invalid_beam_parameters() {
    let m = || greedy_trap_model(2);
    assert!(
        beam_search(
            &mut m(),
            &common::letters(26),
            &[0],
            &beam(0, 1.0, EarlyStopping::Heuristic, 1, 3, vec![])
        )
        .is_err()
    );
    assert!(
        beam_search(
            &mut m(),
            &common::letters(26),
            &[0],
            &beam(3, 1.0, EarlyStopping::Heuristic, 1, 3, vec![])
        )
        .is_err()
    );
    assert!(
        beam_search(
            &mut m(),
            &common::letters(26),
            &[0],
            &beam(2, 1.0, EarlyStopping::Heuristic, 3, 3, vec![])
        )
        .is_err()
    );
    assert!(
        beam_search(
            &mut m(),
            &common::letters(26),
            &[0],
            &beam(2, f32::NAN, EarlyStopping::Heuristic, 1, 3, vec![])
        )
        .is_err()
    );
}
