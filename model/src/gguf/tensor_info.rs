//! Tensor infos: name, dimensions, GGML type and data offset, plus the
//! GGML types this reader decodes and their block geometry.

use super::GgufError;
use super::cursor::Cursor;

/// The largest number of dimensions GGML supports.
pub const MAX_DIMS: u32 = 4;

/// The tensor element types this reader decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GgmlType {
    /// 32-bit float (id 0).
    F32,
    /// IEEE half float (id 1).
    F16,
    /// bfloat16: f32's sign and exponent with a 7-bit mantissa, the top
    /// half of an f32 (id 30).
    BF16,
    /// Blocks of 32: f16 scale `d`, 16 bytes of nibbles; `x = (q - 8) * d` (id 2).
    Q4_0,
    /// Blocks of 32: f16 scale `d`, f16 minimum `m`, 16 bytes of nibbles; `x = q * d + m` (id 3).
    Q4_1,
    /// Blocks of 32: f16 scale `d`, 32 signed bytes; `x = q * d` (id 8).
    Q8_0,
    /// Blocks of 32: f16 scale `d`, 4 bytes of fifth bits, 16 bytes of
    /// nibbles; `x = (q - 16) * d` (id 6).
    Q5_0,
    /// Super-blocks of 256 in 8 sub-blocks with 6-bit scales and minimums
    /// (id 12).
    #[allow(non_camel_case_types)] // ggml's name
    Q4_K,
    /// Super-blocks of 256 in 16 sub-blocks with 8-bit scales, 6-bit codes
    /// (id 14).
    #[allow(non_camel_case_types)] // ggml's name
    Q6_K,
}

/// Names of every GGML type id, so unsupported ones can be named in errors.
const GGML_TYPE_NAMES: [(u32, &str); 36] = [
    (0, "F32"),
    (1, "F16"),
    (2, "Q4_0"),
    (3, "Q4_1"),
    (4, "Q4_2"),
    (5, "Q4_3"),
    (6, "Q5_0"),
    (7, "Q5_1"),
    (8, "Q8_0"),
    (9, "Q8_1"),
    (10, "Q2_K"),
    (11, "Q3_K"),
    (12, "Q4_K"),
    (13, "Q5_K"),
    (14, "Q6_K"),
    (15, "Q8_K"),
    (16, "IQ2_XXS"),
    (17, "IQ2_XS"),
    (18, "IQ3_XXS"),
    (19, "IQ1_S"),
    (20, "IQ4_NL"),
    (21, "IQ3_S"),
    (22, "IQ2_S"),
    (23, "IQ4_XS"),
    (24, "I8"),
    (25, "I16"),
    (26, "I32"),
    (27, "I64"),
    (28, "F64"),
    (29, "IQ1_M"),
    (30, "BF16"),
    (31, "Q4_0_4_4"),
    (32, "Q4_0_4_8"),
    (33, "Q4_0_8_8"),
    (34, "TQ1_0"),
    (35, "TQ2_0"),
];

impl GgmlType {
    /// The GGML type id.
    pub fn id(self) -> u32 {
        match self {
            GgmlType::F32 => 0,
            GgmlType::F16 => 1,
            GgmlType::BF16 => 30,
            GgmlType::Q4_0 => 2,
            GgmlType::Q4_1 => 3,
            GgmlType::Q8_0 => 8,
            GgmlType::Q5_0 => 6,
            GgmlType::Q4_K => 12,
            GgmlType::Q6_K => 14,
        }
    }

    /// The name GGML uses for the type.
    pub fn name(self) -> &'static str {
        match self {
            GgmlType::F32 => "F32",
            GgmlType::F16 => "F16",
            GgmlType::BF16 => "BF16",
            GgmlType::Q4_0 => "Q4_0",
            GgmlType::Q4_1 => "Q4_1",
            GgmlType::Q8_0 => "Q8_0",
            GgmlType::Q5_0 => "Q5_0",
            GgmlType::Q4_K => "Q4_K",
            GgmlType::Q6_K => "Q6_K",
        }
    }

    /// Elements per block (1 for plain floats).
    pub fn block_size(self) -> u64 {
        match self {
            GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => 1,
            GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q8_0 | GgmlType::Q5_0 => 32,
            GgmlType::Q4_K | GgmlType::Q6_K => 256,
        }
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> u64 {
        match self {
            GgmlType::F32 => 4,
            GgmlType::F16 | GgmlType::BF16 => 2,
            GgmlType::Q4_0 => 18,
            GgmlType::Q4_1 => 20,
            GgmlType::Q8_0 => 34,
            GgmlType::Q5_0 => 22,
            GgmlType::Q4_K => 144,
            GgmlType::Q6_K => 210,
        }
    }

    /// The supported type for `id`, or an error naming the type (and `tensor`).
    pub fn from_id(id: u32, tensor: &str) -> Result<GgmlType, GgufError> {
        Ok(match id {
            0 => GgmlType::F32,
            1 => GgmlType::F16,
            30 => GgmlType::BF16,
            2 => GgmlType::Q4_0,
            3 => GgmlType::Q4_1,
            8 => GgmlType::Q8_0,
            6 => GgmlType::Q5_0,
            12 => GgmlType::Q4_K,
            14 => GgmlType::Q6_K,
            _ => {
                return Err(match GGML_TYPE_NAMES.iter().find(|(i, _)| *i == id) {
                    Some(&(_, type_name)) => GgufError::UnsupportedTensorType {
                        tensor: tensor.to_string(),
                        type_name,
                        type_id: id,
                    },
                    None => GgufError::UnknownTensorType {
                        tensor: tensor.to_string(),
                        type_id: id,
                    },
                });
            }
        })
    }
}

/// One tensor's description from the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// The tensor's name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// Dimensions as stored in the file: `dims[0]` is the fastest-varying (GGML's `ne`).
    pub dims: Vec<u64>,
    /// The row-major shape: `dims` reversed, e.g. `[rows, cols]` for a matrix.
    pub shape: Vec<usize>,
    /// Element type.
    pub dtype: GgmlType,
    /// Offset of the first byte, relative to the start of the data section.
    pub offset: u64,
    /// Number of elements.
    pub n_elements: u64,
    /// Number of bytes the data occupies.
    pub n_bytes: u64,
}

/// Read one tensor info and compute its element count and byte size with
/// overflow checks.
pub(crate) fn read_tensor_info(cur: &mut Cursor<'_>, index: u64) -> Result<TensorInfo, GgufError> {
    let name = cur.string(&|| format!("name of tensor {index}"))?;
    let n_dims = cur.u32(&|| format!("dimension count of tensor {name:?}"))?;
    if n_dims == 0 || n_dims > MAX_DIMS {
        return Err(GgufError::BadDimCount {
            tensor: name,
            n_dims,
        });
    }
    let mut dims = Vec::with_capacity(n_dims as usize);
    for d in 0..n_dims {
        dims.push(cur.u64(&|| format!("dimension {d} of tensor {name:?}"))?);
    }
    let type_id = cur.u32(&|| format!("type of tensor {name:?}"))?;
    let offset = cur.u64(&|| format!("data offset of tensor {name:?}"))?;
    let dtype = GgmlType::from_id(type_id, &name)?;

    let overflow = || GgufError::ShapeOverflow {
        tensor: name.clone(),
        dims: dims.clone(),
    };
    let mut n_elements: u64 = 1;
    for &d in &dims {
        n_elements = n_elements.checked_mul(d).ok_or_else(overflow)?;
    }
    // Every dimension must also fit a usize on this machine for the shape.
    let shape = dims
        .iter()
        .rev()
        .map(|&d| usize::try_from(d).map_err(|_| overflow()))
        .collect::<Result<Vec<_>, _>>()?;
    let block = dtype.block_size();
    if !dims[0].is_multiple_of(block) {
        return Err(GgufError::NotWholeBlocks {
            tensor: name,
            ne0: dims[0],
            type_name: dtype.name(),
            block,
        });
    }
    let n_bytes = (n_elements / block)
        .checked_mul(dtype.block_bytes())
        .ok_or_else(overflow)?;
    if usize::try_from(n_elements).is_err() || usize::try_from(n_bytes).is_err() {
        return Err(overflow());
    }
    Ok(TensorInfo {
        name,
        dims,
        shape,
        dtype,
        offset,
        n_elements,
        n_bytes,
    })
}
