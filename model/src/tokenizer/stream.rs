//! Streaming detokenization. One token can end in the middle of a UTF-8
//! character (byte-level BPE splits `é` = C3 A9 or an emoji's four bytes
//! across tokens), so text is emitted only up to the last complete
//! character; the rest waits for the next token.

use decode::Utf8Stream;

use super::Tokenizer;

/// Turns a stream of token ids into text pieces, never emitting half a
/// character. The byte-level work is [`decode::Utf8Stream`]'s (one piece of
/// code for one idea); this adds the token-to-bytes lookup.
#[derive(Debug, Clone)]
pub struct StreamDecoder<'a> {
    tokenizer: &'a Tokenizer,
    bytes: Utf8Stream,
}

impl<'a> StreamDecoder<'a> {
    /// A decoder with nothing pending.
    pub fn new(tokenizer: &'a Tokenizer) -> Self {
        StreamDecoder {
            tokenizer,
            bytes: Utf8Stream::new(),
        }
    }

    /// Add one token; returns the text that is now complete (possibly empty).
    /// Bytes that can never become valid UTF-8 are emitted as U+FFFD, as
    /// [`Tokenizer::decode`] would.
    pub fn push(&mut self, id: u32) -> String {
        self.bytes.push(self.tokenizer.token_bytes(id))
    }

    /// Bytes held back, waiting for the rest of a character.
    pub fn pending(&self) -> &[u8] {
        self.bytes.pending()
    }

    /// End of stream: whatever is pending, lossily (an unfinished character
    /// becomes U+FFFD).
    pub fn finish(&mut self) -> String {
        self.bytes.finish()
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
