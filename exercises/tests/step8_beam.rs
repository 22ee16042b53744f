//! Step 8: beam search against `transformers` `generate(num_beams=…)` on
//! the GPT-2 fixtures (`tests/fixtures/decode/beam_gpt2.json`, made by
//! `scripts/make_decode_fixtures.py`).

use decode::{BeamParams, EarlyStopping};
use exercises::step8_beam::beam_search;
use exercises::support::{fixtures_dir, gpt2_model, ids, read_json};
use serde_json::Value;

/// Scores: both sides sum f32 log-probs of logits that agree to ~1e-5, so
/// they agree to ~1e-4 relative to max(1, |score|) (the project's bound).
const SCORE_TOL: f32 = 1e-4;

/// The fixture's cases without `no_repeat_ngram` (the four with it need a
/// logits processor as well; `tests/tests/decode_beam_reference.rs` checks
/// the project's search on them), with or without an EOS token.
fn cases(with_eos: bool) -> Vec<Value> {
    let fx = read_json(&fixtures_dir().join("decode/beam_gpt2.json"));
    fx["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["no_repeat_ngram"] == 0 && ids(&c["eos"]).is_empty() != with_eos)
        .cloned()
        .collect()
}

fn check(cases: &[Value]) {
    assert_eq!(cases.len(), 10, "fixture cases");
    for (i, c) in cases.iter().enumerate() {
        let name = c["model"].as_str().unwrap();
        let beam = BeamParams {
            num_beams: c["num_beams"].as_u64().unwrap() as usize,
            length_penalty: c["length_penalty"].as_f64().unwrap() as f32,
            early_stopping: match &c["early_stopping"] {
                Value::String(s) if s == "never" => EarlyStopping::Never,
                Value::Bool(true) => EarlyStopping::WhenFull,
                _ => EarlyStopping::Heuristic,
            },
            num_return_sequences: c["num_return_sequences"].as_u64().unwrap() as usize,
            ..Default::default()
        };
        let what = format!(
            "case {i} ({name}, {} beams, length penalty {}, {:?}, eos {})",
            beam.num_beams, beam.length_penalty, beam.early_stopping, c["eos"]
        );
        let mut m = gpt2_model(name, beam.num_beams);
        let max_new = c["max_new_tokens"].as_u64().unwrap() as usize;
        let got = beam_search(&mut m, &ids(&c["prompt"]), &beam, max_new, &ids(&c["eos"])).unwrap();
        let want = c["sequences"].as_array().unwrap();
        let scores = c["scores"].as_array().unwrap();
        assert_eq!(got.len(), want.len(), "{what}: number of hypotheses");
        for (r, ((tokens, score), (w, s))) in got.iter().zip(want.iter().zip(scores)).enumerate() {
            assert_eq!(tokens, &ids(w), "{what}: hypothesis {r}");
            let s = s.as_f64().unwrap() as f32;
            assert!(
                (score - s).abs() <= SCORE_TOL * s.abs().max(1.0),
                "{what}: hypothesis {r} scores {score}, transformers {s}"
            );
        }
    }
}

#[test]
fn beam_search_matches_transformers() {
    check(&cases(false));
}

#[test]
fn beam_search_with_eos_matches_transformers() {
    check(&cases(true));
}
