//! Token ids against Hugging Face `tokenizers` on a fixture corpus of 265
//! strings (fixtures from `scripts/make_tokenizer_fixtures.py`): SmolLM2
//! loaded from its GGUF, GPT-2 from `encoder.json` + `vocab.bpe`, and a small
//! tokenizer trained and saved by HF as `tokenizer.json`.

use std::path::PathBuf;

use model::gguf::GgufFile;
use model::tokenizer::{PreTokenizerKind, Tokenizer};
use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

fn corpus() -> Vec<Value> {
    let text = std::fs::read_to_string(fixtures().join("tokenizer/corpus.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v["entries"].as_array().unwrap().clone()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

/// Exact comparison (tolerance: none, ids are integers); on failure shows
/// the string, the first differing position and both id lists.
fn check(tok: &Tokenizer, field: &str) {
    let entries = corpus();
    assert!(entries.len() >= 200, "corpus has {} strings", entries.len());
    let mut failures = Vec::new();
    let mut lossy = 0;
    for e in &entries {
        let text = e["text"].as_str().unwrap();
        let want = ids(&e[field]);
        let got = tok.encode(text);
        if got != want {
            let at = got
                .iter()
                .zip(&want)
                .position(|(a, b)| a != b)
                .unwrap_or(got.len().min(want.len()));
            failures.push(format!(
                "{text:?}: first difference at {at}\n  ours {got:?}\n  HF   {want:?}"
            ));
        }
        // Text with bytes the vocabulary lacks (SmolLM2: 0x04, 0xF1, ...) loses them.
        let missing = tok.unencodable_bytes();
        if text.bytes().any(|b| missing.contains(&b)) {
            lossy += 1;
        } else {
            assert_eq!(
                tok.decode(&want),
                text,
                "{field}: decoding HF's ids of {text:?}"
            );
        }
    }
    assert!(lossy <= 2, "{field}: {lossy} strings cannot round-trip");
    assert!(
        failures.is_empty(),
        "{field}: {} of {} strings differ:\n{}",
        failures.len(),
        entries.len(),
        failures.join("\n")
    );
}

#[test]
fn smollm2_from_gguf_matches_hf() {
    let path = model::model_path::find_default_model().unwrap_or_else(|e| panic!("{e}"));
    let g = GgufFile::open(path).unwrap();
    let tok = Tokenizer::from_gguf(&g).unwrap();
    assert_eq!(tok.vocab_size(), 49152);
    assert_eq!(tok.pre_tokenizer().kind(), PreTokenizerKind::DigitsThenGpt2);
    assert_eq!((tok.bos_id(), tok.eos_id()), (Some(1), Some(2)));
    assert_eq!(tok.token_to_id("<|im_start|>"), Some(1));
    assert_eq!(tok.id_to_piece(2), Some("<|im_end|>"));
    assert!(tok.is_special(0) && !tok.is_special(100));
    assert_eq!(tok.unencodable_bytes().len(), 21);
    check(&tok, "smollm2");
}

#[test]
fn smollm2_differs_from_transformers_gguf_build_only_around_digits() {
    // transformers builds this GGUF's tokenizer without the `smollm` digit
    // rule; where the two disagree the string must contain a digit.
    for e in corpus() {
        let text = e["text"].as_str().unwrap();
        if e["smollm2"] != e["smollm2_transformers_gguf"] {
            assert!(
                text.chars().any(char::is_numeric),
                "{text:?} differs without digits"
            );
        }
    }
}

#[test]
fn gpt2_from_vocab_and_merges_matches_hf() {
    let dir = fixtures().join("gpt2-tokenizer");
    let tok =
        Tokenizer::from_vocab_merges(dir.join("encoder.json"), dir.join("vocab.bpe")).unwrap();
    assert_eq!(tok.vocab_size(), 50257);
    assert_eq!(tok.merges_len(), 50000);
    assert_eq!(tok.eos_id(), Some(50256));
    assert_eq!(tok.encode("Hello world"), vec![15496, 995]);
    assert!(tok.unencodable_bytes().is_empty());
    check(&tok, "gpt2");
}

#[test]
fn tokenizer_json_matches_hf() {
    let tok =
        Tokenizer::from_tokenizer_json(fixtures().join("tokenizer/tiny-tokenizer.json")).unwrap();
    assert_eq!(tok.vocab_size(), 600);
    assert_eq!(tok.pre_tokenizer().kind(), PreTokenizerKind::DigitsThenGpt2);
    check(&tok, "tiny");
}
