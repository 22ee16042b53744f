//! The GGUF writer and the block formats against the real SmolLM2 file:
//! blocks written by llama.cpp's quantizer survive dequantize → quantize
//! byte for byte, a file written here reads back identically, and bf16
//! tensors are written with ggml's rounding.

use engine::{DType, Tensor};
use model::gguf::requantize::{file_type, requantize};
use model::gguf::write::write_gguf;
use model::gguf::{GgmlType, GgufFile, MetaValue};
use proptest::prelude::*;

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
        DType::BF16,
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
    assert_eq!(file_type(DType::BF16), Some(32), "LLAMA_FTYPE_MOSTLY_BF16");
}

/// ggml's `ggml_compute_fp32_to_bf16`, by its rule: a NaN keeps its top
/// 16 bits and is made quiet; anything else rounds to nearest, ties to
/// even, on the bits (subnormals are not flushed; a float above bf16's
/// largest rounds to infinity).
fn ggml_bf16(x: f32) -> u16 {
    let u = x.to_bits();
    if u & 0x7fff_ffff > 0x7f80_0000 {
        return ((u >> 16) | 64) as u16;
    }
    (u.wrapping_add(0x7fff + ((u >> 16) & 1)) >> 16) as u16
}

/// A bf16 tensor written from f32 `bits` and read back: its bytes in the
/// file, and its values as the reader widens them.
fn bf16_through_a_file(bits: &[u32]) -> (Vec<u8>, Vec<f32>) {
    let x: Vec<f32> = bits.iter().map(|&b| f32::from_bits(b)).collect();
    let t = Tensor::from_vec(x, &[1, bits.len()])
        .unwrap()
        .to_dtype(DType::BF16)
        .unwrap();
    let mut buf = Vec::new();
    write_gguf(&mut buf, &[], &[("w".to_string(), t)]).unwrap();
    let back = GgufFile::from_bytes(buf).unwrap();
    assert_eq!(back.tensor_info("w").unwrap().dtype, GgmlType::BF16);
    assert_eq!(back.tensor("w").unwrap().dtype(), DType::BF16);
    let bytes = back.tensor_bytes("w").unwrap().to_vec();
    (bytes, back.tensor_f32("w").unwrap().0)
}

fn check_bf16_bits(bits: &[u32]) {
    let (bytes, widened) = bf16_through_a_file(bits);
    assert_eq!(bytes.len(), 2 * bits.len());
    for (i, &b) in bits.iter().enumerate() {
        let got = u16::from_le_bytes([bytes[2 * i], bytes[2 * i + 1]]);
        let want = ggml_bf16(f32::from_bits(b));
        assert_eq!(
            got, want,
            "f32 {b:#010x}: wrote bf16 {got:#06x}, ggml gives {want:#06x}"
        );
        // Widening is exact: the bf16 bits become the top half of the f32.
        assert_eq!(widened[i].to_bits(), u32::from(want) << 16, "{b:#010x}");
    }
}

/// Rounding ties, values just off a tie, subnormals, NaNs with payloads,
/// infinities and the largest floats: the bytes in the file are ggml's.
#[test]
fn bf16_tensors_are_written_with_ggml_rounding() {
    check_bf16_bits(&[
        0x3f80_0000, // 1.0
        0x3f80_8000, // tie, even below: 1.0
        0x3f81_8000, // tie, odd below: up
        0x3f80_8001, // just above a tie: up
        0x3f81_7fff, // just below a tie: down
        0xbf80_8000, // negative tie
        0x0000_0000,
        0x8000_0000, // -0.0
        0x0000_0001, // smallest subnormal: to +0
        0x0000_8000, // subnormal tie: to +0
        0x0001_8000, // subnormal tie, odd below: up
        0x007f_ffff, // largest subnormal: up to the smallest normal
        0x807f_ffff,
        0x7f7f_ffff, // f32::MAX: to infinity
        0xff7f_ffff,
        0x7f7f_8000, // tie at bf16's largest, odd: to infinity
        0x7f7f_7fff, // just below: bf16's largest
        0x7f80_0000, // +inf
        0xff80_0000, // -inf
        0x7fc0_0000, // quiet NaN
        0xffc0_0000,
        0x7f80_0001, // signalling NaN: its top half would be inf, quietened
        0xff80_0001,
        0x7fa1_2345, // a payload
        0x7fff_ffff, // all-ones payload: not rounded into the sign
    ]);
}

proptest! {
    /// Any f32 bits, NaNs and infinities included, round as ggml does.
    #[test]
    fn bf16_of_any_bits_is_ggml_rounding(bits in prop::collection::vec(any::<u32>(), 1..64)) {
        check_bf16_bits(&bits);
    }
}
