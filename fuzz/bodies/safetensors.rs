//! The safetensors fuzz body, shared by the `safetensors` fuzz target and
//! the corpus replay test (`tests/tests/fuzz_corpus_replay.rs`).

use model::safetensors::SafetensorsFile;

/// Parse `data` as a safetensors file. Errors are fine; panics are not.
/// When it parses, every tensor is read raw, as an f32 view and as f32
/// values, each checked against its info's shape, dtype size and byte range.
pub fn safetensors(data: &[u8]) {
    let Ok(file) = SafetensorsFile::from_bytes(data.to_vec()) else {
        return;
    };
    let _ = file.metadata().len();
    for info in file.tensors() {
        let name = info.name.as_str();
        assert_eq!(file.tensor_info(name).ok(), Some(info));
        let numel: usize = info.shape.iter().product();
        let bytes = file.tensor_bytes(name).map(<[u8]>::len).ok();
        assert_eq!(
            bytes,
            Some((info.end - info.begin) as usize),
            "{name}: bytes"
        );
        assert_eq!(
            bytes,
            Some(numel * info.dtype.size() as usize),
            "{name}: bytes for the shape"
        );
        let view = file.tensor_f32_view(name).map(|v| v.len()).ok();
        assert_eq!(view, Some(numel), "{name}: f32 view");
        let (values, shape) = file.tensor_f32(name).expect("a listed tensor converts");
        assert_eq!(values.len(), numel, "{name}: f32 values");
        assert_eq!(shape, info.shape, "{name}: shape");
    }
    assert!(file.tensor_bytes("no such tensor").is_err());
}
