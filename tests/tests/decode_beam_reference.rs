//! Beam search equals `transformers` `generate(num_beams=…)` token for token
//! on the random-weight GPT-2 fixtures (`tests/fixtures/decode/beam_gpt2.json`,
//! made by `scripts/make_decode_fixtures.py`), for several widths, length
//! penalties, early-stopping modes, EOS and no-repeat-n-gram settings.

use decode::{BeamParams, EarlyStopping, GenerateParams, SamplingParams, Strategy, beam_search};
use integration_tests::{fixture_dir, ids, read_json};
use model::gpt2::{Gpt2, Gpt2Weights};

/// Scores: HF and we both sum f32 log-probs of f32 logits that agree to
/// ~1e-5, so sequence scores agree to ~1e-4 (relative to max(1, |score|)).
const SCORE_TOL: f32 = 1e-4;

#[test]
fn beam_search_matches_transformers() {
    let fx = read_json(&fixture_dir("decode").join("beam_gpt2.json"));
    let cases = fx["cases"].as_array().unwrap();
    assert!(cases.len() >= 12, "expected the full fixture set");
    for (c, case) in cases.iter().enumerate() {
        let name = case["model"].as_str().unwrap();
        let nb = case["num_beams"].as_u64().unwrap() as usize;
        let w = Gpt2Weights::from_hf_dir(fixture_dir(name)).unwrap();
        let mut m = Gpt2::new(w, 128, nb).unwrap();
        let early = match &case["early_stopping"] {
            serde_json::Value::String(s) if s == "never" => EarlyStopping::Never,
            serde_json::Value::Bool(true) => EarlyStopping::WhenFull,
            _ => EarlyStopping::Heuristic,
        };
        let params = GenerateParams {
            strategy: Strategy::Beam(BeamParams {
                num_beams: nb,
                length_penalty: case["length_penalty"].as_f64().unwrap() as f32,
                early_stopping: early,
                num_return_sequences: case["num_return_sequences"].as_u64().unwrap() as usize,
                ..Default::default()
            }),
            sampling: SamplingParams {
                no_repeat_ngram: case["no_repeat_ngram"].as_u64().unwrap() as usize,
                ..Default::default()
            },
            max_new_tokens: case["max_new_tokens"].as_u64().unwrap() as usize,
            eos_ids: ids(&case["eos"]),
            ..Default::default()
        };
        let prompt = ids(&case["prompt"]);
        let hyps = beam_search(&mut m, &Vec::<Vec<u8>>::new(), &prompt, &params).unwrap();
        let want = case["sequences"].as_array().unwrap();
        let scores = case["scores"].as_array().unwrap();
        assert_eq!(hyps.len(), want.len(), "case {c}: number of sequences");
        for (r, (h, (w, s))) in hyps.iter().zip(want.iter().zip(scores)).enumerate() {
            assert_eq!(
                h.tokens,
                ids(w),
                "case {c} ({name}, beams {nb}, {:?}): sequence {r} differs",
                params.strategy
            );
            let s = s.as_f64().unwrap() as f32;
            assert!(
                (h.score - s).abs() <= SCORE_TOL * s.abs().max(1.0),
                "case {c}: sequence {r} score {} vs HF {s}",
                h.score
            );
        }
    }
}
