//! Special tokens (`<|endoftext|>`, `<|im_start|>`, `<|im_end|>`, ...) are
//! found in the text before any pre-tokenization or BPE, so that the string
//! `<|im_end|>` becomes the one control token rather than seven ordinary ones.

/// The special tokens of a vocabulary and how to find them in text.
#[derive(Debug, Clone, Default)]
pub struct SpecialTokens {
    /// `(text, id)`, longest text first so the longest match wins.
    tokens: Vec<(String, u32)>,
}

/// A slice of the input: ordinary text to pre-tokenize, or one special token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment<'t> {
    /// Text between special tokens.
    Text(&'t str),
    /// A special token's id.
    Special(u32),
}

impl SpecialTokens {
    /// Build from `(text, id)` pairs; empty texts are ignored.
    pub fn new(tokens: impl IntoIterator<Item = (String, u32)>) -> Self {
        let mut tokens: Vec<(String, u32)> =
            tokens.into_iter().filter(|(t, _)| !t.is_empty()).collect();
        tokens.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
        SpecialTokens { tokens }
    }

    /// The special tokens, longest first.
    pub fn tokens(&self) -> &[(String, u32)] {
        &self.tokens
    }

    /// The id of a special token's text.
    pub fn id(&self, text: &str) -> Option<u32> {
        self.tokens
            .iter()
            .find(|(t, _)| t == text)
            .map(|&(_, id)| id)
    }

    // ANCHOR: split_special
    /// Cut `text` into ordinary text and special tokens, scanning left to
    /// right and taking the longest special token that starts at each point.
    pub fn split<'t>(&self, text: &'t str) -> Vec<Segment<'t>> {
        let mut out = Vec::new();
        let mut start = 0; // start of the pending ordinary text
        let mut i = 0;
        while i < text.len() {
            let rest = &text[i..];
            if let Some((t, id)) = self
                .tokens
                .iter()
                .find(|(t, _)| rest.starts_with(t.as_str()))
            {
                if i > start {
                    out.push(Segment::Text(&text[start..i]));
                }
                out.push(Segment::Special(*id));
                i += t.len();
                start = i;
            } else {
                // Advance one character (text is UTF-8; specials start on a char boundary).
                i += rest.chars().next().map_or(1, char::len_utf8);
            }
        }
        if start < text.len() {
            out.push(Segment::Text(&text[start..]));
        }
        out
    }
    // ANCHOR_END: split_special
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_match_and_text_between() {
        let s = SpecialTokens::new([
            ("<a>".to_string(), 1),
            ("<a><b>".to_string(), 2),
            ("<b>".to_string(), 3),
        ]);
        assert_eq!(
            s.split("x<a><b>y<b>"),
            vec![
                Segment::Text("x"),
                Segment::Special(2),
                Segment::Text("y"),
                Segment::Special(3)
            ]
        );
        assert_eq!(s.split("é<a"), vec![Segment::Text("é<a")]);
        assert!(s.split("").is_empty());
    }
}
