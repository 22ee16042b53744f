//! `infer inspect FILE`: architecture, sizes, tensor table, dtype mix and
//! the KV-cache cost of a model file.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use clap::Args;
use model::config::Gpt2Config;
use model::gguf::{GgufFile, MetaValue};
use model::gpt2::Gpt2Params;
use model::kv_cache::{KvShape, kv_bytes};
use model::llama::LlamaConfig;
use model::safetensors::SafetensorsFile;

/// Arguments of `infer inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A `.gguf` file or a GPT-2 directory (`config.json` + `model.safetensors`);
    /// default: the cached SmolLM2.
    pub file: Option<std::path::PathBuf>,
    /// Print every tensor (default: the first 12 and the totals).
    #[arg(long)]
    pub all: bool,
}

/// Run `infer inspect`.
pub fn run(a: &InspectArgs, out: &mut dyn Write) -> Result<()> {
    let path = crate::loader::resolve_path(a.file.as_deref())?;
    if path.is_dir() {
        inspect_safetensors(out, &path, a.all)
    } else {
        inspect_gguf(out, &path, a.all)
    }
}

fn short(v: &MetaValue) -> String {
    match v {
        MetaValue::String(s) if s.len() > 60 => {
            format!("{:?}… ({} bytes)", &s[..s.floor_char_boundary(60)], s.len())
        }
        MetaValue::String(s) => format!("{s:?}"),
        MetaValue::Array { values, .. } => format!("[{} items]", values.len()),
        MetaValue::U8(x) => x.to_string(),
        MetaValue::I8(x) => x.to_string(),
        MetaValue::U16(x) => x.to_string(),
        MetaValue::I16(x) => x.to_string(),
        MetaValue::U32(x) => x.to_string(),
        MetaValue::I32(x) => x.to_string(),
        MetaValue::U64(x) => x.to_string(),
        MetaValue::I64(x) => x.to_string(),
        MetaValue::F32(x) => x.to_string(),
        MetaValue::F64(x) => x.to_string(),
        MetaValue::Bool(x) => x.to_string(),
    }
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
}

fn print_kv(out: &mut dyn Write, shape: KvShape) -> Result<()> {
    writeln!(
        out,
        "KV cache ({} layers × {} kv heads × {} head dim): f32 {} per 1k tokens, f16 {} per 1k tokens",
        shape.n_layers,
        shape.n_kv_heads,
        shape.head_dim,
        mib(kv_bytes(shape, 1000, 4) as u64),
        mib(kv_bytes(shape, 1000, 2) as u64)
    )?;
    Ok(())
}

struct Row {
    name: String,
    dtype: String,
    shape: Vec<usize>,
    elements: u64,
    bytes: u64,
}

fn print_tensors(out: &mut dyn Write, rows: &[Row], all: bool) -> Result<()> {
    writeln!(
        out,
        "\n{:<36} {:>6} {:>16} {:>12}",
        "tensor", "dtype", "shape", "bytes"
    )?;
    let n = if all { rows.len() } else { rows.len().min(12) };
    for r in &rows[..n] {
        writeln!(
            out,
            "{:<36} {:>6} {:>16} {:>12}",
            r.name,
            r.dtype,
            format!("{:?}", r.shape),
            r.bytes
        )?;
    }
    if n < rows.len() {
        writeln!(out, "... {} more (use --all)", rows.len() - n)?;
    }
    let mut mix: BTreeMap<&str, (usize, u64, u64)> = BTreeMap::new();
    for r in rows {
        let e = mix.entry(r.dtype.as_str()).or_default();
        *e = (e.0 + 1, e.1 + r.elements, e.2 + r.bytes);
    }
    let total: u64 = rows.iter().map(|r| r.elements).sum();
    writeln!(out, "\ndtype mix:")?;
    for (d, (count, elements, bytes)) in mix {
        writeln!(
            out,
            "  {d:<6} {count:>4} tensors {elements:>12} params ({:>5.1}%) {:>12}",
            100.0 * elements as f64 / total.max(1) as f64,
            mib(bytes)
        )?;
    }
    writeln!(
        out,
        "total: {} tensors, {total} parameters, {} stored, {} as f32",
        rows.len(),
        mib(rows.iter().map(|r| r.bytes).sum()),
        mib(total * 4)
    )?;
    Ok(())
}

fn inspect_gguf(out: &mut dyn Write, path: &Path, all: bool) -> Result<()> {
    let g = GgufFile::open(path).with_context(|| format!("opening {}", path.display()))?;
    let h = g.header();
    writeln!(
        out,
        "{}: GGUF v{}, {}",
        path.display(),
        h.version,
        mib(g.file_len())
    )?;
    writeln!(
        out,
        "architecture: {}",
        g.get_str("general.architecture").unwrap_or("?")
    )?;
    writeln!(out, "\nmetadata ({} keys):", g.metadata_entries().len())?;
    for (k, v) in g.metadata_entries() {
        writeln!(out, "  {k:<44} {:<16} {}", v.type_description(), short(v))?;
    }
    let rows: Vec<Row> = g
        .tensors()
        .iter()
        .map(|t| Row {
            name: t.name.clone(),
            dtype: t.dtype.name().to_string(),
            shape: t.shape.clone(),
            elements: t.n_elements,
            bytes: t.n_bytes,
        })
        .collect();
    print_tensors(out, &rows, all)?;
    if let Ok(c) = LlamaConfig::from_gguf(&g) {
        writeln!(
            out,
            "\nLlama: {} layers, d_model {}, {} heads / {} kv heads of {}, ffn {}, vocab {}, rope θ {}, context {}",
            c.n_layers,
            c.d_model,
            c.n_heads,
            c.n_kv_heads,
            c.head_dim,
            c.ffn_dim,
            c.vocab_size,
            c.rope_theta,
            c.max_positions
        )?;
        print_kv(out, c.kv_shape())?;
    }
    if let Ok(p) = Gpt2Params::from_gguf(&g) {
        writeln!(
            out,
            "\nGPT-2: {} layers, n_embd {}, {} heads, vocab {}, {} positions",
            p.n_layer, p.n_embd, p.n_head, p.vocab_size, p.n_positions
        )?;
        print_kv(out, p.kv_shape())?;
    }
    Ok(())
}

fn inspect_safetensors(out: &mut dyn Write, dir: &Path, all: bool) -> Result<()> {
    let config = Gpt2Config::from_file(dir.join("config.json"))?;
    let p = Gpt2Params::from_config(&config)?;
    let st = SafetensorsFile::open(dir.join("model.safetensors"))?;
    writeln!(
        out,
        "{}: GPT-2 (config.json + model.safetensors)",
        dir.display()
    )?;
    writeln!(
        out,
        "GPT-2: {} layers, n_embd {}, {} heads, vocab {}, {} positions",
        p.n_layer, p.n_embd, p.n_head, p.vocab_size, p.n_positions
    )?;
    let rows: Vec<Row> = st
        .tensors()
        .iter()
        .map(|t| Row {
            name: t.name.clone(),
            dtype: t.dtype.name().to_string(),
            shape: t.shape.clone(),
            elements: t.shape.iter().product::<usize>() as u64,
            bytes: t.end - t.begin,
        })
        .collect();
    print_tensors(out, &rows, all)?;
    print_kv(out, p.kv_shape())?;
    Ok(())
}
