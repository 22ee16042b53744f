//! Converting every matrix of a GGUF file to one dtype (`infer quantize`).

use engine::{DType, Tensor};

use super::{GgufError, GgufFile, MetaValue};

/// llama.cpp's `general.file_type` for a file whose matrices are `dtype`
/// (`LLAMA_FTYPE_ALL_F32` = 0, `MOSTLY_F16` = 1, `MOSTLY_Q4_0` = 2,
/// `MOSTLY_Q4_1` = 3, `MOSTLY_Q8_0` = 7, `MOSTLY_Q5_0` = 8, `MOSTLY_Q4_K_S`
/// = 14, `MOSTLY_Q6_K` = 18, `MOSTLY_BF16` = 32); `None` for a dtype that
/// has no such number.
pub fn file_type(dtype: DType) -> Option<u32> {
    match dtype {
        DType::F32 => Some(0),
        DType::F16 => Some(1),
        DType::Q4_0 => Some(2),
        DType::Q4_1 => Some(3),
        DType::Q8_0 => Some(7),
        DType::Q5_0 => Some(8),
        DType::Q4_K => Some(14),
        DType::Q6_K => Some(18),
        DType::BF16 => Some(32),
    }
}

/// A GGUF file's contents in memory: metadata entries and named tensors.
pub type Contents = (Vec<(String, MetaValue)>, Vec<(String, Tensor)>);

/// Metadata and tensors of `g` with every matrix (rank ≥ 2) in `dtype` (or,
/// for a K-quant and rows that are not whole super-blocks, llama.cpp's
/// fallback, [`DType::for_row_len`]) and
/// every vector (norm weights) kept as it is, ready for
/// [`super::write::write_gguf`]. Quantized sources are dequantized first,
/// then quantized again (so requantizing adds the new format's error to
/// the old one's). `progress(done, total)` runs after each tensor.
///
/// # Errors
/// [`GgufError::BadTensor`] if a matrix cannot be converted (a row that is
/// not whole blocks, a non-finite weight).
pub fn requantize(
    g: &GgufFile,
    dtype: DType,
    mut progress: impl FnMut(usize, usize),
) -> Result<Contents, GgufError> {
    let ftype = file_type(dtype).ok_or_else(|| GgufError::BadTensor {
        tensor: "*".into(),
        reason: format!("cannot write {dtype} files"),
    })?;
    let mut meta: Vec<(String, MetaValue)> = g
        .metadata_entries()
        .iter()
        .filter(|(k, _)| k != "general.file_type")
        .cloned()
        .collect();
    meta.push(("general.file_type".into(), MetaValue::U32(ftype)));
    let total = g.tensors().len();
    let mut tensors = Vec::with_capacity(total);
    for (i, info) in g.tensors().iter().enumerate() {
        let t = g.tensor(&info.name)?;
        let t = if t.shape().len() >= 2 {
            let cols = t.shape().last().copied().unwrap_or(0);
            t.to_dtype(dtype.for_row_len(cols))
                .map_err(|e| GgufError::BadTensor {
                    tensor: info.name.clone(),
                    reason: e.to_string(),
                })?
        } else {
            t
        };
        tensors.push((info.name.clone(), t));
        progress(i + 1, total);
    }
    Ok((meta, tensors))
}
