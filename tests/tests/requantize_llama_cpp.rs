//! `infer quantize` writes the tensor bytes llama.cpp's `llama-quantize
//! --pure` writes, for every target format: the same block rounding, the
//! same K-quant scale search, the same fallback (Q5_0 / Q8_0) for SmolLM2's
//! 576-wide rows. The fixture holds, per tensor, llama.cpp's type, length,
//! byte sum and position-weighted byte sum (mod 2⁶⁴), made by
//! `scripts/make_requantize_fixtures.py`.

use engine::DType;
use integration_tests::{byte_fingerprint, heavy_lock, smollm2_path};
use model::gguf::requantize::requantize;
use model::gguf::write::{ggml_type_of, tensor_bytes};
use serde_json::Value;

#[test]
fn requantized_tensors_equal_llama_quantize() {
    let _g = heavy_lock();
    let fixture: Value =
        serde_json::from_str(include_str!("../fixtures/llama-cpp/requantize.json")).unwrap();
    let g = model::gguf::GgufFile::open(smollm2_path()).unwrap();
    for (name, dtype) in [
        ("q4_k", DType::Q4_K),
        ("q6_k", DType::Q6_K),
        ("q5_0", DType::Q5_0),
        ("q8_0", DType::Q8_0),
        ("q4_0", DType::Q4_0),
    ] {
        let want = &fixture[name];
        let (_, tensors) = requantize(&g, dtype, |_, _| {}).unwrap();
        assert_eq!(tensors.len(), want.as_object().unwrap().len(), "{name}");
        for (tname, t) in &tensors {
            let w = &want[tname.as_str()];
            let ty = ggml_type_of(t.dtype()).unwrap();
            assert_eq!(ty.name(), w["type"].as_str().unwrap(), "{name}: {tname}");
            let bytes = tensor_bytes(tname, t).unwrap();
            assert_eq!(
                bytes.len() as u64,
                w["len"].as_u64().unwrap(),
                "{name}: {tname}"
            );
            let (sum, weighted) = byte_fingerprint(&bytes);
            assert_eq!(
                (sum, weighted),
                (w["sum"].as_u64().unwrap(), w["weighted"].as_u64().unwrap()),
                "{name}: {tname} differs from llama-quantize's bytes"
            );
        }
    }
}
