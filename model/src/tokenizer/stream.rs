//! Streaming detokenization. One token can end in the middle of a UTF-8
//! character (byte-level BPE splits `é` = C3 A9 or an emoji's four bytes
//! across tokens), so text is emitted only up to the last complete
//! character; the rest waits for the next token.

use super::Tokenizer;

/// Turns a stream of token ids into text pieces, never emitting half a character.
#[derive(Debug, Clone)]
pub struct StreamDecoder<'a> {
    tokenizer: &'a Tokenizer,
    pending: Vec<u8>,
}

impl<'a> StreamDecoder<'a> {
    /// A decoder with nothing pending.
    pub fn new(tokenizer: &'a Tokenizer) -> Self {
        StreamDecoder {
            tokenizer,
            pending: Vec::new(),
        }
    }

    // ANCHOR: stream_push
    /// Add one token; returns the text that is now complete (possibly empty).
    /// Bytes that can never become valid UTF-8 are emitted as U+FFFD, as
    /// [`Tokenizer::decode`] would.
    pub fn push(&mut self, id: u32) -> String {
        self.pending
            .extend_from_slice(self.tokenizer.token_bytes(id));
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    // The prefix was just validated, so this cannot fall back to "".
                    out.push_str(std::str::from_utf8(&self.pending[..valid]).unwrap_or_default());
                    match e.error_len() {
                        // An incomplete character at the end: wait for more bytes.
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                        // Bytes that no continuation can fix.
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }
    // ANCHOR_END: stream_push

    /// Bytes held back, waiting for the rest of a character.
    pub fn pending(&self) -> &[u8] {
        &self.pending
    }

    /// End of stream: whatever is pending, lossily (an unfinished character
    /// becomes U+FFFD).
    pub fn finish(&mut self) -> String {
        let out = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        out
    }
}

/// The decoding strategies of the `decode` crate turn tokens into text
/// through this trait (they hold their own UTF-8 stream, so a strategy never
/// needs a [`StreamDecoder`]).
impl decode::Detokenize for Tokenizer {
    fn token_bytes(&self, id: u32) -> &[u8] {
        Tokenizer::token_bytes(self, id)
    }
}
