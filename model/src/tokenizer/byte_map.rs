//! GPT-2's byte ↔ character map.
//!
//! Byte-level BPE works on bytes, but its vocabulary files are text. GPT-2
//! maps every byte to a printable character: the 188 bytes that already are
//! printable (`!`..`~`, `¡`..`¬`, `®`..`ÿ`) map to themselves, and the other
//! 68 (control bytes, space, DEL, ...) map, in byte order, to the characters
//! U+0100, U+0101, ... So a space becomes `Ġ` (U+0120) and a newline `Ċ` (U+010A).

// ANCHOR: bytes_to_unicode
/// The character each byte is written as in the vocabulary.
pub fn bytes_to_unicode() -> [char; 256] {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    let mut map = ['\0'; 256];
    let mut next = 256u32;
    for b in 0..=255u8 {
        map[b as usize] = if printable(b) {
            char::from(b)
        } else {
            let c = char::from_u32(next).unwrap_or(char::REPLACEMENT_CHARACTER);
            next += 1;
            c
        };
    }
    map
}
// ANCHOR_END: bytes_to_unicode

/// The inverse map: the byte a vocabulary character stands for, if any.
#[derive(Debug, Clone)]
pub struct ByteDecoder {
    /// Indexed by code point; covers U+0000..U+0143, the whole image of the map.
    table: Vec<Option<u8>>,
}

impl ByteDecoder {
    /// Build the inverse of [`bytes_to_unicode`].
    pub fn new() -> Self {
        let map = bytes_to_unicode();
        let max = map.iter().map(|&c| c as usize).max().unwrap_or(0);
        let mut table = vec![None; max + 1];
        for (b, &c) in map.iter().enumerate() {
            table[c as usize] = Some(b as u8);
        }
        ByteDecoder { table }
    }

    /// The byte `c` encodes, or `None` if `c` is not in the map's image.
    pub fn byte(&self, c: char) -> Option<u8> {
        self.table.get(c as usize).copied().flatten()
    }

    /// The bytes a vocabulary piece stands for, if every character is in the
    /// map's image.
    pub fn piece_bytes(&self, piece: &str) -> Option<Vec<u8>> {
        piece.chars().map(|c| self.byte(c)).collect()
    }
}

impl Default for ByteDecoder {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_characters_and_bijection() {
        let m = bytes_to_unicode();
        assert_eq!(m[b' ' as usize], 'Ġ');
        assert_eq!(m[b'\n' as usize], 'Ċ');
        assert_eq!(m[b'a' as usize], 'a');
        assert_eq!(m[0], 'Ā');
        let d = ByteDecoder::new();
        let mut seen = std::collections::HashSet::new();
        for b in 0..=255u8 {
            assert!(seen.insert(m[b as usize]), "character for byte {b} repeats");
            assert_eq!(d.byte(m[b as usize]), Some(b));
        }
        assert_eq!(d.piece_bytes("Ġhello"), Some(b" hello".to_vec()));
        assert_eq!(
            d.piece_bytes("<|endoftext|>"),
            Some(b"<|endoftext|>".to_vec())
        );
        assert_eq!(d.piece_bytes("Ġ日"), None);
    }
}
