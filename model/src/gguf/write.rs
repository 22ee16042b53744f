//! Writing GGUF v3 files: metadata and tensors in any dtype the engine
//! holds, laid out as llama.cpp reads them (every tensor aligned to
//! `general.alignment`, 32 by default).

use std::io::Write;

use engine::{DType, Tensor};

use super::{DEFAULT_ALIGNMENT, GgmlType, GgufError, MetaValue};

/// GGML's type for an engine dtype (`None` for one GGUF cannot store here).
pub fn ggml_type_of(dtype: DType) -> Option<GgmlType> {
    match dtype {
        DType::F32 => Some(GgmlType::F32),
        DType::F16 => Some(GgmlType::F16),
        DType::Q8_0 => Some(GgmlType::Q8_0),
        DType::Q4_0 => Some(GgmlType::Q4_0),
        DType::Q4_1 => Some(GgmlType::Q4_1),
        DType::Q5_0 => Some(GgmlType::Q5_0),
        DType::Q4_K => Some(GgmlType::Q4_K),
        DType::Q6_K => Some(GgmlType::Q6_K),
        DType::BF16 => Some(GgmlType::BF16),
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_value(out: &mut Vec<u8>, v: &MetaValue) {
    match v {
        MetaValue::U8(x) => out.push(*x),
        MetaValue::I8(x) => out.push(*x as u8),
        MetaValue::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::Bool(x) => out.push(u8::from(*x)),
        MetaValue::String(s) => put_str(out, s),
        MetaValue::Array { elem_type, values } => {
            out.extend_from_slice(&elem_type.id().to_le_bytes());
            out.extend_from_slice(&(values.len() as u64).to_le_bytes());
            for x in values {
                put_value(out, x);
            }
        }
        MetaValue::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
    }
}

/// The bytes of a tensor as GGUF stores them (little-endian f32, f16 or
/// bf16, or the blocks as they are).
///
/// # Errors
/// [`GgufError::BadTensor`] when the tensor cannot be brought back to the
/// CPU as one contiguous run of elements.
pub fn tensor_bytes(name: &str, t: &Tensor) -> Result<Vec<u8>, GgufError> {
    let bad = |reason: String| GgufError::BadTensor {
        tensor: name.to_string(),
        reason,
    };
    let t = t
        .to_device(&engine::Device::Cpu)
        .and_then(|t| t.ungrouped().contiguous())
        .map_err(|e| bad(e.to_string()))?;
    Ok(match t.storage() {
        engine::tensor::Storage::F32(v) => {
            let v = &v[t.offset()..t.offset() + t.numel()];
            v.iter().flat_map(|x| x.to_le_bytes()).collect()
        }
        engine::tensor::Storage::F16(v) => {
            let v = &v[t.offset()..t.offset() + t.numel()];
            v.iter().flat_map(|x| x.to_le_bytes()).collect()
        }
        engine::tensor::Storage::BF16(v) => {
            let v = &v[t.offset()..t.offset() + t.numel()];
            v.iter().flat_map(|x| x.to_le_bytes()).collect()
        }
        engine::tensor::Storage::Quantized { dtype, bytes } => {
            let start = t.offset() / dtype.block_len() * dtype.unit_bytes();
            let len = dtype.bytes_for(t.numel()).unwrap_or(0);
            bytes[start..start + len].to_vec()
        }
        _ => {
            return Err(bad(
                "regrouped or device rows left after copying them back".into()
            ));
        }
    })
}

// ANCHOR: write_gguf
/// Write a GGUF v3 file: `metadata` in order, then the tensors, each
/// aligned to `general.alignment` (taken from `metadata`, else 32). Shapes
/// are row-major (`[rows, cols]`); GGUF stores them reversed.
///
/// # Errors
/// [`GgufError::BadTensor`] for a dtype GGUF cannot hold here,
/// [`GgufError::Io`] when writing fails.
pub fn write_gguf(
    out: &mut impl Write,
    metadata: &[(String, MetaValue)],
    tensors: &[(String, Tensor)],
) -> Result<(), GgufError> {
    let alignment = metadata
        .iter()
        .find(|(k, _)| k == "general.alignment")
        .and_then(|(_, v)| match v {
            MetaValue::U32(a) => Some(u64::from(*a)),
            _ => None,
        })
        .unwrap_or(DEFAULT_ALIGNMENT);
    let mut head = Vec::new();
    head.extend_from_slice(b"GGUF");
    head.extend_from_slice(&3u32.to_le_bytes());
    head.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    head.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
    for (k, v) in metadata {
        put_str(&mut head, k);
        head.extend_from_slice(&v.meta_type().id().to_le_bytes());
        put_value(&mut head, v);
    }
    let mut data: Vec<u8> = Vec::new();
    for (name, t) in tensors {
        let ty = ggml_type_of(t.dtype()).ok_or_else(|| GgufError::BadTensor {
            tensor: name.clone(),
            reason: format!("dtype {} cannot be written to GGUF", t.dtype()),
        })?;
        let pad = (alignment - data.len() as u64 % alignment) % alignment;
        data.resize(data.len() + pad as usize, 0);
        put_str(&mut head, name);
        head.extend_from_slice(&(t.shape().len() as u32).to_le_bytes());
        for d in t.shape().iter().rev() {
            head.extend_from_slice(&(*d as u64).to_le_bytes());
        }
        head.extend_from_slice(&ty.id().to_le_bytes());
        head.extend_from_slice(&(data.len() as u64).to_le_bytes());
        data.extend_from_slice(&tensor_bytes(name, t)?);
    }
    let pad = (alignment - head.len() as u64 % alignment) % alignment;
    head.resize(head.len() + pad as usize, 0);
    let io = |cause| GgufError::Io {
        path: "output".to_string(),
        cause,
    };
    out.write_all(&head).map_err(io)?;
    out.write_all(&data).map_err(io)?;
    Ok(())
}
// ANCHOR_END: write_gguf
