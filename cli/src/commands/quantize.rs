//! `infer quantize IN OUT --dtype D`: write a GGUF with every matrix in `D`.

use std::io::Write;

use anyhow::{Context, Result, bail};
use clap::Args;
use model::gguf::GgufFile;

/// Arguments of `infer quantize`.
#[derive(Debug, Args)]
pub struct QuantizeArgs {
    /// The GGUF file to read.
    pub input: std::path::PathBuf,
    /// The GGUF file to write.
    pub output: std::path::PathBuf,
    /// Target dtype of the matrices: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0,
    /// q4_k or q6_k (norm weights stay f32; a K-quant falls back to q5_0 /
    /// q8_0 for rows that are not whole 256-value super-blocks, as llama.cpp
    /// does).
    #[arg(long)]
    pub dtype: engine::DType,
}

/// Run `infer quantize`.
pub fn run(a: &QuantizeArgs, out: &mut dyn Write) -> Result<()> {
    if a.input.canonicalize().ok() == a.output.canonicalize().ok() && a.output.exists() {
        bail!("refusing to overwrite the input file {}", a.input.display());
    }
    let g = GgufFile::open(&a.input).with_context(|| format!("opening {}", a.input.display()))?;
    let (meta, tensors) = model::gguf::requantize::requantize(&g, a.dtype, |_, _| {})?;
    let tmp = a.output.with_extension("gguf.partial");
    let file =
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let mut w = std::io::BufWriter::new(file);
    model::gguf::write::write_gguf(&mut w, &meta, &tensors)?;
    w.flush()?;
    drop(w);
    std::fs::rename(&tmp, &a.output).with_context(|| format!("writing {}", a.output.display()))?;
    let bytes = std::fs::metadata(&a.output)?.len();
    writeln!(
        out,
        "wrote {} ({} tensors, matrices as {}, {:.1} MB)",
        a.output.display(),
        tensors.len(),
        a.dtype,
        bytes as f64 / 1e6
    )?;
    Ok(())
}
