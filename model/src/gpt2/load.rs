//! Loading GPT-2 from the Hugging Face layout (`config.json` + `model.safetensors`).

use std::path::Path;

use engine::Tensor;
use half::{bf16, f16};

use super::config::Gpt2Params;
use super::weights::{Gpt2Layout, Gpt2Weights};
use crate::arch_error::ArchError;
use crate::config::Gpt2Config;
use crate::safetensors::{SafetensorsFile, StDtype};

/// Tensor `name` of `st` as an engine tensor in the file's dtype.
fn read_tensor(st: &SafetensorsFile, name: &str) -> Result<Tensor, ArchError> {
    let load = |e| ArchError::load(format!("tensor {name}"), e);
    let info = st.tensor_info(name).map_err(load)?;
    let shape = info.shape.clone();
    let bytes = st.tensor_bytes(name).map_err(load)?;
    let halves = || bytes.chunks_exact(2).map(|c| [c[0], c[1]]);
    Ok(match info.dtype {
        StDtype::F32 => Tensor::from_vec(st.tensor_f32(name).map_err(load)?.0, &shape)?,
        StDtype::F16 => Tensor::from_f16(halves().map(f16::from_le_bytes).collect(), &shape)?,
        StDtype::BF16 => Tensor::from_bf16(halves().map(bf16::from_le_bytes).collect(), &shape)?,
    })
}

impl Gpt2Weights {
    /// Load `dir/config.json` and `dir/model.safetensors` (f32, f16 or
    /// bf16). Matrices keep the file's dtype, the Conv1D weights transposed
    /// to `[out][in]`; biases, LayerNorm parameters and position embeddings
    /// are widened to f32.
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
        Gpt2Weights::build(params, Gpt2Layout::HuggingFace, |name| {
            if st.tensor_info(name).is_err() {
                return Ok(None);
            }
            read_tensor(&st, name).map(Some)
        })
    }
}
