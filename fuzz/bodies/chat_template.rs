//! The chat-template fuzz body, shared by the `chat_template` fuzz target
//! and the corpus replay test (`tests/tests/fuzz_corpus_replay.rs`).

use model::chat_template::{ChatMessage, ChatTemplate};

/// Build a template and a conversation from `data` and render it.
///
/// `data` is read as lossy UTF-8 and cut at NUL characters: the first part
/// is a template source for `ChatTemplate::from_template_str` (when it is
/// refused, the second part is a default system prompt for plain ChatML);
/// the remaining parts alternate role and content. The length of `data`
/// chooses `add_generation_prompt`.
///
/// Checked: nothing panics; a conversation renders as the rendering of its
/// first `start` messages followed by `render_from(start)` (at the first,
/// middle and last cut points); `render_from` past the end is an error.
pub fn chat_template(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let source = parts.next().unwrap_or_default();
    let template = match ChatTemplate::from_template_str(source) {
        Ok(t) => t,
        Err(_) => ChatTemplate::chatml(parts.next().map(str::to_string)),
    };
    let _ = template.default_system();
    let rest: Vec<&str> = parts.collect();
    let messages: Vec<ChatMessage> = rest
        .chunks(2)
        .map(|pair| ChatMessage::new(pair[0], pair.get(1).copied().unwrap_or_default()))
        .collect();
    let generation = data.len() % 2 == 1;

    let full = template.render(&messages, generation);
    // The first, middle and last cut points: checking every one would make
    // a long conversation quadratic and slow the fuzzer down.
    let n = messages.len();
    for start in [0, n.min(1), n / 2, n.saturating_sub(1), n] {
        let prefix = template.render(&messages[..start], false);
        let tail = template.render_from(&messages, start, generation);
        let tail = tail.unwrap_or_else(|e| panic!("render_from({start}): {e}"));
        assert_eq!(format!("{prefix}{tail}"), full, "render_from({start})");
    }
    assert!(template.render_from(&messages, n + 1, generation).is_err());
}
