//! Step 5: the byte-level BPE encode (GPT-2's).
//!
//! Byte-level BPE works on the bytes of the text. GPT-2's vocabulary files
//! are text, so every byte is written as a printable character: the 188
//! bytes that are printable already (`!`..=`~`, `¡`..=`¬`, `®`..=`ÿ`) stand
//! for themselves, and the other 68 (control bytes, space, DEL, …) take, in
//! byte order, the characters U+0100, U+0101, … So a space is `Ġ` (U+0120)
//! and a newline `Ċ` (U+010A).
//!
//! Encoding one pre-token (the text is already cut into pieces such as
//! `"Hello"`, `" world"`, `"!"`): start from one symbol per byte; then, as
//! long as some adjacent pair has a merge rule, merge the pair whose rule
//! has the lowest rank (the leftmost such pair on a tie); finally look each
//! symbol up in the vocabulary. [`Gpt2Files`] holds `encoder.json` and
//! `vocab.bpe` as strings (`encoder`, `ranks`) and, if you would rather
//! merge ids than strings, as id pairs (`merges`, with
//! `merges.get(left, right) -> Option<(rank, merged id)>`).
//!
//! Check: `cargo test --release --test step5_bpe` encodes a corpus of 265
//! strings (emoji, CJK, code, runs of spaces, contractions, …) and compares
//! the ids with Hugging Face `tokenizers`. The check does the pre-tokenizing
//! and the special token `<|endoftext|>` with the project's code.

pub use crate::support::Gpt2Files;

/// The character GPT-2 writes each byte as (index = byte).
pub fn bytes_to_unicode() -> [char; 256] {
    todo!("step 5: bytes_to_unicode")
}

/// The token ids of one pre-token.
pub fn encode_piece(piece: &str, files: &Gpt2Files) -> Vec<u32> {
    todo!("step 5: encode_piece")
}
