//! Step 5: GPT-2's byte-level BPE against Hugging Face `tokenizers` on the
//! project's corpus (`tests/fixtures/tokenizer/corpus.json`, made by
//! `scripts/make_tokenizer_fixtures.py`).

use std::collections::HashSet;

use exercises::step5_bpe::{Gpt2Files, bytes_to_unicode, encode_piece};
use exercises::support::{fixtures_dir, ids, read_json};
use model::tokenizer::special::{Segment, SpecialTokens};
use model::tokenizer::{PreTokenizer, PreTokenizerKind};

#[test]
fn every_byte_has_its_own_piece_in_encoder_json() {
    // encoder.json has one single-character piece per byte: your map must
    // land on those 256 pieces, one each.
    let files = Gpt2Files::load();
    let map = bytes_to_unicode();
    let mut seen = HashSet::new();
    for (b, c) in map.iter().enumerate() {
        let id = files.encoder.get(&c.to_string()).unwrap_or_else(|| {
            panic!("byte {b:#04x} maps to {c:?}, which is not a piece of encoder.json")
        });
        assert!(
            seen.insert(*id),
            "byte {b:#04x} maps to {c:?}, as another byte does"
        );
    }
}

#[test]
fn gpt2_ids_match_hugging_face() {
    let files = Gpt2Files::load();
    // The pre-tokenizer and the special token are the project's; the BPE is yours.
    let pre = PreTokenizer::new(PreTokenizerKind::Gpt2);
    let special =
        SpecialTokens::new([("<|endoftext|>".to_string(), files.encoder["<|endoftext|>"])]);
    let corpus = read_json(&fixtures_dir().join("tokenizer/corpus.json"));
    let entries = corpus["entries"].as_array().unwrap();
    let mut failures = Vec::new();
    for e in entries {
        let text = e["text"].as_str().unwrap();
        let mut got = Vec::new();
        for segment in special.split(text) {
            match segment {
                Segment::Special(id) => got.push(id),
                Segment::Text(t) => {
                    for piece in pre.split(t) {
                        got.extend(encode_piece(piece, &files));
                    }
                }
            }
        }
        // Exact: ids are integers.
        let want = ids(&e["gpt2"]);
        if got != want {
            let at = got.iter().zip(&want).take_while(|(a, b)| a == b).count();
            failures.push(format!(
                "{text:?}: first difference at {at}\n  yours {got:?}\n  HF    {want:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} strings differ:\n{}",
        failures.len(),
        entries.len(),
        failures.join("\n")
    );
}
