//! The GGUF reader against the `gguf` Python package's dequantization
//! (fixtures from `scripts/make_gguf_fixtures.py`).

use std::path::PathBuf;

use model::gguf::{GgmlType, GgufFile, MetaValue};
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/gguf")
        .join(name)
}

fn json(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(name)).unwrap()).unwrap()
}

#[test]
fn small_file_every_type_matches_gguf_dequantize() {
    let f = GgufFile::open(fixture("small.gguf")).unwrap();
    assert_eq!(f.get_u32("test.u32").unwrap(), 7);
    assert_eq!(f.get_f32("test.f32").unwrap(), 0.5);
    assert_eq!(f.get_str("test.str").unwrap(), "héllo");
    assert!(f.get_bool("test.bool").unwrap());
    assert_eq!(f.get_str_array("test.strs").unwrap(), vec!["a", "bb", ""]);
    assert_eq!(f.get_i64_array("test.ints").unwrap(), vec![1, -2, 3]);
    assert_eq!(f.get_str("general.architecture").unwrap(), "test");
    assert!(f.get_u32("test.str").is_err());

    let expected = json("small.json");
    let tensors = expected["tensors"].as_object().unwrap();
    assert_eq!(tensors.len(), 5);
    for (name, t) in tensors {
        let info = f.tensor_info(name).unwrap();
        assert_eq!(info.dtype.name(), t["type"].as_str().unwrap(), "{name}");
        let (values, shape) = f.tensor_f32(name).unwrap();
        let want_shape: Vec<usize> = t["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(shape, want_shape, "{name}");
        let want = t["values"].as_array().unwrap();
        assert_eq!(values.len(), want.len(), "{name}");
        for (i, (got, w)) in values.iter().zip(want).enumerate() {
            let w = w.as_f64().unwrap() as f32;
            // Tolerance: exact. Both sides compute d * q (+ m) in f32 from the same f16 fields.
            assert_eq!(
                *got,
                w,
                "{name}[{i}]: got {got}, gguf says {w}, diff {}",
                (got - w).abs()
            );
        }
    }
}

#[test]
fn real_smollm2_tensors_match_gguf_dequantize() {
    let path = model::model_path::find_default_model().unwrap_or_else(|e| panic!("{e}"));
    let f = GgufFile::open(&path).unwrap();
    let expected = json("smollm2.json");
    assert_eq!(f.data_offset(), expected["data_offset"].as_u64().unwrap());
    assert_eq!(
        f.tensors().len() as u64,
        expected["tensor_count"].as_u64().unwrap()
    );
    assert_eq!(f.get_str("general.architecture").unwrap(), "llama");
    assert_eq!(f.get_u32("llama.block_count").unwrap(), 30);
    assert_eq!(
        f.get_str_array("tokenizer.ggml.tokens").unwrap().len(),
        49152
    );
    assert!(
        matches!(f.metadata("tokenizer.ggml.token_type"), Some(MetaValue::Array { values, .. }) if values.len() == 49152)
    );

    let mut seen = std::collections::HashSet::new();
    for t in expected["tensors"].as_array().unwrap() {
        let name = t["name"].as_str().unwrap();
        let info = f.tensor_info(name).unwrap();
        seen.insert(info.dtype);
        assert_eq!(info.dtype.name(), t["type"].as_str().unwrap(), "{name}");
        let dims: Vec<u64> = t["dims"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(info.dims, dims, "{name}");
        assert_eq!(
            info.shape,
            dims.iter().rev().map(|&d| d as usize).collect::<Vec<_>>(),
            "{name}"
        );
        assert_eq!(info.n_bytes, t["n_bytes"].as_u64().unwrap(), "{name}");
        assert_eq!(info.offset, t["offset"].as_u64().unwrap(), "{name}");
        assert_eq!(f.tensor_bytes(name).unwrap().len() as u64, info.n_bytes);
        let (values, _) = f.tensor_f32(name).unwrap();
        for s in t["samples"].as_array().unwrap() {
            let (i, want) = (
                s[0].as_u64().unwrap() as usize,
                s[1].as_f64().unwrap() as f32,
            );
            // Tolerance: exact (same f32 arithmetic on the same f16 scales).
            assert_eq!(
                values[i], want,
                "{name}[{i}]: got {}, gguf says {want}",
                values[i]
            );
        }
        let sum: f64 = values.iter().map(|&v| f64::from(v)).sum();
        let abs_sum: f64 = values.iter().map(|&v| f64::from(v).abs()).sum();
        let (want_sum, want_abs) = (t["sum"].as_f64().unwrap(), t["abs_sum"].as_f64().unwrap());
        // Tolerance: 1e-9 relative to the absolute sum (summation order differs; values are identical).
        let tol = 1e-9 * want_abs.max(1.0);
        assert!(
            (sum - want_sum).abs() <= tol,
            "{name}: sum {sum} vs {want_sum} (diff {})",
            (sum - want_sum).abs()
        );
        assert!(
            (abs_sum - want_abs).abs() <= tol,
            "{name}: abs sum {abs_sum} vs {want_abs}"
        );
    }
    assert!(
        seen.contains(&GgmlType::Q8_0)
            && seen.contains(&GgmlType::Q4_1)
            && seen.contains(&GgmlType::F32)
    );
}

/// `bf16.gguf`: f32 values that are awkward to round (ties, subnormals,
/// NaNs with payloads, infinities, the largest floats) and `gguf.quants`'
/// BF16 of them. The reader gives gguf's bits, the engine rounds the f32
/// source to the same bits, and the writer writes them unchanged.
#[test]
fn bf16_file_matches_gguf_quants() {
    use engine::DType;
    use model::gguf::write::{tensor_bytes, write_gguf};

    let f = GgufFile::open(fixture("bf16.gguf")).unwrap();
    let info = f.tensor_info("bf16").unwrap();
    assert_eq!(info.dtype, GgmlType::BF16);
    assert_eq!(info.dtype.name(), "BF16");
    assert_eq!((info.shape.clone(), info.n_bytes), (vec![4, 64], 512));
    let want = f.tensor_bytes("bf16").unwrap();

    let read = f.tensor("bf16").unwrap();
    assert_eq!(read.dtype(), DType::BF16);
    assert_eq!(read.shape(), &[4, 64]);
    // Tolerance: exact, bit for bit (NaN payloads included).
    assert_eq!(tensor_bytes("bf16", &read).unwrap(), want, "read back");

    let source = f.tensor("source").unwrap();
    assert_eq!(source.dtype(), DType::F32);
    let ours = source.to_dtype(DType::BF16).unwrap();
    let got = tensor_bytes("bf16", &ours).unwrap();
    let (src, _) = f.tensor_f32("source").unwrap();
    for (i, (g, w)) in got.chunks(2).zip(want.chunks(2)).enumerate() {
        assert_eq!(
            g,
            w,
            "element {i}: f32 {:#010x} rounds to {g:02x?} here, {w:02x?} in gguf",
            src[i].to_bits()
        );
    }

    let mut buf = Vec::new();
    write_gguf(&mut buf, &[], &[("bf16".to_string(), ours)]).unwrap();
    let back = GgufFile::from_bytes(buf).unwrap();
    assert_eq!(back.tensor_info("bf16").unwrap().dtype, GgmlType::BF16);
    assert_eq!(back.tensor_bytes("bf16").unwrap(), want, "written");
}
