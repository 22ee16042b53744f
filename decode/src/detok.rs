//! Model-agnostic text decoding: token bytes in, UTF-8 text deltas out.

/// Anything that can tell the bytes a token stands for. A tokenizer
/// implements it; `decode` never needs to know which one. It is shared by
/// the threads that choose a batch's tokens at once, hence `Sync`.
pub trait Detokenize: Sync {
    /// The bytes of token `id` (empty for unknown or special tokens).
    fn token_bytes(&self, id: u32) -> &[u8];
}

/// A plain table: token `i` is `table[i]`.
impl Detokenize for Vec<Vec<u8>> {
    fn token_bytes(&self, id: u32) -> &[u8] {
        self.get(id as usize).map(|v| v.as_slice()).unwrap_or(&[])
    }
}

/// Turns a stream of byte chunks into text, holding back an incomplete
/// UTF-8 sequence until the bytes that finish it arrive (a single emoji may
/// span several byte-level tokens). Invalid bytes become U+FFFD.
#[derive(Debug, Default, Clone)]
pub struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    /// An empty stream.
    pub fn new() -> Self {
        Utf8Stream::default()
    }

    // ANCHOR: utf8_push
    /// Add bytes; return the text that is now complete.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
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
                    // The prefix is valid UTF-8 by construction.
                    out.push_str(&String::from_utf8_lossy(&self.pending[..valid]));
                    match e.error_len() {
                        // Incomplete sequence at the end: wait for more bytes.
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
    // ANCHOR_END: utf8_push

    /// Bytes held back, waiting for the rest of a character.
    pub fn pending(&self) -> &[u8] {
        &self.pending
    }

    /// End of stream: whatever is still pending, lossily.
    pub fn finish(&mut self) -> String {
        let s = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        s
    }
}
