//! Step 5, the reference: `model/src/tokenizer/byte_map.rs` and the plain
//! merge loop `bpe` in `model/src/tokenizer/bpe.rs` (the chapter
//! "Tokenization" includes both).

pub use crate::support::Gpt2Files;

/// The character GPT-2 writes each byte as (the project's `bytes_to_unicode`).
pub fn bytes_to_unicode() -> [char; 256] {
    model::tokenizer::byte_map::bytes_to_unicode()
}

/// The token ids of one pre-token: one id per byte, then the project's `bpe`.
pub fn encode_piece(piece: &str, files: &Gpt2Files) -> Vec<u32> {
    let map = bytes_to_unicode();
    let start = piece
        .bytes()
        .map(|b| files.encoder[&map[b as usize].to_string()])
        .collect();
    model::tokenizer::bpe::bpe(start, &files.merges)
}
