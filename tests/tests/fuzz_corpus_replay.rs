//! Replays the committed fuzz corpora with stable Rust: every file in
//! `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` goes through the
//! same body the cargo-fuzz target runs (`fuzz/bodies/<target>.rs`), so an
//! input that once crashed a parser, or that reaches deep into one, is
//! checked on every test run without nightly or libFuzzer.
//!
//! The tokenizer corpus needs the real model: `scripts/fetch-model.sh`
//! (CI runs it first).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

#[path = "../../fuzz/bodies/chat_template.rs"]
mod chat_template_body;
#[path = "../../fuzz/bodies/gguf.rs"]
mod gguf_body;
#[path = "../../fuzz/bodies/safetensors.rs"]
mod safetensors_body;
#[path = "../../fuzz/bodies/server_request.rs"]
mod server_request_body;
#[path = "../../fuzz/bodies/tokenizer.rs"]
mod tokenizer_body;

/// The fuzz folder at the repository root.
fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `dir`, sorted; none if it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut out: Vec<PathBuf> = entries
        .map(|e| {
            e.unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
                .path()
        })
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

/// Run `body` on every corpus and regression input of `target`; fail
/// naming each input that panics. The corpus must not be empty.
fn replay(target: &str, body: impl Fn(&[u8])) {
    let corpus = files(&fuzz_dir().join("corpus").join(target));
    assert!(!corpus.is_empty(), "fuzz/corpus/{target}/ has no inputs");
    let regressions = files(&fuzz_dir().join("regressions").join(target));
    let mut failed = vec![];
    for path in corpus.iter().chain(&regressions) {
        let data =
            std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        if catch_unwind(AssertUnwindSafe(|| body(&data))).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(failed.is_empty(), "{target}: inputs that panic: {failed:?}");
    eprintln!(
        "{target}: {} corpus inputs and {} regressions replayed",
        corpus.len(),
        regressions.len()
    );
}

#[test]
fn gguf_corpus() {
    replay("gguf", gguf_body::gguf);
}

#[test]
fn safetensors_corpus() {
    replay("safetensors", safetensors_body::safetensors);
}

#[test]
fn tokenizer_corpus() {
    let tok = tokenizer_body::smollm2_tokenizer();
    replay("tokenizer", |data| tokenizer_body::tokenizer(tok, data));
}

#[test]
fn chat_template_corpus() {
    replay("chat_template", chat_template_body::chat_template);
}

#[test]
fn server_request_corpus() {
    replay("server_request", server_request_body::server_request);
}
