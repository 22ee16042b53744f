//! Step 7: the top-p filter against Hugging Face's `TopPLogitsWarper`
//! (`tests/fixtures/decode/processors.json`, made by
//! `scripts/make_decode_fixtures.py`), then a whole top-p sampling run on
//! the GPT-2 fixture against the project's own sampling run.

use decode::{GenerateParams, LanguageModel, SamplingParams, Strategy, seeded_rng};
use exercises::step7_top_p::{sample, top_p};
use exercises::support::{assert_close, f32s, fixtures_dir, gpt2_model, ids, read_json};

#[test]
fn top_p_matches_hugging_face() {
    let fx = read_json(&fixtures_dir().join("decode/processors.json"));
    let cases: Vec<_> = fx["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] == "top_p")
        .collect();
    assert_eq!(cases.len(), 24, "the fixture's top-p cases");
    for (i, c) in cases.iter().enumerate() {
        let p = c["params"]["top_p"].as_f64().unwrap() as f32;
        let mut got = f32s(&c["logits"]);
        top_p(&mut got, p);
        // Removed tokens must be -inf exactly; kept logits are untouched
        // (1e-6 relative, as the project's check: HF's rows are f32 too).
        assert_close(
            &format!("top-p case {i} (p = {p})"),
            &got,
            &f32s(&c["expected"]),
            0.0,
            1e-6,
        );
    }
}

#[test]
fn top_p_sampling_matches_the_projects_run() {
    // The reference: decode::generate with top_p and a seed. The same
    // model, the same seed, your filter and your draw: the same tokens.
    let r = read_json(&fixtures_dir().join("gpt2-tiny-a/reference.json"));
    let prompt = ids(&r["greedy"][1]["ids"]);
    for (seed, p) in [(7u64, 0.9f32), (8, 0.5), (9, 0.97)] {
        let params = GenerateParams {
            strategy: Strategy::Sample { seed },
            sampling: SamplingParams {
                top_p: p,
                ..Default::default()
            },
            max_new_tokens: 24,
            ..Default::default()
        };
        let mut m = gpt2_model("gpt2-tiny-a", 1);
        let want: Vec<u32> = decode::generate(&mut m, &Vec::<Vec<u8>>::new(), &prompt, &params)
            .unwrap()
            .tokens
            .iter()
            .map(|t| t.id)
            .collect();

        let mut m = gpt2_model("gpt2-tiny-a", 1);
        let mut rng = seeded_rng(seed, 0);
        let mut got = Vec::new();
        let mut feed = prompt.clone();
        while got.len() < want.len() {
            let mut logits = LanguageModel::forward(&mut m, &[(0, &feed)])
                .unwrap()
                .remove(0);
            top_p(&mut logits, p);
            let tok = sample(&logits, &mut rng);
            got.push(tok);
            feed = vec![tok];
        }
        assert_eq!(got, want, "seed {seed}, p = {p}");
    }
}
