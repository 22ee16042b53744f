//! Loading a tokenizer from the three file layouts: GGUF metadata,
//! `vocab.json` + `merges.txt` (GPT-2's original files), and `tokenizer.json`.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use super::{PreTokenizerKind, Tokenizer, TokenizerError, TokenizerParts};
use crate::gguf::{GgufError, GgufFile};

/// GGUF token types (llama.cpp `llama_token_type`): 3 is CONTROL, 4 USER_DEFINED.
const TOKEN_TYPE_CONTROL: i64 = 3;
const TOKEN_TYPE_USER_DEFINED: i64 = 4;

/// The pre-tokenizer for a GGUF `tokenizer.ggml.pre` name. The names that
/// llama.cpp treats as "each digit alone, then GPT-2" map to
/// [`PreTokenizerKind::DigitsThenGpt2`].
pub fn pre_tokenizer_for_gguf(name: &str) -> Result<PreTokenizerKind, TokenizerError> {
    match name {
        "gpt2" | "gpt-2" | "default" => Ok(PreTokenizerKind::Gpt2),
        "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone" | "minerva-7b" => {
            Ok(PreTokenizerKind::DigitsThenGpt2)
        }
        other => Err(TokenizerError::UnsupportedPreTokenizer(format!(
            "tokenizer.ggml.pre = {other:?}"
        ))),
    }
}

fn split_merge(index: usize, rule: &str) -> Result<(String, String), TokenizerError> {
    let mut parts = rule.split(' ');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(l), Some(r), None) if !l.is_empty() && !r.is_empty() => {
            Ok((l.to_string(), r.to_string()))
        }
        _ => Err(TokenizerError::BadMerge {
            index,
            rule: rule.to_string(),
            reason: "expected two pieces separated by one space".into(),
        }),
    }
}

fn optional<T>(r: Result<T, GgufError>) -> Result<Option<T>, TokenizerError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(GgufError::MissingKey { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> TokenizerError + '_ {
    move |cause| TokenizerError::Io {
        path: path.display().to_string(),
        cause,
    }
}

fn json_err(path: &Path, message: String) -> TokenizerError {
    TokenizerError::Json {
        path: path.display().to_string(),
        message,
    }
}

/// Pieces by id from a `{piece: id}` map; ids must be exactly 0..n.
fn pieces_from_map(
    path: &Path,
    map: &serde_json::Map<String, Value>,
) -> Result<Vec<String>, TokenizerError> {
    let mut pieces: Vec<Option<String>> = vec![None; map.len()];
    for (piece, id) in map {
        let id = id
            .as_u64()
            .ok_or_else(|| json_err(path, format!("id of {piece:?} is not an integer")))?;
        let slot = pieces.get_mut(id as usize).ok_or_else(|| {
            TokenizerError::BadVocab(format!(
                "id {id} of {piece:?} is not below the vocabulary size {}",
                map.len()
            ))
        })?;
        if slot.is_some() {
            return Err(TokenizerError::BadVocab(format!("id {id} is used twice")));
        }
        *slot = Some(piece.clone());
    }
    // Every slot is filled: n distinct ids below n.
    Ok(pieces.into_iter().map(Option::unwrap_or_default).collect())
}

impl Tokenizer {
    /// The tokenizer stored in a GGUF file's metadata (`tokenizer.ggml.*`).
    pub fn from_gguf(gguf: &GgufFile) -> Result<Tokenizer, TokenizerError> {
        let model = gguf.get_str("tokenizer.ggml.model")?;
        if model != "gpt2" {
            return Err(TokenizerError::UnsupportedModel(model.to_string()));
        }
        let pre = match optional(gguf.get_str("tokenizer.ggml.pre"))? {
            Some(name) => pre_tokenizer_for_gguf(name)?,
            None => PreTokenizerKind::Gpt2,
        };
        let pieces: Vec<String> = gguf
            .get_str_array("tokenizer.ggml.tokens")?
            .into_iter()
            .map(str::to_string)
            .collect();
        let merges = gguf
            .get_str_array("tokenizer.ggml.merges")?
            .iter()
            .enumerate()
            .map(|(i, m)| split_merge(i, m))
            .collect::<Result<Vec<_>, _>>()?;
        let special_ids = match optional(gguf.get_i64_array("tokenizer.ggml.token_type"))? {
            Some(types) => {
                if types.len() != pieces.len() {
                    return Err(TokenizerError::BadVocab(format!(
                        "tokenizer.ggml.token_type has {} entries for {} tokens",
                        types.len(),
                        pieces.len()
                    )));
                }
                types
                    .iter()
                    .enumerate()
                    .filter(|&(_, &t)| t == TOKEN_TYPE_CONTROL || t == TOKEN_TYPE_USER_DEFINED)
                    .map(|(i, _)| i as u32)
                    .collect()
            }
            None => vec![],
        };
        Tokenizer::from_parts(TokenizerParts {
            pieces,
            merges,
            special_ids,
            pre,
            bos: optional(gguf.get_u32("tokenizer.ggml.bos_token_id"))?,
            eos: optional(gguf.get_u32("tokenizer.ggml.eos_token_id"))?,
            ignore_merges: false,
        })
    }

    /// GPT-2's original files: `vocab.json` (`encoder.json`) and `merges.txt`
    /// (`vocab.bpe`). `<|endoftext|>`, if present, is the special BOS/EOS token.
    pub fn from_vocab_merges(
        vocab_path: impl AsRef<Path>,
        merges_path: impl AsRef<Path>,
    ) -> Result<Tokenizer, TokenizerError> {
        let (vocab_path, merges_path) = (vocab_path.as_ref(), merges_path.as_ref());
        let text = std::fs::read_to_string(vocab_path).map_err(io_err(vocab_path))?;
        let vocab: Value =
            serde_json::from_str(&text).map_err(|e| json_err(vocab_path, e.to_string()))?;
        let map = vocab
            .as_object()
            .ok_or_else(|| json_err(vocab_path, "not a JSON object".into()))?;
        let pieces = pieces_from_map(vocab_path, map)?;
        let text = std::fs::read_to_string(merges_path).map_err(io_err(merges_path))?;
        let merges = text
            .lines()
            .filter(|l| !l.starts_with("#version") && !l.is_empty())
            .enumerate()
            .map(|(i, l)| split_merge(i, l))
            .collect::<Result<Vec<_>, _>>()?;
        let eot = map
            .get("<|endoftext|>")
            .and_then(Value::as_u64)
            .map(|id| id as u32);
        Tokenizer::from_parts(TokenizerParts {
            pieces,
            merges,
            special_ids: eot.into_iter().collect(),
            pre: PreTokenizerKind::Gpt2,
            bos: eot,
            eos: eot,
            ignore_merges: false,
        })
    }

    /// A Hugging Face `tokenizer.json` with a byte-level BPE model. The
    /// pre-tokenizer must be `ByteLevel` (GPT-2's pattern) or
    /// `Sequence[Digits(individual_digits), ByteLevel]`; every added token
    /// is matched before BPE. BOS/EOS are not part of this file; set them
    /// with [`Tokenizer::with_bos_eos`] if needed.
    pub fn from_tokenizer_json(path: impl AsRef<Path>) -> Result<Tokenizer, TokenizerError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(io_err(path))?;
        let root: Value = serde_json::from_str(&text).map_err(|e| json_err(path, e.to_string()))?;
        let model = &root["model"];
        let ty = model["type"].as_str().unwrap_or("");
        if ty != "BPE" {
            return Err(TokenizerError::UnsupportedModel(ty.to_string()));
        }
        let map = model["vocab"]
            .as_object()
            .ok_or_else(|| json_err(path, "model.vocab is not an object".into()))?;
        let mut pieces = pieces_from_map(path, map)?;
        let merges = model["merges"]
            .as_array()
            .ok_or_else(|| json_err(path, "model.merges is not an array".into()))?
            .iter()
            .enumerate()
            .map(|(i, m)| match m {
                Value::String(s) => split_merge(i, s),
                Value::Array(pair) if pair.len() == 2 => match (pair[0].as_str(), pair[1].as_str())
                {
                    (Some(l), Some(r)) => Ok((l.to_string(), r.to_string())),
                    _ => Err(TokenizerError::BadMerge {
                        index: i,
                        rule: m.to_string(),
                        reason: "not two strings".into(),
                    }),
                },
                _ => Err(TokenizerError::BadMerge {
                    index: i,
                    rule: m.to_string(),
                    reason: "not a string or a pair".into(),
                }),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut special_ids = Vec::new();
        let mut by_content: HashMap<String, u32> = HashMap::new();
        for t in root["added_tokens"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
        {
            let (Some(id), Some(content)) = (t["id"].as_u64(), t["content"].as_str()) else {
                return Err(json_err(
                    path,
                    format!("added token {t} lacks id or content"),
                ));
            };
            let id = u32::try_from(id)
                .map_err(|_| TokenizerError::BadVocab(format!("added token id {id}")))?;
            // Added tokens may extend the vocabulary past model.vocab.
            if id as usize >= pieces.len() {
                pieces.resize(id as usize + 1, String::new());
            }
            pieces[id as usize] = content.to_string();
            by_content.insert(content.to_string(), id);
            special_ids.push(id);
        }
        let pre = pre_tokenizer_from_json(&root["pre_tokenizer"])?;
        Tokenizer::from_parts(TokenizerParts {
            pieces,
            merges,
            special_ids,
            pre,
            bos: None,
            eos: None,
            ignore_merges: model["ignore_merges"].as_bool().unwrap_or(false),
        })
    }

    /// The same tokenizer with BOS/EOS ids set (checked against the vocabulary).
    pub fn with_bos_eos(
        mut self,
        bos: Option<u32>,
        eos: Option<u32>,
    ) -> Result<Tokenizer, TokenizerError> {
        for id in bos.iter().chain(eos.iter()) {
            if *id as usize >= self.vocab_size() {
                return Err(TokenizerError::BadVocab(format!(
                    "id {id} >= vocabulary size {}",
                    self.vocab_size()
                )));
            }
        }
        self.bos = bos;
        self.eos = eos;
        Ok(self)
    }
}

fn is_byte_level_with_regex(v: &Value) -> bool {
    v["type"] == "ByteLevel"
        && v["use_regex"].as_bool().unwrap_or(true)
        && !v["add_prefix_space"].as_bool().unwrap_or(false)
}

fn pre_tokenizer_from_json(v: &Value) -> Result<PreTokenizerKind, TokenizerError> {
    if is_byte_level_with_regex(v) {
        return Ok(PreTokenizerKind::Gpt2);
    }
    if v["type"] == "Sequence"
        && let Some(list) = v["pretokenizers"].as_array()
    {
        if list.len() == 2
            && list[0]["type"] == "Digits"
            && list[0]["individual_digits"].as_bool() == Some(true)
            && is_byte_level_with_regex(&list[1])
        {
            return Ok(PreTokenizerKind::DigitsThenGpt2);
        }
        if list.len() == 1 && is_byte_level_with_regex(&list[0]) {
            return Ok(PreTokenizerKind::Gpt2);
        }
    }
    Err(TokenizerError::UnsupportedPreTokenizer(v.to_string()))
}
