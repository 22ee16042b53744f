//! safetensors: the reference file written by the `safetensors` package, and
//! hostile files built on purpose (each asserting its specific error).

use std::path::PathBuf;

use model::safetensors::{SafetensorsError, SafetensorsFile, StDtype};
use proptest::prelude::*;
use serde_json::{Value, json};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/gguf")
        .join(name)
}

#[test]
fn reference_file_matches_torch_values() {
    let f = SafetensorsFile::open(fixture("small.safetensors")).unwrap();
    assert_eq!(f.metadata().get("format").map(String::as_str), Some("pt"));
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("small_safetensors.json")).unwrap())
            .unwrap();
    let tensors = expected["tensors"].as_object().unwrap();
    assert_eq!(f.tensors().len(), tensors.len());
    for (name, t) in tensors {
        let (values, shape) = f.tensor_f32(name).unwrap();
        let want_shape: Vec<usize> = t["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(shape, want_shape, "{name}");
        let view = f.tensor_f32_view(name).unwrap();
        for (i, w) in t["values"].as_array().unwrap().iter().enumerate() {
            let w = w.as_f64().unwrap() as f32;
            // Tolerance: exact (f16/bf16 widen to f32 exactly).
            assert_eq!(
                values[i], w,
                "{name}[{i}]: got {}, torch says {w}",
                values[i]
            );
            assert_eq!(view[i], w, "{name}[{i}] (view)");
        }
    }
    assert_eq!(f.tensor_info("wbf").unwrap().dtype, StDtype::BF16);
    assert_eq!(f.tensor_info("w16").unwrap().dtype, StDtype::F16);
}

/// Build a file from a header value and a buffer length.
fn file(header: &Value, data_len: usize) -> Vec<u8> {
    let h = serde_json::to_vec(header).unwrap();
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    out.extend((0..data_len).map(|i| i as u8));
    out
}

fn valid_header() -> Value {
    json!({
        "__metadata__": {"format": "pt"},
        "a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
        "b": {"dtype": "F16", "shape": [3], "data_offsets": [16, 22]},
    })
}

fn open(header: &Value, data_len: usize) -> Result<SafetensorsFile, SafetensorsError> {
    SafetensorsFile::from_bytes(file(header, data_len))
}

#[test]
fn the_valid_file_opens() {
    let f = open(&valid_header(), 22).unwrap();
    assert_eq!(f.tensor_f32("a").unwrap().1, vec![2, 2]);
    assert_eq!(f.tensor_f32("b").unwrap().0.len(), 3);
}

#[test]
fn too_short_for_the_length_field() {
    assert!(matches!(
        SafetensorsFile::from_bytes(vec![1, 2, 3]),
        Err(SafetensorsError::TooShort { file_len: 3 })
    ));
}

#[test]
fn header_length_larger_than_file() {
    let mut bytes = file(&valid_header(), 22);
    let available = bytes.len() as u64 - 8;
    bytes[..8].copy_from_slice(&(available + 1).to_le_bytes());
    let err = SafetensorsFile::from_bytes(bytes).unwrap_err();
    assert!(
        matches!(err, SafetensorsError::HeaderTooLarge { header_len, available: a } if header_len == available + 1 && a == available)
    );
}

#[test]
fn header_length_u64_max() {
    let mut bytes = file(&valid_header(), 22);
    bytes[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(
        SafetensorsFile::from_bytes(bytes),
        Err(SafetensorsError::HeaderTooLarge {
            header_len: u64::MAX,
            ..
        })
    ));
}

#[test]
fn bad_json() {
    let mut bytes = b"{\"a\": [1, 2".to_vec();
    let mut out = (bytes.len() as u64).to_le_bytes().to_vec();
    out.append(&mut bytes);
    assert!(matches!(
        SafetensorsFile::from_bytes(out),
        Err(SafetensorsError::BadJson(_))
    ));
}

#[test]
fn header_not_an_object() {
    assert!(
        matches!(open(&json!([1, 2, 3]), 0), Err(SafetensorsError::BadHeader(m)) if m.contains("not a JSON object"))
    );
}

#[test]
fn missing_data_offsets() {
    let h = json!({"a": {"dtype": "F32", "shape": [1]}});
    assert!(
        matches!(open(&h, 4), Err(SafetensorsError::BadHeader(m)) if m.contains("\"a\"") && m.contains("data_offsets"))
    );
}

#[test]
fn negative_shape_entry() {
    let h = json!({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}});
    assert!(matches!(open(&h, 4), Err(SafetensorsError::BadHeader(m)) if m.contains("-1")));
}

#[test]
fn unsupported_dtype() {
    let h = json!({"a": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]}});
    assert!(
        matches!(open(&h, 8), Err(SafetensorsError::UnsupportedDtype { tensor, dtype }) if tensor == "a" && dtype == "I64")
    );
}

#[test]
fn dtype_size_mismatch() {
    // 3 F32 values need 12 bytes; the offsets give 6.
    let h = json!({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 6]}});
    let err = open(&h, 6).unwrap_err();
    assert!(
        matches!(&err, SafetensorsError::SizeMismatch { tensor, span: 6, expected: 12, .. } if tensor == "a"),
        "{err}"
    );
}

#[test]
fn shape_product_overflow() {
    let h = json!({"a": {"dtype": "F32", "shape": [u64::MAX, 2], "data_offsets": [0, 8]}});
    assert!(
        matches!(open(&h, 8), Err(SafetensorsError::ShapeOverflow { tensor, .. }) if tensor == "a")
    );
}

#[test]
fn data_offset_out_of_bounds() {
    let h = json!({"a": {"dtype": "F32", "shape": [4], "data_offsets": [100, 116]}});
    assert!(
        matches!(open(&h, 16), Err(SafetensorsError::OutOfBounds { tensor, begin: 100, end: 116, data_len: 16 }) if tensor == "a")
    );
}

#[test]
fn reversed_offsets() {
    let h = json!({"a": {"dtype": "F32", "shape": [0], "data_offsets": [8, 4]}});
    assert!(matches!(
        open(&h, 8),
        Err(SafetensorsError::OutOfBounds {
            begin: 8,
            end: 4,
            ..
        })
    ));
}

#[test]
fn overlapping_tensors() {
    let h = json!({
        "a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
        "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]},
    });
    let err = open(&h, 16).unwrap_err();
    assert!(
        matches!(&err, SafetensorsError::Overlap { first, second, .. } if first == "a" && second == "b"),
        "{err}"
    );
}

#[test]
fn hole_in_the_buffer() {
    let h = json!({
        "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
        "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]},
    });
    assert!(matches!(
        open(&h, 12),
        Err(SafetensorsError::Hole { from: 4, to: 8 })
    ));
    // Trailing bytes that no tensor claims.
    assert!(matches!(
        open(&valid_header(), 30),
        Err(SafetensorsError::Hole { from: 22, to: 30 })
    ));
}

#[test]
fn missing_tensor() {
    let f = open(&valid_header(), 22).unwrap();
    assert!(
        matches!(f.tensor_f32("zz"), Err(SafetensorsError::NoSuchTensor { tensor }) if tensor == "zz")
    );
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    let bytes = file(&valid_header(), 22);
    for len in 0..bytes.len() {
        assert!(
            SafetensorsFile::from_bytes(bytes[..len].to_vec()).is_err(),
            "cut at {len} opened"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn random_corruption_never_panics(edits in proptest::collection::vec((0usize..400, any::<u8>()), 1..6)) {
        let mut bytes = file(&valid_header(), 22);
        for (pos, byte) in edits {
            let n = bytes.len();
            bytes[pos % n] = byte;
        }
        if let Ok(f) = SafetensorsFile::from_bytes(bytes) {
            for t in f.tensors().to_vec() {
                prop_assert!(f.tensor_f32(&t.name).is_ok());
                prop_assert!(f.tensor_f32_view(&t.name).is_ok());
            }
        }
    }
}
