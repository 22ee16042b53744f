//! Finding and loading a model (a Llama-family or GPT-2 GGUF file, or a
//! GPT-2 Hugging Face directory) with its tokenizer, with progress on
//! stderr when loading takes more than a moment.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use decode::LanguageModel;
use model::gguf::GgufFile;
use model::gpt2::{Gpt2, Gpt2Weights};
use model::kv_cache::KvShape;
use model::llama::{Llama, LlamaWeights};
use model::tokenizer::Tokenizer;

/// Options shared by every command that runs a model.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// A `.gguf` file (Llama family or GPT-2, in llama.cpp's layout) or a
    /// directory with GPT-2's `config.json` + `model.safetensors` (+
    /// `tokenizer.json` or `vocab.json`/`merges.txt`). Default: the cached
    /// SmolLM2-135M-Instruct, fetched on first use.
    #[arg(long, value_name = "PATH")]
    pub model: Option<PathBuf>,
    /// Threads for every kernel, matrix products included (default: the
    /// `INFER_THREADS` environment variable, else the number of physical
    /// cores). At most the CPUs this process may use: the pool's workers
    /// spin while they wait, and more of them than CPUs wait for one
    /// another (a larger value is lowered, with a warning).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Convert the weight matrices at load: widen them (`f32`, `f16`,
    /// `bf16`) or quantize them (`q8_0`, `q4_0`, `q4_1`, `q5_0`, `q4_k`,
    /// `q6_k`; a K-quant falls back to `q5_0` / `q8_0` for rows that are
    /// not whole 256-value super-blocks, as llama.cpp does). Default: run
    /// them in the dtype the file stores.
    #[arg(long, value_name = "DTYPE")]
    pub dtype: Option<engine::DType>,
    /// Element type of the KV cache: `f16` (half the memory, as llama.cpp's
    /// default), `f32` (exact) or `q8_0` (8-bit blocks, a little over a
    /// quarter of f32). Default: `f16` on the CPU, `f32` on a GPU (the only
    /// type the GPU's kernels read so far).
    #[arg(long, value_name = "TYPE")]
    pub cache_type: Option<model::kv_cache::CacheType>,
    /// Where the model runs: `cpu`, or `cuda` / `cuda:N` for an NVIDIA GPU
    /// (a build with `--features cuda` and the NVIDIA driver; anything
    /// less is a clear error).
    #[arg(long, value_name = "DEVICE", default_value = "cpu")]
    pub device: String,
    /// Positions per sequence in the KV cache (GPT-2: at most its learned
    /// positions, `n_positions`; a larger value is capped there).
    #[arg(long, default_value_t = 2048)]
    pub ctx: usize,
    /// How Q4_0/Q4_1/Q5_0/Q8_0 weights add up each 32-value block in decode steps:
    /// `ggml` (llama.cpp's order for one row, eight partial sums scaled
    /// apart: greedy continuations follow llama.cpp's) or `block` (one
    /// integer sum per block, scaled once: a third less arithmetic, which
    /// a batch of decode steps waits for; prompts always sum this way).
    /// Default: `block` for `serve` and `bench-batch`, `ggml` elsewhere.
    #[arg(long, value_name = "ORDER")]
    pub sum_order: Option<engine::quant::SumOrder>,
}

impl ModelArgs {
    /// The device `--device` names.
    ///
    /// # Errors
    /// An unknown name, or no such GPU ("no CUDA device found: …").
    pub fn device(&self) -> Result<engine::Device> {
        Ok(engine::Device::parse(&self.device)?)
    }

    /// The KV-cache type: `--cache-type`, else f16 on the CPU and f32 on a GPU.
    pub fn cache_type_on(&self, device: &engine::Device) -> model::kv_cache::CacheType {
        use model::kv_cache::CacheType;
        self.cache_type.unwrap_or(if device.is_cpu() {
            CacheType::F16
        } else {
            CacheType::F32
        })
    }

    /// These arguments with the sum order `order` unless one was given:
    /// the commands that batch many requests default to
    /// [`engine::quant::SumOrder::Block`].
    pub fn sum_order_or(mut self, order: engine::quant::SumOrder) -> ModelArgs {
        self.sum_order.get_or_insert(order);
        self
    }
}

/// Which architecture a model file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// Llama family from GGUF.
    Llama,
    /// GPT-2 from the Hugging Face layout or from GGUF.
    Gpt2,
}

/// A model ready to run, with what the commands need to know about it.
pub struct Loaded {
    /// The model behind the decoding trait.
    pub lm: Box<dyn LanguageModel>,
    /// Its tokenizer, if the files have one.
    pub tokenizer: Option<Tokenizer>,
    /// Architecture.
    pub arch: Arch,
    /// The file or directory it came from.
    pub path: PathBuf,
    /// KV-cache shape.
    pub kv_shape: KvShape,
    /// Parameters.
    pub n_params: usize,
    /// Bytes of weights one decode step reads (every matrix and the output
    /// head; one row of an embedding table counts as nothing).
    pub bytes_per_token: usize,
    /// Whether the vocabulary puts BOS before a text (GGUF's
    /// `tokenizer.ggml.add_bos_token`, false when absent, as for GPT-2).
    pub add_bos: bool,
    /// Seconds spent loading.
    pub load_secs: f64,
    /// Where the model runs.
    pub device: engine::Device,
}

/// Apply `--threads`.
pub fn set_threads(threads: Option<usize>) -> Result<()> {
    if let Some(n) = threads {
        let cpus = std::thread::available_parallelism().map_or(n, |c| c.get());
        if n > cpus {
            eprintln!(
                "warning: --threads {n} is more than the {cpus} CPUs this process may use; using {cpus}"
            );
        }
        engine::threads::set_num_threads(n.min(cpus)).context("setting the thread count")?;
    }
    Ok(())
}

/// The model path: `--model`, else the cached default (fetched if missing).
pub fn resolve_path(model: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = model {
        return Ok(p.to_path_buf());
    }
    match model::model_path::find_default_model() {
        Ok(p) => Ok(p),
        Err(_) => {
            eprintln!("the default model is not cached yet; fetching it (about 93 MB)...");
            Ok(model::model_path::fetch_default_model()?)
        }
    }
}

/// Progress on stderr, shown only once loading has taken more than 300 ms.
struct Progress {
    start: Instant,
    shown: bool,
    what: String,
}

impl Progress {
    fn new(what: String) -> Self {
        Self {
            start: Instant::now(),
            shown: false,
            what,
        }
    }

    fn update(&mut self, done: usize, total: usize) {
        if self.start.elapsed().as_millis() < 300 && !self.shown {
            return;
        }
        // On a terminal the line is redrawn; in a log it is written once.
        if std::io::stderr().is_terminal() {
            eprint!("\rloading {}: block {done}/{total}", self.what);
        } else if !self.shown {
            eprint!("loading {}...", self.what);
        }
        self.shown = true;
        let _ = std::io::stderr().flush();
    }

    fn finish(&self) -> f64 {
        let secs = self.start.elapsed().as_secs_f64();
        if self.shown && std::io::stderr().is_terminal() {
            eprintln!("\rloading {}: done in {secs:.1} s      ", self.what);
        } else if self.shown {
            eprintln!(" done in {secs:.1} s");
        }
        secs
    }
}

/// Load the model (and its tokenizer) with a KV cache of `n_slots`
/// sequences of `ctx` positions.
pub fn load(args: &ModelArgs, n_slots: usize) -> Result<Loaded> {
    if args.ctx == 0 {
        // Refused here, before a server starts that could answer nothing.
        bail!("--ctx must be at least 1 position");
    }
    set_threads(args.threads)?;
    // Before the weights: a missing GPU is reported at once.
    let device = args.device()?;
    let path = resolve_path(args.model.as_deref())?;
    let mut progress = Progress::new(path.display().to_string());
    if path.is_dir() {
        let w = Gpt2Weights::from_hf_dir(&path)?;
        let tokenizer = gpt2_tokenizer(&path)?;
        return gpt2(args, &device, n_slots, w, tokenizer, false, path, progress);
    }
    let g = GgufFile::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let arch = g.get_str("general.architecture").unwrap_or("unknown");
    if arch == "gpt2" {
        let w = Gpt2Weights::from_gguf(&g)?;
        let tokenizer =
            Some(Tokenizer::from_gguf(&g).context("reading the tokenizer from the GGUF")?);
        let add_bos = g.get_bool("tokenizer.ggml.add_bos_token").unwrap_or(false);
        return gpt2(
            args, &device, n_slots, w, tokenizer, add_bos, path, progress,
        );
    }
    if arch != "llama" {
        bail!(
            "{}: architecture {arch:?} is not supported (llama and gpt2 GGUF files are)",
            path.display()
        );
    }
    let tokenizer = Some(Tokenizer::from_gguf(&g).context("reading the tokenizer from the GGUF")?);
    let mut w = LlamaWeights::from_gguf(&g, |d, t| progress.update(d, t))?;
    if let Some(d) = args.dtype {
        w = w.to_dtype(d)?;
    }
    let (kv_shape, n_params, bytes_per_token) =
        (w.config.kv_shape(), w.n_params(), w.bytes_per_token());
    if args.ctx > w.config.max_positions {
        eprintln!(
            "warning: --ctx {} is more than the {} positions this model was trained on; \
             text past them may degrade",
            args.ctx, w.config.max_positions
        );
    }
    let lm = Box::new(
        Llama::new(w, args.ctx, n_slots)
            .with_context(|| cache_size(args.ctx, n_slots))?
            .with_cache_type(args.cache_type_on(&device))?
            .with_sum_order(args.sum_order.unwrap_or_default())
            .to_device(&device)?,
    );
    let load_secs = progress.finish();
    Ok(Loaded {
        lm,
        tokenizer,
        arch: Arch::Llama,
        add_bos: g.get_bool("tokenizer.ggml.add_bos_token").unwrap_or(false),
        path,
        kv_shape,
        n_params,
        bytes_per_token,
        load_secs,
        device: device.clone(),
    })
}

/// What the KV cache was asked to hold, for an error that says which
/// option to lower.
fn cache_size(ctx: usize, n_slots: usize) -> String {
    let seqs = if n_slots == 1 {
        "one sequence".to_string()
    } else {
        format!("{n_slots} sequences")
    };
    format!("a KV cache of --ctx {ctx} positions for {seqs}")
}

/// A GPT-2 ready to run, from either file layout (`--dtype` converts its
/// matrices here).
#[allow(clippy::too_many_arguments)]
fn gpt2(
    args: &ModelArgs,
    device: &engine::Device,
    n_slots: usize,
    mut w: Gpt2Weights,
    tokenizer: Option<Tokenizer>,
    add_bos: bool,
    path: PathBuf,
    progress: Progress,
) -> Result<Loaded> {
    if let Some(d) = args.dtype {
        w = w.to_dtype(d)?;
    }
    let (kv_shape, n_params, bytes_per_token) =
        (w.params.kv_shape(), w.n_params(), w.bytes_per_token());
    // `Gpt2::new` caps the cache at the learned positions (the default
    // --ctx 2048 is more than GPT-2's 1024).
    let lm = Box::new(
        Gpt2::new(w, args.ctx, n_slots)
            .with_context(|| cache_size(args.ctx, n_slots))?
            .with_cache_type(args.cache_type_on(device))?
            .with_sum_order(args.sum_order.unwrap_or_default())
            .to_device(device)?,
    );
    let load_secs = progress.finish();
    Ok(Loaded {
        lm,
        tokenizer,
        arch: Arch::Gpt2,
        add_bos,
        path,
        kv_shape,
        n_params,
        bytes_per_token,
        load_secs,
        device: device.clone(),
    })
}

/// GPT-2's tokenizer from `tokenizer.json` or `vocab.json` + `merges.txt`, if present.
fn gpt2_tokenizer(dir: &Path) -> Result<Option<Tokenizer>> {
    if dir.join("tokenizer.json").exists() {
        return Ok(Some(Tokenizer::from_tokenizer_json(
            dir.join("tokenizer.json"),
        )?));
    }
    if dir.join("vocab.json").exists() && dir.join("merges.txt").exists() {
        return Ok(Some(Tokenizer::from_vocab_merges(
            dir.join("vocab.json"),
            dir.join("merges.txt"),
        )?));
    }
    Ok(None)
}

/// Parse a prompt given as token ids (`--ids`: "1,2,3") or encode text.
pub fn prompt_ids(loaded: &Loaded, text: &str, as_ids: bool) -> Result<Vec<u32>> {
    if as_ids {
        return text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<u32>().with_context(|| format!("token id {s:?}")))
            .collect();
    }
    match &loaded.tokenizer {
        Some(t) => Ok(t.encode(text)),
        None => bail!(
            "{} has no tokenizer files; pass token ids with --ids",
            loaded.path.display()
        ),
    }
}
