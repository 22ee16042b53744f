//! Loading GPT-2 from the Hugging Face layout (`config.json` + `model.safetensors`).

use std::path::Path;

use super::config::Gpt2Params;
use super::weights::Gpt2Weights;
use crate::arch_error::ArchError;
use crate::config::Gpt2Config;
use crate::safetensors::SafetensorsFile;

impl Gpt2Weights {
    /// Load `dir/config.json` and `dir/model.safetensors` (f32, f16 or bf16),
    /// converting to f32 and transposing the Conv1D weights.
    ///
    /// # Errors
    /// Unreadable or invalid files, missing tensors, wrong shapes.
    pub fn from_hf_dir(dir: impl AsRef<Path>) -> Result<Self, ArchError> {
        let dir = dir.as_ref();
        let config = Gpt2Config::from_file(dir.join("config.json"))
            .map_err(|e| ArchError::load(format!("{}", dir.join("config.json").display()), e))?;
        let params = Gpt2Params::from_config(&config)?;
        let st_path = dir.join("model.safetensors");
        let st = SafetensorsFile::open(&st_path)
            .map_err(|e| ArchError::load(format!("{}", st_path.display()), e))?;
        let mut failure = None;
        let w = Gpt2Weights::from_tensors(params, |name| {
            st.tensor_info(name).ok()?;
            match st.tensor_f32(name) {
                Ok(t) => Some(t),
                Err(e) => {
                    failure = Some(ArchError::load(format!("tensor {name}"), e));
                    None
                }
            }
        });
        match (w, failure) {
            (_, Some(e)) => Err(e),
            (w, None) => w,
        }
    }
}
