//! Hostile GGUF files built on purpose: each corruption must be reported as
//! the specific error naming the key or tensor and the numbers, never a panic.

use model::gguf::{GgufError, GgufFile};
use proptest::prelude::*;

/// A minimal GGUF writer for building good and bad files.
#[derive(Clone)]
struct Builder {
    magic: [u8; 4],
    version: u32,
    /// Overrides for the counts in the header.
    kv_count: Option<u64>,
    tensor_count: Option<u64>,
    kvs: Vec<Vec<u8>>,
    tensors: Vec<Vec<u8>>,
    alignment: usize,
    data: Vec<u8>,
}

fn gguf_string(s: &[u8]) -> Vec<u8> {
    let mut v = (s.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(s);
    v
}

impl Builder {
    fn new() -> Self {
        Builder {
            magic: *b"GGUF",
            version: 3,
            kv_count: None,
            tensor_count: None,
            kvs: vec![],
            tensors: vec![],
            alignment: 32,
            data: vec![],
        }
    }

    /// A raw key/value: key, type id, payload bytes.
    fn kv_raw(mut self, key: &[u8], ty: u32, payload: &[u8]) -> Self {
        let mut v = gguf_string(key);
        v.extend(ty.to_le_bytes());
        v.extend_from_slice(payload);
        self.kvs.push(v);
        self
    }

    fn kv_u32(self, key: &str, x: u32) -> Self {
        self.kv_raw(key.as_bytes(), 4, &x.to_le_bytes())
    }

    fn kv_str(self, key: &str, s: &str) -> Self {
        self.kv_raw(key.as_bytes(), 8, &gguf_string(s.as_bytes()))
    }

    /// A raw tensor info: name, dims, type id, offset.
    fn tensor(mut self, name: &str, dims: &[u64], ty: u32, offset: u64) -> Self {
        let mut v = gguf_string(name.as_bytes());
        v.extend((dims.len() as u32).to_le_bytes());
        for d in dims {
            v.extend(d.to_le_bytes());
        }
        v.extend(ty.to_le_bytes());
        v.extend(offset.to_le_bytes());
        self.tensors.push(v);
        self
    }

    fn data(mut self, n: usize) -> Self {
        self.data = (0..n).map(|i| (i % 251) as u8).collect();
        self
    }

    fn build(&self) -> Vec<u8> {
        let mut out = self.magic.to_vec();
        out.extend(self.version.to_le_bytes());
        out.extend(
            self.tensor_count
                .unwrap_or(self.tensors.len() as u64)
                .to_le_bytes(),
        );
        out.extend(self.kv_count.unwrap_or(self.kvs.len() as u64).to_le_bytes());
        for kv in &self.kvs {
            out.extend(kv);
        }
        for t in &self.tensors {
            out.extend(t);
        }
        while !out.len().is_multiple_of(self.alignment) {
            out.push(0);
        }
        out.extend(&self.data);
        out
    }
}

/// A valid file: two F32 tensors of 4 and 8 elements, one Q8_0 row.
fn valid() -> Builder {
    Builder::new()
        .kv_str("general.architecture", "test")
        .kv_u32("test.n", 5)
        .tensor("a", &[4], 0, 0)
        .tensor("b", &[2, 4], 0, 32)
        .tensor("q", &[32], 8, 64)
        .data(64 + 34)
}

fn open(b: &Builder) -> Result<GgufFile, GgufError> {
    GgufFile::from_bytes(b.build())
}

#[test]
fn the_valid_file_opens() {
    let f = open(&valid()).unwrap();
    assert_eq!(f.tensors().len(), 3);
    assert_eq!(f.tensor_info("b").unwrap().shape, vec![4, 2]);
    assert_eq!(f.tensor_f32("q").unwrap().0.len(), 32);
    // Through the memory-mapped path too.
    let dir = std::env::temp_dir().join(format!("gguf-corruption-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("valid.gguf");
    std::fs::write(&path, valid().build()).unwrap();
    assert_eq!(GgufFile::open(&path).unwrap().get_u32("test.n").unwrap(), 5);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn missing_file_is_an_io_error_naming_the_path() {
    let err = GgufFile::open("/nonexistent/dir/x.gguf").unwrap_err();
    assert!(
        matches!(&err, GgufError::Io { path, .. } if path.contains("x.gguf")),
        "{err}"
    );
}

#[test]
fn truncated_header() {
    let bytes = valid().build()[..10].to_vec();
    let err = GgufFile::from_bytes(bytes).unwrap_err();
    assert!(
        matches!(
            &err,
            GgufError::Truncated {
                offset: 8,
                end: 16,
                file_len: 10,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("tensor count"), "{err}");
}

#[test]
fn bad_magic() {
    let mut b = valid();
    b.magic = *b"GGML";
    assert!(matches!(open(&b), Err(GgufError::BadMagic { found }) if &found == b"GGML"));
}

#[test]
fn wrong_version() {
    let mut b = valid();
    b.version = 2;
    assert!(matches!(
        open(&b),
        Err(GgufError::UnsupportedVersion { found: 2 })
    ));
}

#[test]
fn huge_tensor_count() {
    let mut b = valid();
    b.tensor_count = Some(u64::MAX / 2);
    let err = open(&b).unwrap_err();
    assert!(
        matches!(&err, GgufError::CountTooLarge { what, count, .. } if what == "tensor count" && *count == u64::MAX / 2),
        "{err}"
    );
}

#[test]
fn huge_kv_count() {
    let mut b = valid();
    b.kv_count = Some(1 << 40);
    let err = open(&b).unwrap_err();
    assert!(
        matches!(&err, GgufError::CountTooLarge { what, count, .. } if what == "key/value count" && *count == 1 << 40),
        "{err}"
    );
}

#[test]
fn string_length_past_eof() {
    // A string value claiming 1 GB.
    let mut payload = (1u64 << 30).to_le_bytes().to_vec();
    payload.extend(b"short");
    let b = Builder::new().kv_raw(b"general.name", 8, &payload);
    let err = open(&b).unwrap_err();
    assert!(
        matches!(&err, GgufError::Truncated { what, end, .. } if what.contains("general.name") && *end > 1 << 30),
        "{err}"
    );
}

#[test]
fn invalid_utf8_key() {
    let b = Builder::new().kv_raw(&[0xff, 0xfe, b'k'], 4, &1u32.to_le_bytes());
    let err = open(&b).unwrap_err();
    assert!(
        matches!(&err, GgufError::InvalidUtf8 { what } if what.contains("metadata pair 0")),
        "{err}"
    );
}

#[test]
fn unknown_metadata_value_type() {
    let b = Builder::new().kv_raw(b"weird", 13, &[0; 8]);
    assert!(
        matches!(open(&b), Err(GgufError::UnknownValueType { key, type_id: 13 }) if key == "weird")
    );
}

#[test]
fn bad_bool_byte() {
    let b = Builder::new().kv_raw(b"flag", 7, &[2]);
    assert!(matches!(open(&b), Err(GgufError::BadBool { key, value: 2 }) if key == "flag"));
}

#[test]
fn huge_array_length() {
    let mut payload = 4u32.to_le_bytes().to_vec(); // UINT32 elements
    payload.extend((1u64 << 50).to_le_bytes());
    let b = Builder::new().kv_raw(b"arr", 9, &payload);
    let err = open(&b).unwrap_err();
    assert!(
        matches!(&err, GgufError::CountTooLarge { what, count, .. } if what.contains("arr") && *count == 1 << 50),
        "{err}"
    );
}

#[test]
fn arrays_nested_too_deep() {
    // ARRAY of ARRAY of ... each of length 1, deeper than the limit.
    let mut payload = vec![];
    for _ in 0..6 {
        payload.extend(9u32.to_le_bytes());
        payload.extend(1u64.to_le_bytes());
    }
    payload.extend([0; 64]);
    let b = Builder::new().kv_raw(b"deep", 9, &payload);
    assert!(matches!(open(&b), Err(GgufError::NestingTooDeep { key, .. }) if key == "deep"));
}

#[test]
fn duplicate_key() {
    let b = valid().kv_u32("test.n", 6);
    assert!(matches!(open(&b), Err(GgufError::DuplicateKey { key }) if key == "test.n"));
}

#[test]
fn alignment_of_wrong_type() {
    let b = valid().kv_str("general.alignment", "32");
    let err = open(&b).unwrap_err();
    assert!(
        matches!(&err, GgufError::MetadataType { key, expected, found } if key == "general.alignment" && expected == "UINT32" && found == "STRING"),
        "{err}"
    );
}

#[test]
fn alignment_not_power_of_two() {
    let b = valid().kv_u32("general.alignment", 24);
    assert!(matches!(
        open(&b),
        Err(GgufError::BadAlignment { value: 24 })
    ));
}

#[test]
fn typed_getter_on_mismatched_value() {
    let f = open(&valid()).unwrap();
    let err = f.get_u32("general.architecture").unwrap_err();
    assert!(
        matches!(&err, GgufError::MetadataType { key, found, .. } if key == "general.architecture" && found == "STRING"),
        "{err}"
    );
    assert!(matches!(
        f.get_str("test.n"),
        Err(GgufError::MetadataType { .. })
    ));
    assert!(matches!(f.get_f32("nope"), Err(GgufError::MissingKey { key }) if key == "nope"));
    assert!(
        matches!(f.tensor_f32("nope"), Err(GgufError::NoSuchTensor { tensor }) if tensor == "nope")
    );
}

#[test]
fn unknown_tensor_type() {
    let b = Builder::new().tensor("w", &[32], 99, 0).data(128);
    assert!(
        matches!(open(&b), Err(GgufError::UnknownTensorType { tensor, type_id: 99 }) if tensor == "w")
    );
}

#[test]
fn unsupported_tensor_type_is_named() {
    // Q3_K: a real GGML type this reader does not decode.
    let b = Builder::new().tensor("w", &[256], 11, 0).data(256);
    let err = open(&b).unwrap_err();
    assert!(
        matches!(&err, GgufError::UnsupportedTensorType { tensor, type_name: "Q3_K", type_id: 11 } if tensor == "w"),
        "{err}"
    );
    assert!(err.to_string().contains("Q3_K"));
}

#[test]
fn too_many_dimensions() {
    let b = Builder::new().tensor("w", &[1, 1, 1, 1, 1], 0, 0).data(32);
    assert!(matches!(open(&b), Err(GgufError::BadDimCount { tensor, n_dims: 5 }) if tensor == "w"));
}

#[test]
fn shape_product_overflow() {
    let b = Builder::new()
        .tensor("w", &[1 << 32, 1 << 32, 2], 0, 0)
        .data(32);
    let err = open(&b).unwrap_err();
    assert!(
        matches!(&err, GgufError::ShapeOverflow { tensor, dims } if tensor == "w" && dims[2] == 2),
        "{err}"
    );
}

#[test]
fn byte_size_overflow() {
    // The element count fits in u64, the byte count (x4) does not.
    let b = Builder::new().tensor("w", &[1 << 62], 0, 0).data(32);
    assert!(matches!(open(&b), Err(GgufError::ShapeOverflow { tensor, .. }) if tensor == "w"));
}

#[test]
fn quantized_row_not_whole_blocks() {
    let b = Builder::new().tensor("w", &[33, 2], 2, 0).data(64);
    let err = open(&b).unwrap_err();
    assert!(
        matches!(&err, GgufError::NotWholeBlocks { tensor, ne0: 33, type_name: "Q4_0", block: 32 } if tensor == "w"),
        "{err}"
    );
}

#[test]
fn data_offset_out_of_bounds() {
    let b = valid().tensor("far", &[8], 0, 1 << 20);
    let err = open(&b).unwrap_err();
    assert!(
        matches!(&err, GgufError::OutOfBounds { tensor, start, end, data_len: 98 } if tensor == "far" && *start == 1 << 20 && *end == (1 << 20) + 32),
        "{err}"
    );
}

#[test]
fn data_offset_near_u64_max_does_not_wrap() {
    let b = valid().tensor("wrap", &[8], 0, u64::MAX - 31);
    assert!(matches!(open(&b), Err(GgufError::OutOfBounds { tensor, .. }) if tensor == "wrap"));
}

#[test]
fn tensor_running_past_the_end() {
    // "q" is 34 bytes at 64; a file cut 10 bytes short leaves it hanging.
    let mut bytes = valid().build();
    bytes.truncate(bytes.len() - 10);
    let err = GgufFile::from_bytes(bytes).unwrap_err();
    assert!(
        matches!(&err, GgufError::OutOfBounds { tensor, start: 64, end: 98, data_len: 88 } if tensor == "q"),
        "{err}"
    );
}

#[test]
fn overlapping_tensors() {
    let b = valid().tensor("c", &[16], 0, 32).data(64 + 34);
    let err = open(&b).unwrap_err();
    assert!(
        matches!(
            &err,
            GgufError::Overlap {
                first_start: 32,
                second_start: 32,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn misaligned_offset() {
    let b = Builder::new().tensor("w", &[4], 0, 4).data(64);
    assert!(
        matches!(open(&b), Err(GgufError::Misaligned { tensor, offset: 4, alignment: 32 }) if tensor == "w")
    );
}

#[test]
fn duplicate_tensor_name() {
    let b = valid().tensor("a", &[4], 0, 96).data(128);
    assert!(matches!(open(&b), Err(GgufError::DuplicateTensor { tensor }) if tensor == "a"));
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    let bytes = valid().build();
    for len in 0..bytes.len() {
        assert!(
            GgufFile::from_bytes(bytes[..len].to_vec()).is_err(),
            "a file cut at {len} bytes opened"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    /// Random byte overwrites of a valid file either open (and then every
    /// tensor dequantizes) or fail with an error; nothing panics.
    #[test]
    fn random_corruption_never_panics(edits in proptest::collection::vec((0usize..400, any::<u8>()), 1..6)) {
        let mut bytes = valid().build();
        for (pos, byte) in edits {
            let n = bytes.len();
            bytes[pos % n] = byte;
        }
        if let Ok(f) = GgufFile::from_bytes(bytes) {
            for t in f.tensors().to_vec() {
                prop_assert!(f.tensor_f32(&t.name).is_ok());
            }
        }
    }
}

#[test]
fn metadata_element_budget_is_enforced() {
    // Two U8 arrays whose total exceeds the budget: each fits the file, together they do not fit the cap.
    let half = model::gguf::metadata::MAX_METADATA_ELEMENTS / 2 + 1;
    let mut payload = 0u32.to_le_bytes().to_vec(); // UINT8 elements
    payload.extend(half.to_le_bytes());
    payload.extend(vec![7u8; half as usize]);
    let b = Builder::new()
        .kv_raw(b"first", 9, &payload)
        .kv_raw(b"second", 9, &payload);
    let err = open(&b).unwrap_err();
    assert!(
        matches!(&err, GgufError::CountTooLarge { what, count, .. } if what.contains("second") && *count == half),
        "{err}"
    );
}

#[test]
fn tensor_count_above_the_cap() {
    // A file large enough to hold the infos by size, but past MAX_TENSORS.
    let mut b = valid();
    let n = model::gguf::MAX_TENSORS + 1;
    b.tensor_count = Some(n);
    b.data = vec![0; (n * 32) as usize];
    let err = open(&b).unwrap_err();
    assert!(
        matches!(&err, GgufError::CountTooLarge { what, count, .. } if what == "tensor count" && *count == n),
        "{err}"
    );
}
