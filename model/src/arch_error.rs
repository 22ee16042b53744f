//! Errors from building and running the architectures (GPT-2, Llama).

use thiserror::Error;

use crate::kv_cache::KvCacheError;

/// An error from loading weights into an architecture or running it.
#[derive(Debug, Error)]
pub enum ArchError {
    /// The KV cache refused an operation (overflow, bad slot, ...).
    #[error(transparent)]
    Kv(#[from] KvCacheError),
    /// An engine operation refused its inputs (a bug in the weights' shapes
    /// that validation missed, reported rather than panicking).
    #[error(transparent)]
    Engine(#[from] engine::EngineError),
    /// A token id outside the vocabulary.
    #[error("token id {token} is outside the vocabulary of {vocab} tokens")]
    BadToken {
        /// The token.
        token: u32,
        /// Vocabulary size.
        vocab: usize,
    },
    /// A weight tensor has the wrong shape.
    #[error("tensor {name}: expected shape {expected:?}, found {found:?}")]
    BadShape {
        /// Tensor name in the file.
        name: String,
        /// Shape the configuration implies.
        expected: Vec<usize>,
        /// Shape found.
        found: Vec<usize>,
    },
    /// The file could not be read (missing tensor, bad metadata, I/O).
    #[error("loading {what}: {cause}")]
    Load {
        /// What was being read.
        what: String,
        /// The underlying error (printed in the message, so not
        /// also given as `source()`, which a report would print again).
        cause: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// An inconsistent configuration.
    #[error("config: {0}")]
    Config(String),
    /// Learned position embeddings end before the sequence does.
    #[error("slot {slot}: positions {start}..{end} exceed the model's {max} learned positions")]
    PositionOverflow {
        /// The slot.
        slot: usize,
        /// First position asked for.
        start: usize,
        /// One past the last position asked for.
        end: usize,
        /// Number of learned positions.
        max: usize,
    },
    /// A batch names the same slot twice.
    #[error("batch lists slot {slot} twice")]
    DuplicateSlot {
        /// The slot.
        slot: usize,
    },
    /// A batch entry with no tokens.
    #[error("batch entry for slot {slot} has no tokens")]
    EmptyInput {
        /// The slot.
        slot: usize,
    },
}

impl ArchError {
    /// Wrap a loader error with a description of what was being read.
    pub fn load(
        what: impl Into<String>,
        e: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        ArchError::Load {
            what: what.into(),
            cause: Box::new(e),
        }
    }

    /// Check that a GGUF file's `general.architecture` is `want`.
    ///
    /// # Errors
    /// [`ArchError::Load`] when the key is missing or not a string,
    /// [`ArchError::Config`] naming both architectures otherwise.
    pub fn check_gguf_architecture(g: &crate::gguf::GgufFile, want: &str) -> Result<(), Self> {
        let arch = g
            .get_str("general.architecture")
            .map_err(|e| ArchError::load("metadata", e))?;
        if arch != want {
            return Err(ArchError::Config(format!(
                "general.architecture is {arch:?}, expected {want:?}"
            )));
        }
        Ok(())
    }
}
