//! GPT-2 hyper-parameters from a Hugging Face `config.json`.

use std::path::Path;

use serde::Deserialize;
use thiserror::Error;

/// Errors from reading a `config.json`.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {cause}")]
    Io {
        /// The path.
        path: String,
        /// The operating system's error (printed in the message, so not
        /// also given as `source()`, which a report would print again).
        cause: std::io::Error,
    },
    /// Not valid JSON, or a field of the wrong type, or a required field missing.
    #[error("config.json: {0}")]
    Json(String),
    /// Values that cannot describe a model.
    #[error("config.json: {0}")]
    Invalid(String),
}

fn default_eps() -> f32 {
    1e-5
}
fn default_true() -> bool {
    true
}
fn default_activation() -> String {
    "gelu_new".to_string()
}

/// GPT-2's hyper-parameters, named as in `transformers.GPT2Config`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Gpt2Config {
    /// Number of transformer blocks.
    pub n_layer: usize,
    /// Attention heads per block.
    pub n_head: usize,
    /// Model width.
    pub n_embd: usize,
    /// Learned positions (the context limit).
    pub n_positions: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// LayerNorm epsilon.
    #[serde(default = "default_eps")]
    pub layer_norm_epsilon: f32,
    /// MLP hidden width; `None` means `4 * n_embd`.
    #[serde(default)]
    pub n_inner: Option<usize>,
    /// Activation name (`gelu_new` is GELU with the tanh approximation).
    #[serde(default = "default_activation")]
    pub activation_function: String,
    /// Whether the LM head shares the token embedding.
    #[serde(default = "default_true")]
    pub tie_word_embeddings: bool,
    /// Beginning-of-sequence id.
    #[serde(default)]
    pub bos_token_id: Option<u32>,
    /// End-of-sequence id.
    #[serde(default)]
    pub eos_token_id: Option<u32>,
}

impl Gpt2Config {
    /// Parse and validate a `config.json` string.
    pub fn from_json_str(s: &str) -> Result<Gpt2Config, ConfigError> {
        let c: Gpt2Config =
            serde_json::from_str(s).map_err(|e| ConfigError::Json(e.to_string()))?;
        c.validate()?;
        Ok(c)
    }

    /// Read, parse and validate a `config.json` file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Gpt2Config, ConfigError> {
        let path = path.as_ref();
        let s = std::fs::read_to_string(path).map_err(|cause| ConfigError::Io {
            path: path.display().to_string(),
            cause,
        })?;
        Self::from_json_str(&s)
    }

    /// MLP hidden width.
    pub fn mlp_width(&self) -> usize {
        self.n_inner.unwrap_or(4 * self.n_embd)
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.n_embd / self.n_head
    }

    fn validate(&self) -> Result<(), ConfigError> {
        for (name, v) in [
            ("n_layer", self.n_layer),
            ("n_head", self.n_head),
            ("n_embd", self.n_embd),
            ("n_positions", self.n_positions),
            ("vocab_size", self.vocab_size),
        ] {
            if v == 0 {
                return Err(ConfigError::Invalid(format!("{name} is 0")));
            }
        }
        if !self.n_embd.is_multiple_of(self.n_head) {
            return Err(ConfigError::Invalid(format!(
                "n_embd {} is not divisible by n_head {}",
                self.n_embd, self.n_head
            )));
        }
        if !(self.layer_norm_epsilon > 0.0 && self.layer_norm_epsilon.is_finite()) {
            return Err(ConfigError::Invalid(format!(
                "layer_norm_epsilon {} is not positive",
                self.layer_norm_epsilon
            )));
        }
        if !matches!(
            self.activation_function.as_str(),
            "gelu_new" | "gelu_pytorch_tanh" | "gelu"
        ) {
            return Err(ConfigError::Invalid(format!(
                "activation_function {:?} is not supported",
                self.activation_function
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_gpt2_small_config() {
        let c = Gpt2Config::from_json_str(
            r#"{"n_layer": 12, "n_head": 12, "n_embd": 768, "n_positions": 1024, "vocab_size": 50257,
                "layer_norm_epsilon": 1e-05, "activation_function": "gelu_new", "n_inner": null,
                "bos_token_id": 50256, "eos_token_id": 50256, "model_type": "gpt2"}"#,
        )
        .unwrap();
        assert_eq!((c.n_layer, c.head_dim(), c.mlp_width()), (12, 64, 3072));
        assert_eq!(c.eos_token_id, Some(50256));
        assert!(c.tie_word_embeddings);
    }

    #[test]
    fn rejects_bad_configs() {
        let bad_heads =
            r#"{"n_layer": 2, "n_head": 5, "n_embd": 64, "n_positions": 8, "vocab_size": 10}"#;
        assert!(
            matches!(Gpt2Config::from_json_str(bad_heads), Err(ConfigError::Invalid(m)) if m.contains("64") && m.contains('5'))
        );
        let missing = r#"{"n_layer": 2, "n_head": 4, "n_embd": 64, "vocab_size": 10}"#;
        assert!(
            matches!(Gpt2Config::from_json_str(missing), Err(ConfigError::Json(m)) if m.contains("n_positions"))
        );
        let wrong_type =
            r#"{"n_layer": "2", "n_head": 4, "n_embd": 64, "n_positions": 8, "vocab_size": 10}"#;
        assert!(matches!(
            Gpt2Config::from_json_str(wrong_type),
            Err(ConfigError::Json(_))
        ));
    }
}
