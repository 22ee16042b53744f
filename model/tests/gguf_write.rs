//! The GGUF writer and the block formats against the real SmolLM2 file:
//! blocks written by llama.cpp's quantizer survive dequantize → quantize
//! byte for byte, and a file written here reads back identically.

use engine::{DType, Tensor};
use model::gguf::requantize::requantize;
use model::gguf::write::write_gguf;
use model::gguf::{GgufFile, MetaValue};

fn smollm2() -> GgufFile {
    let path = model::model_path::find_default_model()
        .unwrap_or_else(|e| panic!("SmolLM2 is needed (scripts/fetch-model.sh): {e}"));
    GgufFile::open(path).unwrap()
}

fn bytes_of(t: &Tensor) -> Vec<u8> {
    match t.storage() {
        engine::tensor::Storage::Quantized { bytes, .. } => bytes.to_vec(),
        other => panic!("not quantized: {:?}", other.dtype()),
    }
}

/// Re-quantizing the file's own blocks (widened to f32) gives the same
/// bytes, every one of them: our rounding rules are ggml's.
#[test]
fn file_blocks_survive_dequantize_and_requantize() {
    let g = smollm2();
    for name in [
        "token_embd.weight",
        "blk.0.attn_q.weight",
        "blk.7.ffn_down.weight",
        "blk.29.ffn_up.weight",
    ] {
        let t = g.tensor(name).unwrap();
        let again = t.to_dtype(DType::F32).unwrap().to_dtype(t.dtype()).unwrap();
        let (a, b) = (bytes_of(&t), bytes_of(&again));
        let unit = t.dtype().unit_bytes();
        let blocks = a.len() / unit;
        let differ = a
            .chunks(unit)
            .zip(b.chunks(unit))
            .filter(|(x, y)| x != y)
            .count();
        eprintln!(
            "{name} ({}): {differ} of {blocks} blocks differ after the round trip",
            t.dtype()
        );
        assert_eq!(differ, 0, "{name}: {differ} of {blocks} blocks differ");
    }
}

#[test]
fn a_written_file_reads_back_identically() {
    let g = smollm2();
    // A few tensors in every dtype the writer produces, plus all metadata.
    let names = [
        "token_embd.weight",
        "blk.0.attn_norm.weight",
        "blk.0.attn_k.weight",
        // 1536 wide: whole 256-value super-blocks for the K-quants (the
        // 576-wide matrices fall back to Q5_0 / Q8_0).
        "blk.0.ffn_down.weight",
    ];
    for dtype in [
        DType::F32,
        DType::F16,
        DType::Q8_0,
        DType::Q4_0,
        DType::Q4_1,
        DType::Q5_0,
        DType::Q4_K,
        DType::Q6_K,
    ] {
        let tensors: Vec<(String, Tensor)> = names
            .iter()
            .map(|n| {
                let t = g.tensor(n).unwrap();
                let t = if t.shape().len() == 2 {
                    t.to_dtype(dtype.for_row_len(t.shape()[1])).unwrap()
                } else {
                    t
                };
                (n.to_string(), t)
            })
            .collect();
        let mut meta = g.metadata_entries().to_vec();
        meta.push(("test.dtype".into(), MetaValue::String(dtype.to_string())));
        let mut buf = Vec::new();
        write_gguf(&mut buf, &meta, &tensors).unwrap();
        let back = GgufFile::from_bytes(buf).unwrap();
        assert_eq!(back.metadata_entries(), &meta[..], "{dtype}: metadata");
        for (name, t) in &tensors {
            let r = back.tensor(name).unwrap();
            assert_eq!(r.dtype(), t.dtype(), "{dtype}: {name} dtype");
            assert_eq!(r.shape(), t.shape(), "{dtype}: {name} shape");
            assert_eq!(r.storage(), t.storage(), "{dtype}: {name} contents");
        }
    }
}

#[test]
fn requantize_converts_matrices_and_keeps_vectors() {
    let g = smollm2();
    let (meta, tensors) = requantize(&g, DType::Q8_0, |_, _| {}).unwrap();
    assert_eq!(tensors.len(), g.tensors().len());
    for (name, t) in &tensors {
        let want = if t.shape().len() == 2 {
            DType::Q8_0
        } else {
            DType::F32
        };
        assert_eq!(t.dtype(), want, "{name}");
    }
    let ftype = meta
        .iter()
        .find(|(k, _)| k == "general.file_type")
        .map(|(_, v)| v.clone());
    assert_eq!(ftype, Some(MetaValue::U32(7)), "LLAMA_FTYPE_MOSTLY_Q8_0");
    assert!(requantize(&g, DType::BF16, |_, _| {}).is_err());
}
