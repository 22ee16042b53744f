//! Properties of the tokenizer: decode(encode(s)) == s for any valid UTF-8
//! string, and streaming decoding of any id sequence equals whole decoding.

use std::path::PathBuf;
use std::sync::OnceLock;

use model::tokenizer::Tokenizer;
use model::tokenizer::bpe::{Merges, bpe, bpe_heap};
use proptest::prelude::*;

fn gpt2() -> &'static Tokenizer {
    static TOK: OnceLock<Tokenizer> = OnceLock::new();
    TOK.get_or_init(|| {
        let dir =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/gpt2-tokenizer");
        Tokenizer::from_vocab_merges(dir.join("encoder.json"), dir.join("vocab.bpe")).unwrap()
    })
}

fn tiny() -> &'static Tokenizer {
    static TOK: OnceLock<Tokenizer> = OnceLock::new();
    TOK.get_or_init(|| {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/tokenizer/tiny-tokenizer.json");
        Tokenizer::from_tokenizer_json(path).unwrap()
    })
}

fn smollm2() -> &'static Tokenizer {
    static TOK: OnceLock<Tokenizer> = OnceLock::new();
    TOK.get_or_init(|| {
        let path = model::model_path::find_default_model().unwrap_or_else(|e| panic!("{e}"));
        Tokenizer::from_gguf(&model::gguf::GgufFile::open(path).unwrap()).unwrap()
    })
}

/// Strings that mix ASCII, whitespace runs, digits, multi-byte characters,
/// emoji and special-token text.
fn text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        any::<String>(),
        "[a-zA-Z0-9 ,.'!?\n\t]{0,20}",
        Just("<|endoftext|>".to_string()),
        Just("<|im_end|>".to_string()),
        "[ \n]{1,6}",
        "[é日本😀🎉ß\u{0301}]{1,4}",
    ];
    proptest::collection::vec(piece, 0..6).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn gpt2_round_trips_any_string(s in text()) {
        let ids = gpt2().encode(&s);
        prop_assert_eq!(gpt2().decode(&ids), s);
    }

    /// SmolLM2 round-trips every string whose bytes all have a piece (its
    /// vocabulary lacks 21 byte values; those are dropped, as in HF).
    #[test]
    fn smollm2_round_trips_any_encodable_string(s in text()) {
        let tok = smollm2();
        let missing = tok.unencodable_bytes();
        prop_assume!(!s.bytes().any(|b| missing.contains(&b)));
        prop_assert_eq!(tok.decode(&tok.encode(&s)), s);
    }

    #[test]
    fn tokenizer_json_round_trips_any_string(s in text()) {
        let ids = tiny().encode(&s);
        prop_assert_eq!(tiny().decode(&ids), s);
    }

    /// Streaming the ids of any string, one at a time, gives the string, and
    /// every emitted piece is whole characters (it is a `String`).
    #[test]
    fn streaming_equals_whole_decoding_of_text(s in text()) {
        let tok = gpt2();
        let ids = tok.encode(&s);
        let mut dec = tok.stream_decoder();
        let mut out = String::new();
        for &id in &ids {
            out.push_str(&dec.push(id));
        }
        prop_assert!(dec.pending().is_empty());
        out.push_str(&dec.finish());
        prop_assert_eq!(out, s);
    }

    /// Any id sequence at all (including ones that cut characters or produce
    /// invalid UTF-8): the concatenated stream equals the lossy whole decode.
    #[test]
    fn streaming_equals_whole_decoding_of_any_ids(ids in proptest::collection::vec(0u32..50_300, 0..40)) {
        let tok = gpt2();
        let mut dec = tok.stream_decoder();
        let mut out = String::new();
        for &id in &ids {
            out.push_str(&dec.push(id));
            prop_assert!(dec.pending().len() < 4, "held back {} bytes", dec.pending().len());
        }
        out.push_str(&dec.finish());
        prop_assert_eq!(out, tok.decode(&ids));
    }
}

#[test]
fn half_a_character_waits() {
    let tok = gpt2();
    // "é" is C3 A9; GPT-2's byte tokens for C3 and A9 are separate ids.
    let c3 = tok.token_to_id("Ã").unwrap();
    let a9 = tok.token_to_id("©").unwrap();
    assert_eq!(tok.token_bytes(c3), &[0xC3]);
    let mut dec = tok.stream_decoder();
    assert_eq!(dec.push(c3), "");
    assert_eq!(dec.pending(), &[0xC3]);
    assert_eq!(dec.push(a9), "é");
    // A lone continuation byte can never be completed: replaced at once.
    assert_eq!(dec.push(a9), "\u{FFFD}");
    // An unfinished character at the end of the stream becomes U+FFFD.
    assert_eq!(dec.push(c3), "");
    assert_eq!(dec.finish(), "\u{FFFD}");
    assert_eq!(tok.decode(&[c3]), "\u{FFFD}");
}

#[test]
fn special_tokens_are_matched_before_bpe() {
    let tok = gpt2();
    assert_eq!(tok.encode("<|endoftext|>"), vec![50256]);
    assert_eq!(tok.encode("a<|endoftext|>b"), vec![64, 50256, 65]);
    // As ordinary text, the same characters are several pieces.
    assert!(tok.encode_ordinary("<|endoftext|>").len() > 1);
    assert_eq!(tok.encode(""), Vec::<u32>::new());
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    // ANCHOR: prop_bpe_twins
    /// The plain merge loop (the listing above) equals the heap version that
    /// `encode` runs (and that the reference tests hold to Hugging Face's
    /// tokenizers), on random rule tables and inputs.
    #[test]
    fn plain_bpe_equals_heap_bpe(
        rules in proptest::collection::vec((0u32..6, 0u32..6), 0..20),
        ids in proptest::collection::vec(0u32..6, 0..40),
    ) {
        // Rule k merges (l, r) into the new id 6 + k, and (6 + k, k % 6)
        // merges again, into 200 + k, at a later rank.
        let mut m = Merges::new();
        for (k, &(l, r)) in rules.iter().enumerate() {
            m.insert(l, r, k as u32, 6 + k as u32);
        }
        for k in 0..rules.len() as u32 {
            m.insert(6 + k, k % 6, 100 + k, 200 + k);
        }
        prop_assert_eq!(bpe(ids.clone(), &m), bpe_heap(ids, &m));
    }
    // ANCHOR_END: prop_bpe_twins
}
