//! The chat template against transformers' `apply_chat_template` with the
//! GGUF's own template (fixture from `scripts/make_tokenizer_fixtures.py`).

use std::path::PathBuf;

use model::chat_template::{ChatMessage, ChatTemplate};
use model::gguf::GgufFile;
use serde_json::Value;

fn fixture() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/tokenizer/chat_template.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn check(t: &ChatTemplate) {
    let f = fixture();
    let renders = f["renders"].as_array().unwrap();
    assert!(renders.len() >= 10);
    for r in renders {
        let msgs: Vec<ChatMessage> = serde_json::from_value(r["messages"].clone()).unwrap();
        let add_gen = r["add_generation_prompt"].as_bool().unwrap();
        let want = r["text"].as_str().unwrap();
        // Exact string equality.
        assert_eq!(
            t.render(&msgs, add_gen),
            want,
            "messages {msgs:?}, add_generation_prompt {add_gen}"
        );
    }
}

#[test]
fn template_text_in_fixture_renders_like_transformers() {
    let f = fixture();
    let t = ChatTemplate::from_template_str(f["template"].as_str().unwrap()).unwrap();
    assert_eq!(
        t.default_system(),
        Some("You are a helpful AI assistant named SmolLM, trained by Hugging Face")
    );
    check(&t);
}

#[test]
fn template_from_the_real_gguf_renders_like_transformers() {
    let path = model::model_path::find_default_model().unwrap_or_else(|e| panic!("{e}"));
    let g = GgufFile::open(path).unwrap();
    // The rendered prompts tokenize to the reference ids (special tokens included).
    let tok = model::tokenizer::Tokenizer::from_gguf(&g).unwrap();
    for r in fixture()["renders"].as_array().unwrap() {
        let want: Vec<u32> = r["smollm2_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let text = r["text"].as_str().unwrap();
        assert_eq!(
            tok.encode(text),
            want,
            "ids of the rendered prompt {text:?}"
        );
    }
    assert_eq!(
        g.get_str("tokenizer.chat_template").unwrap(),
        fixture()["template"].as_str().unwrap()
    );
    check(&ChatTemplate::from_gguf(&g).unwrap());
}
