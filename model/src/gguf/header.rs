//! The fixed header at the start of every GGUF file:
//! magic `GGUF`, version (u32), tensor count (u64), key/value count (u64).

use super::GgufError;
use super::cursor::Cursor;

/// The four magic bytes every GGUF file starts with.
pub const GGUF_MAGIC: [u8; 4] = *b"GGUF";

/// The only version this reader accepts.
pub const GGUF_VERSION: u32 = 3;

/// The smallest number of bytes one tensor info can take: name length (8),
/// dimension count (4), one dimension (8), type (4), offset (8).
pub(crate) const MIN_TENSOR_INFO_BYTES: u64 = 8 + 4 + 8 + 4 + 8;

/// The smallest number of bytes one key/value pair can take: key length (8),
/// value type (4), a one-byte value.
pub(crate) const MIN_KV_BYTES: u64 = 8 + 4 + 1;

/// The parsed fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GgufHeader {
    /// Format version (always 3 here).
    pub version: u32,
    /// Number of tensor infos.
    pub tensor_count: u64,
    /// Number of metadata key/value pairs.
    pub kv_count: u64,
}

/// Check a count against what the remaining bytes can hold at `min_bytes` each.
pub(crate) fn check_count(
    what: &str,
    count: u64,
    min_bytes: u64,
    remaining: u64,
) -> Result<(), GgufError> {
    let max = remaining / min_bytes;
    if count > max {
        return Err(GgufError::CountTooLarge {
            what: what.to_string(),
            count,
            max,
            remaining,
        });
    }
    Ok(())
}

/// Read and validate the header.
pub(crate) fn read_header(cur: &mut Cursor<'_>) -> Result<GgufHeader, GgufError> {
    let magic = cur.take(4, &|| "magic".to_string())?;
    if magic != GGUF_MAGIC {
        let mut found = [0u8; 4];
        found.copy_from_slice(magic);
        return Err(GgufError::BadMagic { found });
    }
    let version = cur.u32(&|| "version".to_string())?;
    if version != GGUF_VERSION {
        return Err(GgufError::UnsupportedVersion { found: version });
    }
    let tensor_count = cur.u64(&|| "tensor count".to_string())?;
    let kv_count = cur.u64(&|| "key/value count".to_string())?;
    // Both sections follow; each entry needs a minimum number of bytes, so a
    // count larger than the file could possibly hold is rejected before any
    // allocation is sized from it.
    check_count("key/value count", kv_count, MIN_KV_BYTES, cur.remaining())?;
    check_count(
        "tensor count",
        tensor_count,
        MIN_TENSOR_INFO_BYTES,
        cur.remaining(),
    )?;
    Ok(GgufHeader {
        version,
        tensor_count,
        kv_count,
    })
}
