//! Each logits processor equals Hugging Face's processor of the same name on
//! fixture logits (`tests/fixtures/decode/processors.json`, made by
//! `scripts/make_decode_fixtures.py`).

use decode::penalties::{
    BannedTokens, MinNewTokens, NoRepeatNGram, PenaltyScope, RepetitionPenalty,
};
use decode::processors::{MinP, Temperature, TopK, TopP, TypicalP};
use decode::{LogitsProcessor, TokenHistory};
use integration_tests::{fixture_dir, read_json};
use serde_json::Value;

/// Tolerance: 1e-6 relative to max(1, |expected|) — both sides compute in
/// f32, and a logit of 60 (20 / T=0.3) has an f32 spacing of ~4e-6.
const TOL: f32 = 1e-6;

fn row(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().map_or(f32::NEG_INFINITY, |f| f as f32))
        .collect()
}

fn processor(name: &str, p: &Value) -> Box<dyn LogitsProcessor> {
    let f = |k: &str| p[k].as_f64().unwrap() as f32;
    let u = |k: &str| p[k].as_u64().unwrap() as usize;
    match name {
        "temperature" => Box::new(Temperature::new(f("temperature")).unwrap()),
        "top_k" => Box::new(TopK::new(u("top_k"))),
        "top_p" => Box::new(TopP::new(f("top_p")).unwrap()),
        "min_p" => Box::new(MinP::new(f("min_p")).unwrap()),
        "typical_p" => Box::new(TypicalP::new(f("typical_p")).unwrap()),
        "repetition_penalty" => Box::new(
            RepetitionPenalty::new(f("repetition_penalty"), PenaltyScope::PromptAndGenerated)
                .unwrap(),
        ),
        "banned_tokens" => Box::new(BannedTokens::new(
            p["banned_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect(),
        )),
        "no_repeat_ngram" => Box::new(NoRepeatNGram::new(u("no_repeat_ngram"))),
        "min_new_tokens" => {
            let eos: Vec<u32> = p["eos"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect();
            Box::new(MinNewTokens::new(u("min_new_tokens"), eos))
        }
        other => panic!("fixture names unknown processor {other}"),
    }
}

#[test]
fn processors_match_hugging_face() {
    let fx = read_json(&fixture_dir("decode").join("processors.json"));
    let cases = fx["cases"].as_array().unwrap();
    assert!(
        cases.len() >= 100,
        "expected the full fixture set, got {}",
        cases.len()
    );
    for (c, case) in cases.iter().enumerate() {
        let name = case["name"].as_str().unwrap();
        let proc = processor(name, &case["params"]);
        let ids: Vec<u32> = case["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect();
        let prompt_len = case["prompt_len"].as_u64().unwrap() as usize;
        let mut got = row(&case["logits"]);
        let want = row(&case["expected"]);
        proc.process(&TokenHistory::new(&ids, prompt_len), &mut got)
            .unwrap();
        for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
            let ok = if w == f32::NEG_INFINITY {
                g == f32::NEG_INFINITY
            } else {
                (g - w).abs() <= TOL * w.abs().max(1.0)
            };
            assert!(
                ok,
                "case {c} ({name} {}): token {i}: got {g}, HF {w} (diff {})",
                case["params"],
                (g - w).abs()
            );
        }
    }
}
