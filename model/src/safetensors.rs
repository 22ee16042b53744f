//! safetensors: an 8-byte little-endian header length `N`, `N` bytes of JSON
//! (`{"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}`),
//! then the byte buffer the offsets index.
//!
//! Like the GGUF reader, this treats the file as hostile: the header length,
//! each shape product, each byte range and the coverage of the buffer (no
//! overlaps, no holes, as the format requires) are checked before use.
//! F32 tensors are served zero-copy from the memory map when aligned.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

use half::{bf16, f16};
use serde_json::Value;
use thiserror::Error;

/// The largest JSON header accepted (the reference implementation uses the same 100 MB cap).
pub const MAX_HEADER_BYTES: u64 = 100_000_000;

/// Errors from reading a safetensors file.
#[derive(Debug, Error)]
pub enum SafetensorsError {
    /// The file could not be opened or mapped.
    #[error("cannot read safetensors file {path}: {cause}")]
    Io {
        /// The path.
        path: String,
        /// The operating system's error (printed in the message, so not
        /// also given as `source()`, which a report would print again).
        cause: std::io::Error,
    },
    /// Fewer than 8 bytes: no header length.
    #[error("safetensors file has {file_len} bytes, fewer than the 8-byte header length")]
    TooShort {
        /// The file's length.
        file_len: u64,
    },
    /// The header length exceeds the file or the cap.
    #[error(
        "safetensors header length {header_len} exceeds the {available} bytes available (cap {MAX_HEADER_BYTES})"
    )]
    HeaderTooLarge {
        /// The length in the file.
        header_len: u64,
        /// Bytes after the length field.
        available: u64,
    },
    /// The header is not valid JSON (or not UTF-8).
    #[error("safetensors header is not valid JSON: {0}")]
    BadJson(String),
    /// The header JSON does not have the expected structure.
    #[error("safetensors header: {0}")]
    BadHeader(String),
    /// A dtype this reader does not decode.
    #[error("tensor {tensor:?} has dtype {dtype:?}; supported are F32, F16, BF16")]
    UnsupportedDtype {
        /// The tensor.
        tensor: String,
        /// The dtype string in the file.
        dtype: String,
    },
    /// The shape product (or its byte size) overflows.
    #[error("tensor {tensor:?}: shape {shape:?} overflows when multiplied out")]
    ShapeOverflow {
        /// The tensor.
        tensor: String,
        /// The shape.
        shape: Vec<u64>,
    },
    /// The byte range does not match shape × dtype size.
    #[error(
        "tensor {tensor:?}: data_offsets [{begin}, {end}] span {span} bytes, but shape {shape:?} of {dtype} needs {expected}"
    )]
    SizeMismatch {
        /// The tensor.
        tensor: String,
        /// Start offset.
        begin: u64,
        /// End offset.
        end: u64,
        /// `end - begin` (0 if reversed).
        span: u64,
        /// The shape.
        shape: Vec<u64>,
        /// The dtype.
        dtype: &'static str,
        /// Bytes the shape needs.
        expected: u64,
    },
    /// A byte range past the end of the buffer, or reversed.
    #[error(
        "tensor {tensor:?}: data_offsets [{begin}, {end}] lie outside the {data_len}-byte buffer"
    )]
    OutOfBounds {
        /// The tensor.
        tensor: String,
        /// Start offset.
        begin: u64,
        /// End offset.
        end: u64,
        /// Buffer length.
        data_len: u64,
    },
    /// Two tensors share bytes.
    #[error(
        "tensors {first:?} (bytes {first_begin}..{first_end}) and {second:?} (bytes {second_begin}..{second_end}) overlap"
    )]
    Overlap {
        /// The tensor starting first.
        first: String,
        /// Its start.
        first_begin: u64,
        /// Its end.
        first_end: u64,
        /// The other tensor.
        second: String,
        /// Its start.
        second_begin: u64,
        /// Its end.
        second_end: u64,
    },
    /// Bytes of the buffer that no tensor covers.
    #[error("safetensors buffer has a hole: bytes {from}..{to} belong to no tensor")]
    Hole {
        /// Start of the hole.
        from: u64,
        /// End of the hole.
        to: u64,
    },
    /// A tensor was asked for and is absent.
    #[error("no tensor named {tensor:?} in the safetensors file")]
    NoSuchTensor {
        /// The name asked for.
        tensor: String,
    },
}

/// Element types stored in safetensors files that this reader decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StDtype {
    /// 32-bit float.
    F32,
    /// IEEE half.
    F16,
    /// bfloat16.
    BF16,
}

impl StDtype {
    /// Bytes per element.
    pub fn size(self) -> u64 {
        match self {
            StDtype::F32 => 4,
            StDtype::F16 | StDtype::BF16 => 2,
        }
    }

    /// The dtype's name as the format spells it.
    pub fn name(self) -> &'static str {
        match self {
            StDtype::F32 => "F32",
            StDtype::F16 => "F16",
            StDtype::BF16 => "BF16",
        }
    }
}

/// One tensor's description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StTensorInfo {
    /// Name.
    pub name: String,
    /// Element type.
    pub dtype: StDtype,
    /// Row-major shape.
    pub shape: Vec<usize>,
    /// Start of the data, relative to the byte buffer.
    pub begin: u64,
    /// End of the data (exclusive).
    pub end: u64,
}

enum Backing {
    Mmap(memmap2::Mmap),
    Owned(Vec<u8>),
}

/// An opened, validated safetensors file.
pub struct SafetensorsFile {
    backing: Backing,
    data_start: usize,
    tensors: Vec<StTensorInfo>,
    metadata: BTreeMap<String, String>,
}

impl std::fmt::Debug for SafetensorsFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SafetensorsFile")
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

fn header_err(msg: String) -> SafetensorsError {
    SafetensorsError::BadHeader(msg)
}

fn parse_info(name: &str, v: &Value, data_len: u64) -> Result<StTensorInfo, SafetensorsError> {
    let obj = v
        .as_object()
        .ok_or_else(|| header_err(format!("entry {name:?} is not an object")))?;
    let dtype_str = obj
        .get("dtype")
        .and_then(Value::as_str)
        .ok_or_else(|| header_err(format!("tensor {name:?} has no string \"dtype\"")))?;
    let dtype = match dtype_str {
        "F32" => StDtype::F32,
        "F16" => StDtype::F16,
        "BF16" => StDtype::BF16,
        other => {
            return Err(SafetensorsError::UnsupportedDtype {
                tensor: name.into(),
                dtype: other.into(),
            });
        }
    };
    let shape: Vec<u64> = obj
        .get("shape")
        .and_then(Value::as_array)
        .ok_or_else(|| header_err(format!("tensor {name:?} has no array \"shape\"")))?
        .iter()
        .map(|d| {
            d.as_u64().ok_or_else(|| {
                header_err(format!(
                    "tensor {name:?}: shape entry {d} is not a non-negative integer"
                ))
            })
        })
        .collect::<Result<_, _>>()?;
    let offsets = obj
        .get("data_offsets")
        .and_then(Value::as_array)
        .filter(|a| a.len() == 2)
        .ok_or_else(|| {
            header_err(format!(
                "tensor {name:?} has no two-element \"data_offsets\""
            ))
        })?;
    let off = |i: usize| {
        offsets[i].as_u64().ok_or_else(|| {
            header_err(format!(
                "tensor {name:?}: data offset {} is not a non-negative integer",
                offsets[i]
            ))
        })
    };
    let (begin, end) = (off(0)?, off(1)?);

    let overflow = || SafetensorsError::ShapeOverflow {
        tensor: name.into(),
        shape: shape.clone(),
    };
    let mut n: u64 = 1;
    for &d in &shape {
        n = n.checked_mul(d).ok_or_else(overflow)?;
    }
    let expected = n.checked_mul(dtype.size()).ok_or_else(overflow)?;
    let usize_shape = shape
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| overflow()))
        .collect::<Result<Vec<_>, _>>()?;
    if begin > end || end > data_len {
        return Err(SafetensorsError::OutOfBounds {
            tensor: name.into(),
            begin,
            end,
            data_len,
        });
    }
    if end - begin != expected {
        return Err(SafetensorsError::SizeMismatch {
            tensor: name.into(),
            begin,
            end,
            span: end - begin,
            shape,
            dtype: dtype.name(),
            expected,
        });
    }
    Ok(StTensorInfo {
        name: name.into(),
        dtype,
        shape: usize_shape,
        begin,
        end,
    })
}

impl SafetensorsFile {
    /// Memory-map and validate the file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<SafetensorsFile, SafetensorsError> {
        let path = path.as_ref();
        let io = |cause| SafetensorsError::Io {
            path: path.display().to_string(),
            cause,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        // SAFETY: read-only private map; this program never writes the file
        // while it is mapped.
        let mmap = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        Self::parse(Backing::Mmap(mmap))
    }

    /// Validate a safetensors file held in memory.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<SafetensorsFile, SafetensorsError> {
        Self::parse(Backing::Owned(bytes))
    }

    fn bytes(&self) -> &[u8] {
        match &self.backing {
            Backing::Mmap(m) => m,
            Backing::Owned(v) => v,
        }
    }

    fn parse(backing: Backing) -> Result<SafetensorsFile, SafetensorsError> {
        let bytes: &[u8] = match &backing {
            Backing::Mmap(m) => m,
            Backing::Owned(v) => v,
        };
        let file_len = bytes.len() as u64;
        if file_len < 8 {
            return Err(SafetensorsError::TooShort { file_len });
        }
        let mut len_bytes = [0u8; 8];
        len_bytes.copy_from_slice(&bytes[..8]);
        let header_len = u64::from_le_bytes(len_bytes);
        let available = file_len - 8;
        if header_len > available || header_len > MAX_HEADER_BYTES {
            return Err(SafetensorsError::HeaderTooLarge {
                header_len,
                available,
            });
        }
        let data_start = 8 + header_len as usize;
        let header: Value = serde_json::from_slice(&bytes[8..data_start])
            .map_err(|e| SafetensorsError::BadJson(e.to_string()))?;
        let entries = header
            .as_object()
            .ok_or_else(|| header_err("the header is not a JSON object".into()))?;
        let data_len = file_len - data_start as u64;

        let mut metadata = BTreeMap::new();
        let mut tensors = Vec::with_capacity(entries.len());
        for (name, v) in entries {
            if name == "__metadata__" {
                let m = v
                    .as_object()
                    .ok_or_else(|| header_err("__metadata__ is not an object".into()))?;
                for (k, val) in m {
                    let s = val.as_str().ok_or_else(|| {
                        header_err(format!("__metadata__ value of {k:?} is not a string"))
                    })?;
                    metadata.insert(k.clone(), s.to_string());
                }
                continue;
            }
            tensors.push(parse_info(name, v, data_len)?);
        }

        // The buffer must be covered exactly: sorted ranges, each starting
        // where the previous ended, the last ending at the buffer's end.
        let mut order: Vec<usize> = (0..tensors.len()).collect();
        order.sort_by_key(|&i| (tensors[i].begin, tensors[i].end));
        let mut covered: u64 = 0;
        let mut prev: Option<usize> = None;
        for &i in &order {
            let t = &tensors[i];
            if t.begin < covered {
                let p = &tensors[prev.unwrap_or(i)];
                return Err(SafetensorsError::Overlap {
                    first: p.name.clone(),
                    first_begin: p.begin,
                    first_end: p.end,
                    second: t.name.clone(),
                    second_begin: t.begin,
                    second_end: t.end,
                });
            }
            if t.begin > covered {
                return Err(SafetensorsError::Hole {
                    from: covered,
                    to: t.begin,
                });
            }
            covered = t.end;
            prev = Some(i);
        }
        if covered != data_len {
            return Err(SafetensorsError::Hole {
                from: covered,
                to: data_len,
            });
        }
        Ok(SafetensorsFile {
            backing,
            data_start,
            tensors,
            metadata,
        })
    }

    /// Every tensor, in header order.
    pub fn tensors(&self) -> &[StTensorInfo] {
        &self.tensors
    }

    /// The `__metadata__` string map.
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// One tensor's description.
    pub fn tensor_info(&self, name: &str) -> Result<&StTensorInfo, SafetensorsError> {
        self.tensors
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| SafetensorsError::NoSuchTensor {
                tensor: name.to_string(),
            })
    }

    /// The raw bytes of a tensor.
    pub fn tensor_bytes(&self, name: &str) -> Result<&[u8], SafetensorsError> {
        let t = self.tensor_info(name)?;
        // Validated against the buffer when the file was opened.
        Ok(&self.bytes()[self.data_start + t.begin as usize..self.data_start + t.end as usize])
    }

    /// An F32 tensor as a slice borrowed from the map when its bytes are
    /// 4-byte aligned (zero-copy), otherwise copied; other dtypes converted.
    pub fn tensor_f32_view(&self, name: &str) -> Result<Cow<'_, [f32]>, SafetensorsError> {
        let t = self.tensor_info(name)?;
        let bytes = self.tensor_bytes(name)?;
        #[cfg(target_endian = "little")]
        if t.dtype == StDtype::F32 {
            // SAFETY: every bit pattern is a valid f32, the middle part is
            // aligned by `align_to`'s contract, and we only use it when the
            // whole slice is in it. The bytes are immutable for `self`'s life.
            let (pre, mid, post) = unsafe { bytes.align_to::<f32>() };
            if pre.is_empty() && post.is_empty() {
                return Ok(Cow::Borrowed(mid));
            }
        }
        Ok(Cow::Owned(convert(t.dtype, bytes)))
    }

    /// A tensor converted to f32, with its row-major shape.
    pub fn tensor_f32(&self, name: &str) -> Result<(Vec<f32>, Vec<usize>), SafetensorsError> {
        let t = self.tensor_info(name)?;
        Ok((convert(t.dtype, self.tensor_bytes(name)?), t.shape.clone()))
    }
}

fn convert(dtype: StDtype, bytes: &[u8]) -> Vec<f32> {
    match dtype {
        StDtype::F32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        StDtype::F16 => bytes
            .chunks_exact(2)
            .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        StDtype::BF16 => bytes
            .chunks_exact(2)
            .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
    }
}
