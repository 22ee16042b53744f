//! The tokenizer fuzz body, shared by the `tokenizer` fuzz target and the
//! corpus replay test (`tests/tests/fuzz_corpus_replay.rs`).

use std::sync::OnceLock;

use model::gguf::GgufFile;
use model::tokenizer::Tokenizer;

/// SmolLM2's tokenizer from the real model's GGUF, loaded once per process.
/// Panics, naming the fetch script, when the model is not in the cache.
pub fn smollm2_tokenizer() -> &'static Tokenizer {
    static TOK: OnceLock<Tokenizer> = OnceLock::new();
    TOK.get_or_init(|| {
        let path = model::model_path::find_default_model()
            .unwrap_or_else(|e| panic!("the tokenizer fuzz body needs SmolLM2: {e}"));
        let file = GgufFile::open(&path).unwrap_or_else(|e| panic!("opening SmolLM2: {e}"));
        Tokenizer::from_gguf(&file).unwrap_or_else(|e| panic!("SmolLM2's tokenizer: {e}"))
    })
}

/// Tokenize `data` and decode it back, and decode `data` read as token ids.
///
/// What is asserted is what the tokenizer promises:
/// - text (`data` as lossy UTF-8) whose bytes all have a single-byte piece
///   round-trips through `encode` (special-token text becomes the special
///   id, which decodes to the same text) and through `encode_ordinary`;
///   text with a byte the vocabulary lacks only has to encode and decode;
/// - every id `encode` returns is inside the vocabulary;
/// - any id sequence (`data` as little-endian u32s, out-of-vocabulary ids
///   included) decodes without panicking, out-of-vocabulary ids add
///   nothing, and streaming it one id at a time gives the whole decode.
pub fn tokenizer(tok: &Tokenizer, data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let missing = tok.unencodable_bytes();
    let encodable = !text.bytes().any(|b| missing.contains(&b));
    for ids in [tok.encode(&text), tok.encode_ordinary(&text)] {
        let vocab = tok.vocab_size();
        assert!(
            ids.iter().all(|&id| (id as usize) < vocab),
            "id outside the vocabulary"
        );
        let decoded = tok.decode(&ids);
        if encodable {
            assert_eq!(decoded, text, "round trip of {ids:?}");
        }
    }

    let ids: Vec<u32> = data
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let whole = tok.decode(&ids);
    let in_vocab: Vec<u32> = ids
        .iter()
        .copied()
        .filter(|&id| (id as usize) < tok.vocab_size())
        .collect();
    assert_eq!(tok.decode_bytes(&ids), tok.decode_bytes(&in_vocab));
    let mut stream = tok.stream_decoder();
    let mut streamed = String::new();
    for &id in &ids {
        let _ = (tok.id_to_piece(id), tok.is_special(id), tok.token_bytes(id));
        streamed.push_str(&stream.push(id));
    }
    streamed.push_str(&stream.finish());
    assert_eq!(streamed, whole, "streaming {ids:?}");
}
