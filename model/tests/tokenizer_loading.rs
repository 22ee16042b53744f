//! Tokenizer files that are wrong in one way each: the loader must return
//! the specific error, never panic.

use std::path::PathBuf;

use model::gguf::{GgufError, GgufFile};
use model::tokenizer::{Tokenizer, TokenizerError};
use serde_json::{Value, json};

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("tok-load-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A vocabulary with all 256 byte pieces (ids 0..256) plus "ab" (256) and "<|x|>" (257).
fn vocab() -> serde_json::Map<String, Value> {
    let map = model::tokenizer::byte_map::bytes_to_unicode();
    let mut v = serde_json::Map::new();
    for (b, c) in map.iter().enumerate() {
        v.insert(c.to_string(), json!(b));
    }
    v.insert("ab".into(), json!(256));
    v.insert("<|x|>".into(), json!(257));
    v
}

fn tokenizer_json(pre: Value, merges: Value) -> Value {
    json!({
        "added_tokens": [{"id": 257, "content": "<|x|>", "special": true}],
        "pre_tokenizer": pre,
        "model": {"type": "BPE", "vocab": vocab(), "merges": merges},
    })
}

fn byte_level() -> Value {
    json!({"type": "ByteLevel", "add_prefix_space": false, "use_regex": true})
}

#[test]
fn a_good_tokenizer_json_loads_and_merges() {
    let d = TempDir::new("good");
    let p = d.write(
        "t.json",
        &tokenizer_json(byte_level(), json!(["a b"])).to_string(),
    );
    let t = Tokenizer::from_tokenizer_json(p).unwrap();
    assert_eq!(t.encode("ab<|x|>a"), vec![256, 257, u32::from(b'a')]);
}

#[test]
fn merge_with_unknown_piece() {
    let d = TempDir::new("merge");
    let p = d.write(
        "t.json",
        &tokenizer_json(byte_level(), json!(["a b", "b zz"])).to_string(),
    );
    let err = Tokenizer::from_tokenizer_json(p).unwrap_err();
    assert!(
        matches!(&err, TokenizerError::BadMerge { index: 1, reason, .. } if reason.contains("\"zz\"")),
        "{err}"
    );
}

#[test]
fn merged_piece_missing_from_vocabulary() {
    let d = TempDir::new("merged");
    let p = d.write(
        "t.json",
        &tokenizer_json(byte_level(), json!(["a c"])).to_string(),
    );
    let err = Tokenizer::from_tokenizer_json(p).unwrap_err();
    assert!(
        matches!(&err, TokenizerError::BadMerge { index: 0, reason, .. } if reason.contains("\"ac\"")),
        "{err}"
    );
}

#[test]
fn malformed_merge_line() {
    let d = TempDir::new("malformed");
    let v = d.write("vocab.json", &Value::Object(vocab()).to_string());
    let m = d.write("merges.txt", "#version: 0.2\na b\na b c\n");
    let err = Tokenizer::from_vocab_merges(v, m).unwrap_err();
    assert!(
        matches!(&err, TokenizerError::BadMerge { index: 1, rule, .. } if rule == "a b c"),
        "{err}"
    );
}

#[test]
fn unsupported_pre_tokenizer() {
    let d = TempDir::new("pre");
    let pre = json!({"type": "Whitespace"});
    let p = d.write("t.json", &tokenizer_json(pre, json!([])).to_string());
    assert!(
        matches!(Tokenizer::from_tokenizer_json(p), Err(TokenizerError::UnsupportedPreTokenizer(m)) if m.contains("Whitespace"))
    );
}

#[test]
fn unsupported_model_type() {
    let d = TempDir::new("model");
    let mut j = tokenizer_json(byte_level(), json!([]));
    j["model"]["type"] = json!("WordPiece");
    let p = d.write("t.json", &j.to_string());
    assert!(
        matches!(Tokenizer::from_tokenizer_json(p), Err(TokenizerError::UnsupportedModel(m)) if m == "WordPiece")
    );
}

#[test]
fn vocabulary_ids_not_dense() {
    let d = TempDir::new("dense");
    let mut v = vocab();
    v.insert("ab".into(), json!(9999));
    let vp = d.write("vocab.json", &Value::Object(v).to_string());
    let mp = d.write("merges.txt", "");
    let err = Tokenizer::from_vocab_merges(vp, mp).unwrap_err();
    assert!(
        matches!(&err, TokenizerError::BadVocab(m) if m.contains("9999")),
        "{err}"
    );
}

#[test]
fn vocabulary_not_json() {
    let d = TempDir::new("json");
    let vp = d.write("vocab.json", "{not json");
    let mp = d.write("merges.txt", "");
    assert!(
        matches!(Tokenizer::from_vocab_merges(vp, mp), Err(TokenizerError::Json { path, .. }) if path.ends_with("vocab.json"))
    );
}

#[test]
fn missing_file() {
    let err = Tokenizer::from_tokenizer_json("/nonexistent/tokenizer.json").unwrap_err();
    assert!(
        matches!(&err, TokenizerError::Io { path, .. } if path.contains("nonexistent")),
        "{err}"
    );
}

#[test]
fn gguf_without_tokenizer_metadata() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/gguf/small.gguf");
    let g = GgufFile::open(path).unwrap();
    let err = Tokenizer::from_gguf(&g).unwrap_err();
    assert!(
        matches!(&err, TokenizerError::Gguf(GgufError::MissingKey { key }) if key == "tokenizer.ggml.model"),
        "{err}"
    );
}
