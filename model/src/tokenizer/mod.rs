//! Byte-level BPE, written here: GPT-2's byte ↔ character map
//! ([`byte_map`]), pre-tokenization ([`pretokenize`]), merges by rank
//! ([`bpe`]), special tokens matched before everything else ([`special`]),
//! loaders for GGUF metadata, `vocab.json` + `merges.txt` and
//! `tokenizer.json` ([`load`]), and streaming detokenization that never
//! emits half a UTF-8 character ([`stream`]).

pub mod bpe;
pub mod byte_map;
pub mod load;
pub mod pretokenize;
pub mod special;
pub mod stream;

use std::collections::HashMap;

use thiserror::Error;

use crate::gguf::GgufError;
pub use pretokenize::{PreTokenizer, PreTokenizerKind};
use special::{Segment, SpecialTokens};
pub use stream::StreamDecoder;

/// Errors from building a tokenizer.
#[derive(Debug, Error)]
pub enum TokenizerError {
    /// Reading the GGUF metadata failed.
    #[error(transparent)]
    Gguf(#[from] GgufError),
    /// A file could not be read.
    #[error("cannot read {path}: {cause}")]
    Io {
        /// The path.
        path: String,
        /// The operating system's error (printed in the message, so not
        /// also given as `source()`, which a report would print again).
        cause: std::io::Error,
    },
    /// A JSON file is malformed or lacks a field.
    #[error("{path}: {message}")]
    Json {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The vocabulary is not usable (ids not dense, duplicate pieces, ...).
    #[error("bad vocabulary: {0}")]
    BadVocab(String),
    /// A merge rule that is malformed or names pieces not in the vocabulary.
    #[error("merge rule {index} ({rule:?}): {reason}")]
    BadMerge {
        /// Position in the merges list.
        index: usize,
        /// The rule text.
        rule: String,
        /// What is wrong.
        reason: String,
    },
    /// A tokenizer model other than byte-level BPE.
    #[error("unsupported tokenizer model {0:?} (only byte-level BPE, \"gpt2\" / \"BPE\")")]
    UnsupportedModel(String),
    /// A pre-tokenizer this crate does not implement.
    #[error("unsupported pre-tokenizer {0}")]
    UnsupportedPreTokenizer(String),
}

/// The parts a tokenizer is built from, whatever file they came from.
#[derive(Debug, Clone)]
pub struct TokenizerParts {
    /// Vocabulary pieces, index = id, in the byte-mapped spelling.
    pub pieces: Vec<String>,
    /// Merge rules in rank order, as `(left, right)` pieces.
    pub merges: Vec<(String, String)>,
    /// Ids matched whole in the text before BPE.
    pub special_ids: Vec<u32>,
    /// How text is cut before BPE.
    pub pre: PreTokenizerKind,
    /// Beginning-of-sequence id.
    pub bos: Option<u32>,
    /// End-of-sequence id.
    pub eos: Option<u32>,
    /// If set, a pre-token that is itself a vocabulary piece is not merged up from bytes.
    pub ignore_merges: bool,
}

/// A byte-level BPE tokenizer.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    pieces: Vec<String>,
    bytes: Vec<Vec<u8>>,
    piece_to_id: HashMap<String, u32>,
    /// The id of each byte's single-byte piece; `None` where the vocabulary
    /// lacks it (SmolLM2 has no piece for 21 bytes, e.g. 0x04 and 0xF1).
    byte_ids: [Option<u32>; 256],
    merges: bpe::Merges,
    specials: SpecialTokens,
    is_special: Vec<bool>,
    pre: PreTokenizer,
    bos: Option<u32>,
    eos: Option<u32>,
    ignore_merges: bool,
    byte_chars: [char; 256],
}

impl Tokenizer {
    /// Build a tokenizer from its parts, checking that they fit together.
    pub fn from_parts(parts: TokenizerParts) -> Result<Tokenizer, TokenizerError> {
        let n = parts.pieces.len();
        if n == 0 || u32::try_from(n).is_err() {
            return Err(TokenizerError::BadVocab(format!("{n} pieces")));
        }
        let mut piece_to_id = HashMap::with_capacity(n);
        for (id, p) in parts.pieces.iter().enumerate() {
            // A repeated piece keeps its first id (as HF does when building from a list).
            piece_to_id.entry(p.clone()).or_insert(id as u32);
        }
        let check_id = |what: &str, id: u32| {
            if (id as usize) < n {
                Ok(id)
            } else {
                Err(TokenizerError::BadVocab(format!(
                    "{what} id {id} >= vocabulary size {n}"
                )))
            }
        };
        let mut is_special = vec![false; n];
        for &id in &parts.special_ids {
            is_special[check_id("special token", id)? as usize] = true;
        }
        let bos = parts.bos.map(|id| check_id("bos", id)).transpose()?;
        let eos = parts.eos.map(|id| check_id("eos", id)).transpose()?;

        let decoder = byte_map::ByteDecoder::new();
        let bytes = parts
            .pieces
            .iter()
            .enumerate()
            .map(|(id, p)| {
                if is_special[id] {
                    p.as_bytes().to_vec()
                } else {
                    // Characters outside the byte map stand for their own UTF-8 bytes.
                    let mut out = Vec::with_capacity(p.len());
                    for c in p.chars() {
                        match decoder.byte(c) {
                            Some(b) => out.push(b),
                            None => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
                        }
                    }
                    out
                }
            })
            .collect();

        let byte_chars = byte_map::bytes_to_unicode();
        let mut byte_ids = [None; 256];
        for (b, id) in byte_ids.iter_mut().enumerate() {
            *id = piece_to_id.get(&byte_chars[b].to_string()).copied();
        }

        let mut merges = bpe::Merges::new();
        for (rank, (l, r)) in parts.merges.iter().enumerate() {
            let bad = |reason: String| TokenizerError::BadMerge {
                index: rank,
                rule: format!("{l} {r}"),
                reason,
            };
            let lid = *piece_to_id
                .get(l)
                .ok_or_else(|| bad(format!("left piece {l:?} is not in the vocabulary")))?;
            let rid = *piece_to_id
                .get(r)
                .ok_or_else(|| bad(format!("right piece {r:?} is not in the vocabulary")))?;
            let merged = format!("{l}{r}");
            let mid = *piece_to_id
                .get(&merged)
                .ok_or_else(|| bad(format!("merged piece {merged:?} is not in the vocabulary")))?;
            merges.insert(lid, rid, rank as u32, mid);
        }

        let specials = SpecialTokens::new(
            parts
                .special_ids
                .iter()
                .map(|&id| (parts.pieces[id as usize].clone(), id)),
        );
        Ok(Tokenizer {
            pieces: parts.pieces,
            bytes,
            piece_to_id,
            byte_ids,
            merges,
            specials,
            is_special,
            pre: PreTokenizer::new(parts.pre),
            bos,
            eos,
            ignore_merges: parts.ignore_merges,
            byte_chars,
        })
    }

    // ANCHOR: encode
    /// Token ids for `text`. Special tokens written in the text (such as
    /// `<|im_end|>`) become their ids; no BOS/EOS is added.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut ids = Vec::new();
        for segment in self.specials.split(text) {
            match segment {
                Segment::Special(id) => ids.push(id),
                Segment::Text(t) => {
                    for piece in self.pre.split(t) {
                        self.encode_piece(piece, &mut ids);
                    }
                }
            }
        }
        ids
    }
    // ANCHOR_END: encode

    /// Token ids for `text` with special-token text treated as ordinary
    /// text (for untrusted content that must not inject control tokens).
    pub fn encode_ordinary(&self, text: &str) -> Vec<u32> {
        let mut ids = Vec::new();
        for piece in self.pre.split(text) {
            self.encode_piece(piece, &mut ids);
        }
        ids
    }

    fn encode_piece(&self, piece: &str, out: &mut Vec<u32>) {
        if self.ignore_merges {
            let spelled: String = piece.bytes().map(|b| self.byte_chars[b as usize]).collect();
            if let Some(&id) = self.piece_to_id.get(&spelled) {
                out.push(id);
                return;
            }
        }
        // A byte with no piece is dropped, as HF `tokenizers` and llama.cpp
        // do for a BPE model without an unknown token.
        let start: Vec<u32> = piece
            .bytes()
            .filter_map(|b| self.byte_ids[b as usize])
            .collect();
        out.extend(bpe::bpe_heap(start, &self.merges));
    }

    /// Bytes that have no single-byte piece in the vocabulary; text
    /// containing them cannot round-trip (they are dropped by `encode`).
    pub fn unencodable_bytes(&self) -> Vec<u8> {
        (0..=255u8)
            .filter(|&b| self.byte_ids[b as usize].is_none())
            .collect()
    }

    /// The ids of one pre-token before any merge (one per byte), then after
    /// each merge, with the rank of the rule applied (`None` for the start).
    pub fn merge_steps(&self, piece: &str) -> Vec<(Option<u32>, Vec<u32>)> {
        let start: Vec<u32> = piece
            .bytes()
            .filter_map(|b| self.byte_ids[b as usize])
            .collect();
        let mut out = vec![(None, start.clone())];
        out.extend(
            bpe::bpe_steps(start, &self.merges)
                .into_iter()
                .map(|(r, ids)| (Some(r), ids)),
        );
        out
    }

    /// The bytes token `id` stands for (empty for an id outside the vocabulary).
    pub fn token_bytes(&self, id: u32) -> &[u8] {
        self.bytes.get(id as usize).map_or(&[], Vec::as_slice)
    }

    /// The text of `ids`; invalid UTF-8 (a character cut between tokens at
    /// the end, say) becomes U+FFFD. Ids outside the vocabulary are skipped.
    pub fn decode(&self, ids: &[u32]) -> String {
        String::from_utf8_lossy(&self.decode_bytes(ids)).into_owned()
    }

    /// The bytes of `ids`, concatenated.
    pub fn decode_bytes(&self, ids: &[u32]) -> Vec<u8> {
        let mut out = Vec::new();
        for &id in ids {
            out.extend_from_slice(self.token_bytes(id));
        }
        out
    }

    /// The vocabulary piece of `id` as spelled in the files (`Ġworld` for " world").
    pub fn id_to_piece(&self, id: u32) -> Option<&str> {
        self.pieces.get(id as usize).map(String::as_str)
    }

    /// The id of a vocabulary piece as spelled in the files.
    pub fn token_to_id(&self, piece: &str) -> Option<u32> {
        self.piece_to_id.get(piece).copied()
    }

    /// Whether `id` is a special (control) token.
    pub fn is_special(&self, id: u32) -> bool {
        self.is_special.get(id as usize).copied().unwrap_or(false)
    }

    /// The special tokens' texts and ids, longest first.
    pub fn special_tokens(&self) -> &[(String, u32)] {
        self.specials.tokens()
    }

    /// Number of ids.
    pub fn vocab_size(&self) -> usize {
        self.pieces.len()
    }

    /// Number of merge rules.
    pub fn merges_len(&self) -> usize {
        self.merges.len()
    }

    /// End-of-sequence id, if the files name one.
    pub fn eos_id(&self) -> Option<u32> {
        self.eos
    }

    /// Beginning-of-sequence id, if the files name one.
    pub fn bos_id(&self) -> Option<u32> {
        self.bos
    }

    /// The pre-tokenizer in use.
    pub fn pre_tokenizer(&self) -> &PreTokenizer {
        &self.pre
    }

    /// A streaming decoder over this tokenizer.
    pub fn stream_decoder(&self) -> StreamDecoder<'_> {
        StreamDecoder::new(self)
    }
}
