//! Step 6: greedy decoding against the continuations `transformers`
//! computed for the GPT-2 fixtures (`tests/fixtures/gpt2-tiny-{a,b}/reference.json`;
//! every step's top-1/top-2 margin there is far above rounding, so the
//! tokens must match exactly), feeding the model through the KV cache.

use exercises::step6_greedy::greedy;
use exercises::support::{Recording, fixtures_dir, gpt2_model, ids, read_json};

/// Run your `greedy` and check how it fed the model: the prompt once, then
/// one token per call, and no call after the last token.
fn run(name: &str, prompt: &[u32], max_new: usize, eos: &[u32]) -> Vec<u32> {
    let mut m = Recording::new(gpt2_model(name, 1));
    let got = greedy(&mut m, prompt, max_new, eos).unwrap();
    let fed: Vec<usize> = m.calls.iter().flatten().copied().collect();
    let mut want = vec![prompt.len()];
    want.resize(got.len(), 1);
    assert_eq!(
        fed, want,
        "{name}: tokens fed per forward call (the prompt once, then one token per step, none after the last)"
    );
    got
}

fn continuations(name: &str) -> Vec<(Vec<u32>, Vec<u32>)> {
    let r = read_json(&fixtures_dir().join(name).join("reference.json"));
    r["greedy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (ids(&g["ids"]), ids(&g["tokens"])))
        .collect()
}

#[test]
fn greedy_matches_transformers() {
    for name in ["gpt2-tiny-a", "gpt2-tiny-b"] {
        for (i, (prompt, want)) in continuations(name).iter().enumerate() {
            let got = run(name, prompt, want.len(), &[]);
            assert_eq!(&got, want, "{name} continuation {i}");
        }
    }
}

#[test]
fn greedy_stops_after_eos() {
    // Make the sixth token of each reference continuation the EOS: the run
    // must end right after its first occurrence, EOS included.
    for name in ["gpt2-tiny-a", "gpt2-tiny-b"] {
        for (i, (prompt, full)) in continuations(name).iter().enumerate() {
            let eos = full[5];
            let end = full.iter().position(|&t| t == eos).unwrap() + 1;
            let got = run(name, prompt, full.len(), &[eos]);
            assert_eq!(got, full[..end], "{name} continuation {i} with EOS {eos}");
        }
    }
}
