//! Metadata key/value pairs: thirteen value types, arrays of any of them
//! (arrays of arrays included), read with every length checked first.

use super::GgufError;
use super::cursor::Cursor;
use super::header::check_count;

/// How deep arrays may nest before the file is rejected.
pub const MAX_ARRAY_NESTING: usize = 4;

/// The most array elements all metadata together may hold. Each element
/// becomes a [`MetaValue`] of a few dozen bytes, so without a cap a file of
/// one-byte elements would need ~32x its size in memory. Real files hold
/// far fewer (SmolLM2: about 150 thousand).
pub const MAX_METADATA_ELEMENTS: u64 = 1 << 24;

/// Initial capacity limit for vectors sized from file counts: they grow as
/// entries are actually read, so memory follows the bytes consumed.
pub(crate) const MAX_PREALLOC: u64 = 4096;

/// The value types of GGUF metadata, with their ids from the specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaType {
    /// id 0
    U8,
    /// id 1
    I8,
    /// id 2
    U16,
    /// id 3
    I16,
    /// id 4
    U32,
    /// id 5
    I32,
    /// id 6
    F32,
    /// id 7
    Bool,
    /// id 8
    String,
    /// id 9
    Array,
    /// id 10
    U64,
    /// id 11
    I64,
    /// id 12
    F64,
}

impl MetaType {
    /// The GGUF type id.
    pub fn id(self) -> u32 {
        use MetaType::*;
        match self {
            U8 => 0,
            I8 => 1,
            U16 => 2,
            I16 => 3,
            U32 => 4,
            I32 => 5,
            F32 => 6,
            Bool => 7,
            String => 8,
            Array => 9,
            U64 => 10,
            I64 => 11,
            F64 => 12,
        }
    }

    /// The type for a GGUF type id, if the id is defined.
    pub fn from_id(id: u32) -> Option<MetaType> {
        use MetaType::*;
        Some(match id {
            0 => U8,
            1 => I8,
            2 => U16,
            3 => I16,
            4 => U32,
            5 => I32,
            6 => F32,
            7 => Bool,
            8 => String,
            9 => Array,
            10 => U64,
            11 => I64,
            12 => F64,
            _ => return None,
        })
    }

    /// The fewest bytes a value of this type occupies in the file.
    fn min_bytes(self) -> u64 {
        use MetaType::*;
        match self {
            U8 | I8 | Bool => 1,
            U16 | I16 => 2,
            U32 | I32 | F32 => 4,
            U64 | I64 | F64 | String => 8,
            Array => 12,
        }
    }

    /// The type's name as the specification spells it.
    pub fn name(self) -> &'static str {
        use MetaType::*;
        match self {
            U8 => "UINT8",
            I8 => "INT8",
            U16 => "UINT16",
            I16 => "INT16",
            U32 => "UINT32",
            I32 => "INT32",
            F32 => "FLOAT32",
            Bool => "BOOL",
            String => "STRING",
            Array => "ARRAY",
            U64 => "UINT64",
            I64 => "INT64",
            F64 => "FLOAT64",
        }
    }
}

/// One metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    /// Unsigned 8-bit integer.
    U8(u8),
    /// Signed 8-bit integer.
    I8(i8),
    /// Unsigned 16-bit integer.
    U16(u16),
    /// Signed 16-bit integer.
    I16(i16),
    /// Unsigned 32-bit integer.
    U32(u32),
    /// Signed 32-bit integer.
    I32(i32),
    /// 32-bit float.
    F32(f32),
    /// Boolean (a byte that is 0 or 1).
    Bool(bool),
    /// UTF-8 string.
    String(String),
    /// Array of values of one type; the type is kept so empty arrays keep it.
    Array {
        /// Type of every element.
        elem_type: MetaType,
        /// The elements.
        values: Vec<MetaValue>,
    },
    /// Unsigned 64-bit integer.
    U64(u64),
    /// Signed 64-bit integer.
    I64(i64),
    /// 64-bit float.
    F64(f64),
}

impl MetaValue {
    /// The value's type.
    pub fn meta_type(&self) -> MetaType {
        match self {
            MetaValue::U8(_) => MetaType::U8,
            MetaValue::I8(_) => MetaType::I8,
            MetaValue::U16(_) => MetaType::U16,
            MetaValue::I16(_) => MetaType::I16,
            MetaValue::U32(_) => MetaType::U32,
            MetaValue::I32(_) => MetaType::I32,
            MetaValue::F32(_) => MetaType::F32,
            MetaValue::Bool(_) => MetaType::Bool,
            MetaValue::String(_) => MetaType::String,
            MetaValue::Array { .. } => MetaType::Array,
            MetaValue::U64(_) => MetaType::U64,
            MetaValue::I64(_) => MetaType::I64,
            MetaValue::F64(_) => MetaType::F64,
        }
    }

    /// A short description of the type, e.g. `UINT32` or `ARRAY of STRING`.
    pub fn type_description(&self) -> String {
        match self {
            MetaValue::Array { elem_type, .. } => format!("ARRAY of {}", elem_type.name()),
            other => other.meta_type().name().to_string(),
        }
    }

    /// The value as an unsigned 64-bit integer, if it is a non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            MetaValue::U8(v) => Some(v.into()),
            MetaValue::U16(v) => Some(v.into()),
            MetaValue::U32(v) => Some(v.into()),
            MetaValue::U64(v) => Some(v),
            MetaValue::I8(v) => u64::try_from(v).ok(),
            MetaValue::I16(v) => u64::try_from(v).ok(),
            MetaValue::I32(v) => u64::try_from(v).ok(),
            MetaValue::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as a signed 64-bit integer, if it is an integer that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            MetaValue::I8(v) => Some(v.into()),
            MetaValue::I16(v) => Some(v.into()),
            MetaValue::I32(v) => Some(v.into()),
            MetaValue::I64(v) => Some(v),
            _ => self.as_u64().and_then(|v| i64::try_from(v).ok()),
        }
    }

    /// The value as a string slice, if it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetaValue::String(s) => Some(s),
            _ => None,
        }
    }
}

/// Read one value of type `ty` for key `key`.
pub(crate) fn read_value(
    cur: &mut Cursor<'_>,
    key: &str,
    ty: MetaType,
    depth: usize,
    budget: &mut u64,
) -> Result<MetaValue, GgufError> {
    let what = || format!("value of metadata key {key:?}");
    Ok(match ty {
        MetaType::U8 => MetaValue::U8(cur.u8(&what)?),
        MetaType::I8 => MetaValue::I8(cur.u8(&what)? as i8),
        MetaType::U16 => MetaValue::U16(cur.u16(&what)?),
        MetaType::I16 => MetaValue::I16(cur.u16(&what)? as i16),
        MetaType::U32 => MetaValue::U32(cur.u32(&what)?),
        MetaType::I32 => MetaValue::I32(cur.u32(&what)? as i32),
        MetaType::F32 => MetaValue::F32(cur.f32(&what)?),
        MetaType::U64 => MetaValue::U64(cur.u64(&what)?),
        MetaType::I64 => MetaValue::I64(cur.u64(&what)? as i64),
        MetaType::F64 => MetaValue::F64(cur.f64(&what)?),
        MetaType::Bool => match cur.u8(&what)? {
            0 => MetaValue::Bool(false),
            1 => MetaValue::Bool(true),
            value => {
                return Err(GgufError::BadBool {
                    key: key.to_string(),
                    value,
                });
            }
        },
        MetaType::String => MetaValue::String(cur.string(&what)?),
        MetaType::Array => {
            if depth >= MAX_ARRAY_NESTING {
                return Err(GgufError::NestingTooDeep {
                    key: key.to_string(),
                    depth: depth + 1,
                    limit: MAX_ARRAY_NESTING,
                });
            }
            let type_id = cur.u32(&|| format!("array element type of metadata key {key:?}"))?;
            let elem_type =
                MetaType::from_id(type_id).ok_or_else(|| GgufError::UnknownValueType {
                    key: key.to_string(),
                    type_id,
                })?;
            let len = cur.u64(&|| format!("array length of metadata key {key:?}"))?;
            check_count(
                &format!("array length of metadata key {key:?}"),
                len,
                elem_type.min_bytes(),
                cur.remaining(),
            )?;
            if len > *budget {
                return Err(GgufError::CountTooLarge {
                    what: format!(
                        "array length of metadata key {key:?} (with the arrays before it)"
                    ),
                    count: len,
                    max: *budget,
                    remaining: cur.remaining(),
                });
            }
            *budget -= len;
            let mut values = Vec::with_capacity(len.min(MAX_PREALLOC) as usize);
            for _ in 0..len {
                values.push(read_value(cur, key, elem_type, depth + 1, budget)?);
            }
            MetaValue::Array { elem_type, values }
        }
    })
}

/// Read one key/value pair.
pub(crate) fn read_kv(
    cur: &mut Cursor<'_>,
    index: u64,
    budget: &mut u64,
) -> Result<(String, MetaValue), GgufError> {
    let key = cur.string(&|| format!("key of metadata pair {index}"))?;
    let type_id = cur.u32(&|| format!("value type of metadata key {key:?}"))?;
    let ty = MetaType::from_id(type_id).ok_or_else(|| GgufError::UnknownValueType {
        key: key.clone(),
        type_id,
    })?;
    let value = read_value(cur, &key, ty, 0, budget)?;
    Ok((key, value))
}
