//! The one error type of the GGUF reader: every message names the key or
//! tensor and the numbers that made the file unacceptable.

use thiserror::Error;

/// Everything that can go wrong while opening or reading a GGUF file.
#[derive(Debug, Error)]
pub enum GgufError {
    /// The file could not be opened or mapped.
    #[error("cannot read GGUF file {path}: {cause}")]
    Io {
        /// The path we tried to open.
        path: String,
        /// The operating system's error (printed in the message, so not
        /// also given as `source()`, which a report would print again).
        cause: std::io::Error,
    },
    /// A read ran past the end of the file.
    #[error(
        "truncated GGUF file: reading {what} needs bytes {offset}..{end} but the file has {file_len} bytes"
    )]
    Truncated {
        /// What was being read (a field, a key, a tensor name).
        what: String,
        /// Where the read started.
        offset: u64,
        /// Where it would have ended.
        end: u64,
        /// The file's length.
        file_len: u64,
    },
    /// The first four bytes are not `GGUF`.
    #[error("not a GGUF file: magic is {found:02x?}, expected \"GGUF\" (47 47 55 46)")]
    BadMagic {
        /// The four bytes found.
        found: [u8; 4],
    },
    /// Only version 3 is read.
    #[error("unsupported GGUF version {found} (this reader handles version 3)")]
    UnsupportedVersion {
        /// The version in the header.
        found: u32,
    },
    /// A count or length is larger than what the rest of the file could hold.
    #[error("{what} is {count}, but the remaining {remaining} bytes can hold at most {max}")]
    CountTooLarge {
        /// Which count (tensor count, key/value count, array length, string length).
        what: String,
        /// The count in the file.
        count: u64,
        /// The most the file could hold.
        max: u64,
        /// Bytes left in the file at that point.
        remaining: u64,
    },
    /// A string is not valid UTF-8.
    #[error("{what} is not valid UTF-8")]
    InvalidUtf8 {
        /// Which string.
        what: String,
    },
    /// A metadata value type id outside the GGUF specification.
    #[error("metadata key {key:?} has unknown value type {type_id}")]
    UnknownValueType {
        /// The key.
        key: String,
        /// The type id found.
        type_id: u32,
    },
    /// A boolean that is neither 0 nor 1.
    #[error("metadata key {key:?} has boolean byte {value}, expected 0 or 1")]
    BadBool {
        /// The key.
        key: String,
        /// The byte found.
        value: u8,
    },
    /// Arrays nested deeper than the reader allows.
    #[error("metadata key {key:?} nests arrays {depth} deep (limit {limit})")]
    NestingTooDeep {
        /// The key.
        key: String,
        /// Depth reached.
        depth: usize,
        /// The limit.
        limit: usize,
    },
    /// The same key appears twice.
    #[error("metadata key {key:?} appears twice")]
    DuplicateKey {
        /// The key.
        key: String,
    },
    /// A metadata key was asked for and is absent.
    #[error("metadata key {key:?} is missing")]
    MissingKey {
        /// The key.
        key: String,
    },
    /// A metadata value has a different type than the caller (or the format) needs.
    #[error("metadata key {key:?} has type {found}, expected {expected}")]
    MetadataType {
        /// The key.
        key: String,
        /// What was needed.
        expected: String,
        /// What the file holds.
        found: String,
    },
    /// `general.alignment` is zero or not a power of two.
    #[error("general.alignment is {value}; it must be a non-zero power of two")]
    BadAlignment {
        /// The value found.
        value: u64,
    },
    /// A tensor type id that no GGML version defines.
    #[error("tensor {tensor:?} has unknown GGML type id {type_id}")]
    UnknownTensorType {
        /// The tensor.
        tensor: String,
        /// The type id found.
        type_id: u32,
    },
    /// A known GGML type that this reader does not decode.
    #[error(
        "tensor {tensor:?} has GGML type {type_name} (id {type_id}), which is not supported (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q4_K, Q6_K)"
    )]
    UnsupportedTensorType {
        /// The tensor.
        tensor: String,
        /// The type's name (e.g. `Q4_K`).
        type_name: &'static str,
        /// The type id.
        type_id: u32,
    },
    /// Zero or more than four dimensions.
    #[error("tensor {tensor:?} has {n_dims} dimensions (allowed 1..=4)")]
    BadDimCount {
        /// The tensor.
        tensor: String,
        /// The count found.
        n_dims: u32,
    },
    /// The product of the dimensions (or the byte size) overflows.
    #[error("tensor {tensor:?}: shape {dims:?} overflows when multiplied out")]
    ShapeOverflow {
        /// The tensor.
        tensor: String,
        /// The dimensions as in the file.
        dims: Vec<u64>,
    },
    /// A block-quantized tensor whose rows are not whole blocks.
    #[error(
        "tensor {tensor:?}: first dimension {ne0} is not a multiple of the {type_name} block size {block}"
    )]
    NotWholeBlocks {
        /// The tensor.
        tensor: String,
        /// The row length.
        ne0: u64,
        /// The type's name.
        type_name: &'static str,
        /// Elements per block.
        block: u64,
    },
    /// A tensor offset that is not a multiple of the alignment.
    #[error(
        "tensor {tensor:?}: data offset {offset} is not a multiple of the alignment {alignment}"
    )]
    Misaligned {
        /// The tensor.
        tensor: String,
        /// The offset (relative to the data section).
        offset: u64,
        /// The alignment.
        alignment: u64,
    },
    /// A tensor's bytes reach past the end of the file.
    #[error(
        "tensor {tensor:?}: data bytes {start}..{end} (relative to the data section) exceed its {data_len} bytes"
    )]
    OutOfBounds {
        /// The tensor.
        tensor: String,
        /// Start offset.
        start: u64,
        /// End offset.
        end: u64,
        /// Length of the data section.
        data_len: u64,
    },
    /// Two tensors share bytes.
    #[error(
        "tensors {first:?} (bytes {first_start}..{first_end}) and {second:?} (bytes {second_start}..{second_end}) overlap"
    )]
    Overlap {
        /// The tensor that starts first.
        first: String,
        /// Its start.
        first_start: u64,
        /// Its end.
        first_end: u64,
        /// The other tensor.
        second: String,
        /// Its start.
        second_start: u64,
        /// Its end.
        second_end: u64,
    },
    /// The same tensor name appears twice.
    #[error("tensor {tensor:?} appears twice")]
    DuplicateTensor {
        /// The tensor.
        tensor: String,
    },
    /// A tensor was asked for and is absent.
    #[error("no tensor named {tensor:?} in the file")]
    NoSuchTensor {
        /// The name asked for.
        tensor: String,
    },
    /// A tensor's data could not become an engine tensor.
    #[error("tensor {tensor:?}: {reason}")]
    BadTensor {
        /// The tensor.
        tensor: String,
        /// Why.
        reason: String,
    },
}
