//! SmolLM2's chat template: ChatML, as written in the GGUF's
//! `tokenizer.chat_template` (a Jinja template):
//!
//! ```text
//! {% for message in messages %}
//!   {% if loop.first and messages[0]['role'] != 'system' %}
//!     {{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}
//!   {% endif %}
//!   {{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}
//! {% endfor %}
//! {% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}
//! ```
//!
//! Rather than a Jinja engine, this module recognises that shape (ChatML,
//! with or without a default system prompt inserted when the conversation
//! does not start with one), takes the default prompt from the template
//! text itself, and renders it directly. Other templates are refused.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::gguf::{GgufError, GgufFile};

/// The metadata key holding the template.
pub const CHAT_TEMPLATE_KEY: &str = "tokenizer.chat_template";

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant` (any string is rendered as given).
    pub role: String,
    /// The message text.
    pub content: String,
}

impl ChatMessage {
    /// A message with `role` and `content`.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        ChatMessage {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// Errors from reading a chat template.
#[derive(Debug, Error)]
pub enum ChatTemplateError {
    /// The GGUF has no template (or it is not a string).
    #[error(transparent)]
    Gguf(#[from] GgufError),
    /// A template this module does not recognise.
    #[error("unsupported chat template (only ChatML is rendered): {0}")]
    Unsupported(String),
    /// `render_from` was asked to start past the end of the conversation.
    #[error("render_from: start {start} is past the {len} messages")]
    StartOutOfRange {
        /// The start index asked for.
        start: usize,
        /// Number of messages.
        len: usize,
    },
}

/// A ChatML template, optionally with a default system prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatTemplate {
    default_system: Option<String>,
}

const IM_START: &str = "<|im_start|>";
const IM_END: &str = "<|im_end|>";

/// Undo the escapes a Jinja single-quoted string literal may hold.
fn unescape_jinja(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

impl ChatTemplate {
    /// Plain ChatML; `default_system` is inserted when a conversation does
    /// not start with a system message.
    pub fn chatml(default_system: Option<String>) -> Self {
        ChatTemplate { default_system }
    }

    /// Recognise a Jinja template text as ChatML and find its default system prompt.
    pub fn from_template_str(template: &str) -> Result<Self, ChatTemplateError> {
        let looks_chatml = template.contains(IM_START)
            && template.contains(IM_END)
            && template.contains("message['role']")
            && template.contains("message['content']");
        if !looks_chatml {
            let head: String = template.chars().take(80).collect();
            return Err(ChatTemplateError::Unsupported(head));
        }
        // The default system prompt is the literal emitted under
        // `messages[0]['role'] != 'system'`: `<|im_start|>system\n` ... `<|im_end|>`.
        let marker = "!= 'system'";
        let default_system = match template.find(marker) {
            None => None,
            Some(at) => {
                let rest = &template[at..];
                let open = format!("{IM_START}system");
                let start = rest.find(&open).ok_or_else(|| {
                    ChatTemplateError::Unsupported(
                        "default system branch without a system message".into(),
                    )
                })? + open.len();
                let body = &rest[start..];
                let end = body.find(IM_END).ok_or_else(|| {
                    ChatTemplateError::Unsupported(
                        "default system prompt without <|im_end|>".into(),
                    )
                })?;
                let raw = unescape_jinja(&body[..end]);
                // The literal starts with the newline after the role.
                Some(raw.strip_prefix('\n').unwrap_or(&raw).to_string())
            }
        };
        Ok(ChatTemplate { default_system })
    }

    /// The template in a GGUF file's `tokenizer.chat_template`.
    pub fn from_gguf(gguf: &GgufFile) -> Result<Self, ChatTemplateError> {
        Self::from_template_str(gguf.get_str(CHAT_TEMPLATE_KEY)?)
    }

    /// The system prompt used when a conversation has none.
    pub fn default_system(&self) -> Option<&str> {
        self.default_system.as_deref()
    }

    // ANCHOR: render
    /// The prompt text for `messages`; with `add_generation_prompt`, it ends
    /// with the opening of the assistant's turn, ready for generation.
    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> String {
        let mut out = String::new();
        for (i, m) in messages.iter().enumerate() {
            if i == 0
                && m.role != "system"
                && let Some(system) = &self.default_system
            {
                out.push_str(&format!("{IM_START}system\n{system}{IM_END}\n"));
            }
            out.push_str(&format!("{IM_START}{}\n{}{IM_END}\n", m.role, m.content));
        }
        if add_generation_prompt {
            out.push_str(&format!("{IM_START}assistant\n"));
        }
        out
    }
    // ANCHOR_END: render

    /// The text that messages `start..` add after `render(&messages[..start], false)`,
    /// for a chat that keeps its KV cache and feeds only the new turn.
    pub fn render_from(
        &self,
        messages: &[ChatMessage],
        start: usize,
        add_generation_prompt: bool,
    ) -> Result<String, ChatTemplateError> {
        if start > messages.len() {
            return Err(ChatTemplateError::StartOutOfRange {
                start,
                len: messages.len(),
            });
        }
        let prefix = self.render(&messages[..start], false);
        let full = self.render(messages, add_generation_prompt);
        // ChatML only appends, so the prefix is a prefix of the whole.
        Ok(full.get(prefix.len()..).unwrap_or_default().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_other_templates() {
        assert!(matches!(
            ChatTemplate::from_template_str("{{ bos_token }}[INST] {{ m }} [/INST]"),
            Err(ChatTemplateError::Unsupported(_))
        ));
    }

    #[test]
    fn empty_conversation_and_incremental_turns() {
        let t = ChatTemplate::chatml(Some("Be kind.".into()));
        assert_eq!(t.render(&[], true), "<|im_start|>assistant\n");
        let msgs = vec![
            ChatMessage::new("user", "hi"),
            ChatMessage::new("assistant", "hello"),
            ChatMessage::new("user", "bye"),
        ];
        let full = t.render(&msgs, true);
        let tail = t.render_from(&msgs, 2, true).unwrap();
        assert_eq!(
            tail,
            "<|im_start|>user\nbye<|im_end|>\n<|im_start|>assistant\n"
        );
        assert!(full.ends_with(&tail));
        assert!(t.render_from(&msgs, 4, true).is_err());
    }
}
