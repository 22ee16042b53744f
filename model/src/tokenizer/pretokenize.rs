//! Pre-tokenization: cutting text into pieces before BPE, so merges never
//! cross a word boundary ("dog." is "dog" + ".", never "do" + "g.").
//!
//! GPT-2's pattern keeps a leading space with the word that follows it,
//! separates letters, numbers and punctuation, splits off English
//! contractions, and leaves a run of spaces before a word as its own piece
//! minus the last space (which joins the word).
//!
//! SmolLM2's GGUF declares `tokenizer.ggml.pre = "smollm"`. Its Hugging Face
//! `tokenizer.json` is `Sequence[Digits(individual_digits), ByteLevel]`, and
//! llama.cpp implements `smollm` as `\p{N}` first, then GPT-2's pattern: every
//! digit (every character of Unicode category N) is a piece by itself, and
//! GPT-2's pattern runs on the text between digits. (transformers 5.x, when it
//! builds a tokenizer from this GGUF, has no entry for `smollm` and uses plain
//! GPT-2 splitting, which differs from the model's own tokenizer on digits.)

use fancy_regex::Regex;

// ANCHOR: gpt2_pattern
/// GPT-2's pre-tokenization pattern (as in its `encoder.py` and HF's `ByteLevel`).
pub const GPT2_PATTERN: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
// ANCHOR_END: gpt2_pattern

/// How text is cut before BPE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreTokenizerKind {
    /// GPT-2's pattern.
    Gpt2,
    /// Every Unicode digit alone, then GPT-2's pattern (SmolLM2, StarCoder).
    DigitsThenGpt2,
}

/// A compiled pre-tokenizer.
#[derive(Debug, Clone)]
pub struct PreTokenizer {
    kind: PreTokenizerKind,
    regex: Regex,
}

impl PreTokenizer {
    /// Compile the pre-tokenizer of `kind`.
    pub fn new(kind: PreTokenizerKind) -> Self {
        // The pattern is a constant that compiles; a failure would be a bug here.
        let regex = Regex::new(GPT2_PATTERN).expect("GPT-2 pattern compiles");
        PreTokenizer { kind, regex }
    }

    /// Which pre-tokenizer this is.
    pub fn kind(&self) -> PreTokenizerKind {
        self.kind
    }

    /// Cut `text` into pieces whose concatenation is `text`.
    pub fn split<'t>(&self, text: &'t str) -> Vec<&'t str> {
        let mut out = Vec::new();
        match self.kind {
            PreTokenizerKind::Gpt2 => self.split_regex(text, &mut out),
            PreTokenizerKind::DigitsThenGpt2 => {
                let mut start = 0;
                for (i, c) in text.char_indices() {
                    if c.is_numeric() {
                        self.split_regex(&text[start..i], &mut out);
                        out.push(&text[i..i + c.len_utf8()]);
                        start = i + c.len_utf8();
                    }
                }
                self.split_regex(&text[start..], &mut out);
            }
        }
        out
    }

    /// Matches become pieces; any text between matches becomes a piece too
    /// (GPT-2's pattern matches every character, so there is none in practice).
    fn split_regex<'t>(&self, text: &'t str, out: &mut Vec<&'t str>) {
        let mut last = 0;
        for m in self.regex.find_iter(text) {
            let Ok(m) = m else {
                // Backtracking limit hit: keep the rest as one piece rather than lose text.
                break;
            };
            if m.start() > last {
                out.push(&text[last..m.start()]);
            }
            if m.end() > m.start() {
                out.push(m.as_str());
            }
            last = m.end();
        }
        if last < text.len() {
            out.push(&text[last..]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpt2_splits() {
        let p = PreTokenizer::new(PreTokenizerKind::Gpt2);
        assert_eq!(p.split("Hello world!"), vec!["Hello", " world", "!"]);
        assert_eq!(
            p.split("I'm   here 123"),
            vec!["I", "'m", "  ", " here", " 123"]
        );
        assert_eq!(p.split("a\n\nb  "), vec!["a", "\n", "\n", "b", "  "]);
        assert!(p.split("").is_empty());
    }

    #[test]
    fn digits_alone() {
        let p = PreTokenizer::new(PreTokenizerKind::DigitsThenGpt2);
        assert_eq!(p.split("abc 123x"), vec!["abc", " ", "1", "2", "3", "x"]);
        assert_eq!(p.split("٣4"), vec!["٣", "4"]);
    }
}
