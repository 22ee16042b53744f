//! GGUF v3: the file format llama.cpp uses for weights, tokenizer and
//! hyper-parameters in one file.
//!
//! Layout: a fixed [header], `kv_count` [metadata] pairs,
//! `tensor_count` [tensor infos](tensor_info), padding to `general.alignment`
//! (default 32), then the data section holding every tensor at its offset.
//!
//! The file is treated as hostile: every count, length, offset, shape
//! product and alignment is checked with overflow-safe arithmetic before it
//! sizes an allocation or indexes the mapping.

mod cursor;
mod error;
pub mod header;
pub mod metadata;
pub mod requantize;
pub mod tensor_info;
pub mod write;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use engine::tensor::Bytes;
use engine::{DType, Tensor};

pub use error::GgufError;
pub use header::GgufHeader;
pub use metadata::{MetaType, MetaValue};
pub use tensor_info::{GgmlType, TensorInfo};

use cursor::Cursor;
use header::{MIN_TENSOR_INFO_BYTES, check_count};

/// Alignment of the data section and of every tensor when the file does not
/// set `general.alignment`.
pub const DEFAULT_ALIGNMENT: u64 = 32;

/// The most tensors a file may describe (real models have a few thousand).
pub const MAX_TENSORS: u64 = 1 << 20;

/// The bytes behind a [`GgufFile`]: a read-only memory map, or an owned
/// buffer (for files built in memory, e.g. by tests).
enum Backing {
    Mmap(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Backing {
    fn bytes(&self) -> &[u8] {
        match self {
            Backing::Mmap(m) => m,
            Backing::Owned(v) => v,
        }
    }
}

impl Backing {
    /// Drop the pages of `range` from this process's memory (a memory map
    /// only; they are read again from the file if touched). Errors are
    /// ignored: it is only a hint.
    fn release(&self, range: std::ops::Range<usize>) {
        if let Backing::Mmap(m) = self
            && range.end <= m.len()
        {
            // SAFETY: the map is read-only and private, so no page holds
            // data that is not in the file: after MADV_DONTNEED a read
            // faults the same bytes back in from the file, and every
            // reference into the map stays valid with unchanged contents.
            let _ = unsafe {
                m.unchecked_advise_range(
                    memmap2::UncheckedAdvice::DontNeed,
                    range.start,
                    range.len(),
                )
            };
        }
    }
}

impl AsRef<[u8]> for Backing {
    fn as_ref(&self) -> &[u8] {
        self.bytes()
    }
}

/// An opened, validated GGUF file.
pub struct GgufFile {
    backing: Arc<Backing>,
    header: GgufHeader,
    metadata: Vec<(String, MetaValue)>,
    meta_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
    alignment: u64,
    data_offset: u64,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("header", &self.header)
            .field("metadata_keys", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .field("alignment", &self.alignment)
            .field("data_offset", &self.data_offset)
            .finish()
    }
}

fn align_up(x: u64, alignment: u64) -> Option<u64> {
    x.checked_add(alignment - 1)
        .map(|v| v / alignment * alignment)
}

impl GgufFile {
    /// Memory-map and validate the file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<GgufFile, GgufError> {
        let path = path.as_ref();
        let io = |cause| GgufError::Io {
            path: path.display().to_string(),
            cause,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        // SAFETY: the map is read-only and private to this process; the file
        // is not modified by this program while mapped. (Another process
        // truncating it would fault, as with any mmap-based loader.)
        let mmap = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        Self::parse(Backing::Mmap(mmap))
    }

    /// Validate a GGUF file held in memory.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<GgufFile, GgufError> {
        Self::parse(Backing::Owned(bytes))
    }

    fn parse(backing: Backing) -> Result<GgufFile, GgufError> {
        let bytes = backing.bytes();
        let file_len = bytes.len() as u64;
        let mut cur = Cursor::new(bytes);
        let header = header::read_header(&mut cur)?;

        // Counts were bounded by the file size in `read_header`; vectors
        // still start small and grow only as entries are actually read.
        let prealloc = |n: u64| n.min(metadata::MAX_PREALLOC) as usize;
        let mut metadata = Vec::with_capacity(prealloc(header.kv_count));
        let mut meta_index = HashMap::with_capacity(prealloc(header.kv_count));
        let mut budget = metadata::MAX_METADATA_ELEMENTS;
        for i in 0..header.kv_count {
            let (key, value) = metadata::read_kv(&mut cur, i, &mut budget)?;
            if meta_index.insert(key.clone(), metadata.len()).is_some() {
                return Err(GgufError::DuplicateKey { key });
            }
            metadata.push((key, value));
        }
        // Re-check the tensor count against what is left after the metadata.
        check_count(
            "tensor count",
            header.tensor_count,
            MIN_TENSOR_INFO_BYTES,
            cur.remaining(),
        )?;

        let alignment = match meta_index.get("general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(&i) => match &metadata[i].1 {
                MetaValue::U32(v) => u64::from(*v),
                other => {
                    return Err(GgufError::MetadataType {
                        key: "general.alignment".into(),
                        expected: "UINT32".into(),
                        found: other.type_description(),
                    });
                }
            },
        };
        if alignment == 0 || !alignment.is_power_of_two() {
            return Err(GgufError::BadAlignment { value: alignment });
        }

        if header.tensor_count > MAX_TENSORS {
            return Err(GgufError::CountTooLarge {
                what: "tensor count".into(),
                count: header.tensor_count,
                max: MAX_TENSORS,
                remaining: cur.remaining(),
            });
        }
        let mut tensors = Vec::with_capacity(prealloc(header.tensor_count));
        let mut tensor_index = HashMap::with_capacity(prealloc(header.tensor_count));
        for i in 0..header.tensor_count {
            let info = tensor_info::read_tensor_info(&mut cur, i)?;
            if tensor_index
                .insert(info.name.clone(), tensors.len())
                .is_some()
            {
                return Err(GgufError::DuplicateTensor { tensor: info.name });
            }
            tensors.push(info);
        }

        let infos_end = cur.pos() as u64;
        let data_offset = align_up(infos_end, alignment)
            .filter(|&d| d <= file_len)
            .ok_or(GgufError::Truncated {
                what: format!("padding to the data section (alignment {alignment})"),
                offset: infos_end,
                end: infos_end.saturating_add(alignment),
                file_len,
            })?;
        let data_len = file_len - data_offset;

        // Bounds and alignment of each tensor, then overlaps between them.
        for t in &tensors {
            if !t.offset.is_multiple_of(alignment) {
                return Err(GgufError::Misaligned {
                    tensor: t.name.clone(),
                    offset: t.offset,
                    alignment,
                });
            }
            let end = t.offset.checked_add(t.n_bytes).filter(|&e| e <= data_len);
            if end.is_none() {
                return Err(GgufError::OutOfBounds {
                    tensor: t.name.clone(),
                    start: t.offset,
                    end: t.offset.saturating_add(t.n_bytes),
                    data_len,
                });
            }
        }
        let mut order: Vec<usize> = (0..tensors.len()).collect();
        order.sort_by_key(|&i| (tensors[i].offset, tensors[i].n_bytes));
        for pair in order.windows(2) {
            let (a, b) = (&tensors[pair[0]], &tensors[pair[1]]);
            // Zero-sized tensors occupy no bytes and cannot overlap.
            if a.n_bytes > 0 && b.n_bytes > 0 && a.offset + a.n_bytes > b.offset {
                return Err(GgufError::Overlap {
                    first: a.name.clone(),
                    first_start: a.offset,
                    first_end: a.offset + a.n_bytes,
                    second: b.name.clone(),
                    second_start: b.offset,
                    second_end: b.offset + b.n_bytes,
                });
            }
        }

        Ok(GgufFile {
            backing: Arc::new(backing),
            header,
            metadata,
            meta_index,
            tensors,
            tensor_index,
            alignment,
            data_offset,
        })
    }

    /// The fixed header (version and counts).
    pub fn header(&self) -> GgufHeader {
        self.header
    }

    /// The alignment of the data section and of each tensor.
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Absolute offset of the data section in the file.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// Total size of the file in bytes.
    pub fn file_len(&self) -> u64 {
        self.backing.bytes().len() as u64
    }

    /// All metadata pairs, in file order.
    pub fn metadata_entries(&self) -> &[(String, MetaValue)] {
        &self.metadata
    }

    /// The value of a metadata key, if present.
    pub fn metadata(&self, key: &str) -> Option<&MetaValue> {
        self.meta_index.get(key).map(|&i| &self.metadata[i].1)
    }

    fn require(&self, key: &str) -> Result<&MetaValue, GgufError> {
        self.metadata(key).ok_or_else(|| GgufError::MissingKey {
            key: key.to_string(),
        })
    }

    fn mismatch(key: &str, expected: &str, found: &MetaValue) -> GgufError {
        GgufError::MetadataType {
            key: key.to_string(),
            expected: expected.to_string(),
            found: found.type_description(),
        }
    }

    /// An integer key as `u64` (any integer type whose value is non-negative).
    pub fn get_u64(&self, key: &str) -> Result<u64, GgufError> {
        let v = self.require(key)?;
        v.as_u64()
            .ok_or_else(|| Self::mismatch(key, "a non-negative integer", v))
    }

    /// An integer key as `u32` (any integer type whose value fits).
    pub fn get_u32(&self, key: &str) -> Result<u32, GgufError> {
        let v = self.require(key)?;
        v.as_u64()
            .and_then(|x| u32::try_from(x).ok())
            .ok_or_else(|| Self::mismatch(key, "an integer fitting UINT32", v))
    }

    /// An integer key as `usize` (any integer type whose value fits).
    pub fn get_usize(&self, key: &str) -> Result<usize, GgufError> {
        let v = self.require(key)?;
        v.as_u64()
            .and_then(|x| usize::try_from(x).ok())
            .ok_or_else(|| Self::mismatch(key, "a non-negative integer", v))
    }

    /// An integer key as `i64`.
    pub fn get_i64(&self, key: &str) -> Result<i64, GgufError> {
        let v = self.require(key)?;
        v.as_i64()
            .ok_or_else(|| Self::mismatch(key, "an integer", v))
    }

    /// A FLOAT32 (or FLOAT64) key as `f32`.
    pub fn get_f32(&self, key: &str) -> Result<f32, GgufError> {
        match self.require(key)? {
            MetaValue::F32(x) => Ok(*x),
            MetaValue::F64(x) => Ok(*x as f32),
            v => Err(Self::mismatch(key, "FLOAT32", v)),
        }
    }

    /// A BOOL key.
    pub fn get_bool(&self, key: &str) -> Result<bool, GgufError> {
        match self.require(key)? {
            MetaValue::Bool(b) => Ok(*b),
            v => Err(Self::mismatch(key, "BOOL", v)),
        }
    }

    /// A STRING key.
    pub fn get_str(&self, key: &str) -> Result<&str, GgufError> {
        let v = self.require(key)?;
        v.as_str().ok_or_else(|| Self::mismatch(key, "STRING", v))
    }

    /// An ARRAY of STRING key.
    pub fn get_str_array(&self, key: &str) -> Result<Vec<&str>, GgufError> {
        match self.require(key)? {
            MetaValue::Array {
                elem_type: MetaType::String,
                values,
            } => Ok(values.iter().filter_map(MetaValue::as_str).collect()),
            v => Err(Self::mismatch(key, "ARRAY of STRING", v)),
        }
    }

    /// An ARRAY of integers key as `i64`s.
    pub fn get_i64_array(&self, key: &str) -> Result<Vec<i64>, GgufError> {
        let v = self.require(key)?;
        match v {
            MetaValue::Array { values, .. } => values
                .iter()
                .map(|x| {
                    x.as_i64()
                        .ok_or_else(|| Self::mismatch(key, "ARRAY of integers", v))
                })
                .collect(),
            _ => Err(Self::mismatch(key, "ARRAY of integers", v)),
        }
    }

    /// An ARRAY of FLOAT32 key.
    pub fn get_f32_array(&self, key: &str) -> Result<Vec<f32>, GgufError> {
        let v = self.require(key)?;
        match v {
            MetaValue::Array {
                elem_type: MetaType::F32,
                values,
            } => Ok(values
                .iter()
                .filter_map(|x| match x {
                    MetaValue::F32(f) => Some(*f),
                    _ => None,
                })
                .collect()),
            _ => Err(Self::mismatch(key, "ARRAY of FLOAT32", v)),
        }
    }

    /// Every tensor's description, in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// One tensor's description.
    pub fn tensor_info(&self, name: &str) -> Result<&TensorInfo, GgufError> {
        self.tensor_index
            .get(name)
            .map(|&i| &self.tensors[i])
            .ok_or_else(|| GgufError::NoSuchTensor {
                tensor: name.to_string(),
            })
    }

    /// The raw bytes of a tensor (zero-copy view into the mapping).
    pub fn tensor_bytes(&self, name: &str) -> Result<&[u8], GgufError> {
        let info = self.tensor_info(name)?;
        // Bounds were checked when the file was opened.
        let start = (self.data_offset + info.offset) as usize;
        Ok(&self.backing.bytes()[start..start + info.n_bytes as usize])
    }

    /// A tensor as an engine [`Tensor`] in the file's dtype, with its
    /// row-major shape. Block-quantized data is read in place from the
    /// memory map (the tensor keeps the map alive); f32, f16 and bf16 data
    /// is copied once, since the file does not promise their alignment,
    /// and the copied pages of the map are dropped.
    pub fn tensor(&self, name: &str) -> Result<Tensor, GgufError> {
        let info = self.tensor_info(name)?;
        let bytes = self.tensor_bytes(name)?;
        let bad = |e: engine::EngineError| GgufError::BadTensor {
            tensor: name.to_string(),
            reason: e.to_string(),
        };
        // A copied tensor's pages of the map are not read again: drop
        // them, or the process would hold its weights twice.
        let start = (self.data_offset + info.offset) as usize;
        let copied = |t: Result<Tensor, GgufError>| {
            self.backing.release(start..start + bytes.len());
            t
        };
        match info.dtype {
            GgmlType::F32 => {
                let v = bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                copied(Tensor::from_vec(v, &info.shape).map_err(bad))
            }
            GgmlType::F16 => {
                let v = bytes
                    .chunks_exact(2)
                    .map(|c| half::f16::from_le_bytes([c[0], c[1]]))
                    .collect();
                copied(Tensor::from_f16(v, &info.shape).map_err(bad))
            }
            GgmlType::BF16 => {
                let v = bytes
                    .chunks_exact(2)
                    .map(|c| half::bf16::from_le_bytes([c[0], c[1]]))
                    .collect();
                copied(Tensor::from_bf16(v, &info.shape).map_err(bad))
            }
            q => {
                let dtype = match q {
                    GgmlType::Q8_0 => DType::Q8_0,
                    GgmlType::Q4_0 => DType::Q4_0,
                    GgmlType::Q5_0 => DType::Q5_0,
                    GgmlType::Q4_K => DType::Q4_K,
                    GgmlType::Q6_K => DType::Q6_K,
                    _ => DType::Q4_1,
                };
                let owner: Arc<dyn AsRef<[u8]> + Send + Sync> = self.backing.clone();
                let backing = self.backing.clone();
                let shared = Bytes::shared(owner, start..start + bytes.len())
                    .ok_or_else(|| GgufError::BadTensor {
                        tensor: name.to_string(),
                        reason: "data outside the file".into(),
                    })?
                    .with_release(move |r| backing.release(r));
                Tensor::from_quantized_bytes(dtype, shared, &info.shape).map_err(bad)
            }
        }
    }

    /// A tensor widened to f32 (the engine's dequantizers), with its
    /// row-major shape.
    pub fn tensor_f32(&self, name: &str) -> Result<(Vec<f32>, Vec<usize>), GgufError> {
        let t = self.tensor(name)?;
        let v = t.to_vec_f32().map_err(|e| GgufError::BadTensor {
            tensor: name.to_string(),
            reason: e.to_string(),
        })?;
        Ok((v, t.shape().to_vec()))
    }
}
