//! The GGUF fuzz body, shared by the `gguf` fuzz target and the corpus
//! replay test (`tests/tests/fuzz_corpus_replay.rs`).

use model::chat_template::ChatTemplate;
use model::gguf::GgufFile;
use model::tokenizer::Tokenizer;

/// Parse `data` as a GGUF file. Errors are fine; panics are not. When it
/// parses, every metadata key goes through every typed accessor, every
/// tensor is read raw, as an engine tensor and widened to f32 (each checked
/// against its info's byte and element counts), and the tokenizer and chat
/// template loaders run on the metadata.
pub fn gguf(data: &[u8]) {
    let Ok(file) = GgufFile::from_bytes(data.to_vec()) else {
        return;
    };
    let _ = (file.header(), file.alignment(), file.data_offset());
    assert!(file.data_offset() <= file.file_len());

    for (key, value) in file.metadata_entries() {
        assert_eq!(file.metadata(key), Some(value), "metadata({key:?})");
        let _ = (value.meta_type(), value.type_description());
        let _ = (value.as_u64(), value.as_i64(), value.as_str());
        let _ = file.get_u64(key);
        let _ = file.get_u32(key);
        let _ = file.get_usize(key);
        let _ = file.get_i64(key);
        let _ = file.get_f32(key);
        let _ = file.get_bool(key);
        let _ = file.get_str(key);
        let _ = file.get_str_array(key);
        let _ = file.get_i64_array(key);
        let _ = file.get_f32_array(key);
    }
    assert!(file.get_u64("no such key").is_err());

    for info in file.tensors() {
        let name = info.name.as_str();
        assert_eq!(file.tensor_info(name).ok(), Some(info));
        let bytes = file.tensor_bytes(name).ok().map(<[u8]>::len);
        assert_eq!(bytes, usize::try_from(info.n_bytes).ok(), "{name}: bytes");
        if let Ok(t) = file.tensor(name) {
            assert_eq!(t.shape(), info.shape.as_slice(), "{name}: shape");
        }
        if let Ok((values, shape)) = file.tensor_f32(name) {
            assert_eq!(shape, info.shape, "{name}: f32 shape");
            assert_eq!(values.len() as u64, info.n_elements, "{name}: f32 count");
        }
    }
    assert!(file.tensor("no such tensor").is_err());

    if let Ok(tok) = Tokenizer::from_gguf(&file) {
        let ids = tok.encode("Hello, world! 123 <|im_end|>");
        let _ = tok.decode(&ids);
    }
    if let Ok(template) = ChatTemplate::from_gguf(&file) {
        let _ = template.render(&[], true);
    }
}
