//! GPT-2 weights as engine tensors: matrices `[out_features][in_features]`
//! in the dtype the file stores them in, biases, LayerNorm parameters and
//! position embeddings in f32.

use engine::{DType, Tensor};

use super::config::Gpt2Params;
use crate::arch_error::ArchError;
use crate::weight_checks::{check_f32, check_shape, n_bytes, never_fails, totals};

/// One block's weights. Hugging Face stores GPT-2's linear layers as
/// `Conv1D` with the weight `[in][out]`; they are transposed on loading so
/// every matrix here is `[out][in]` like the Llama ones (llama.cpp's GGUF
/// files already store them so).
#[derive(Debug, Clone)]
pub struct Gpt2Layer {
    /// LayerNorm before attention: weight and bias, `[d]` (f32).
    pub ln1: (Tensor, Tensor),
    /// Fused Q|K|V projection `[3d][d]` (`attn.c_attn`).
    pub w_qkv: Tensor,
    /// Bias of the fused projection, `[3d]` (f32).
    pub b_qkv: Tensor,
    /// Attention output projection `[d][d]` (`attn.c_proj`).
    pub w_o: Tensor,
    /// Its bias, `[d]` (f32).
    pub b_o: Tensor,
    /// LayerNorm before the MLP: weight and bias, `[d]` (f32).
    pub ln2: (Tensor, Tensor),
    /// MLP up projection `[4d][d]` (`mlp.c_fc`).
    pub w_fc: Tensor,
    /// Its bias, `[4d]` (f32).
    pub b_fc: Tensor,
    /// MLP down projection `[d][4d]` (`mlp.c_proj`).
    pub w_proj: Tensor,
    /// Its bias, `[d]` (f32).
    pub b_proj: Tensor,
}

/// All weights of a GPT-2 model.
#[derive(Debug, Clone)]
pub struct Gpt2Weights {
    /// Dimensions.
    pub params: Gpt2Params,
    /// Token embeddings `[vocab][d]` (also the output head).
    pub wte: Tensor,
    /// Learned position embeddings `[n_positions][d]` (f32).
    pub wpe: Tensor,
    /// Blocks.
    pub layers: Vec<Gpt2Layer>,
    /// Final LayerNorm weight and bias, `[d]` (f32).
    pub ln_f: (Tensor, Tensor),
}

/// How a file names GPT-2's tensors and lays out its linear layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gpt2Layout {
    /// Hugging Face (`h.N.attn.c_attn.weight`, with or without the
    /// `transformer.` prefix): the linear layers are `Conv1D`, weight
    /// `[in][out]`, and are transposed on loading.
    HuggingFace,
    /// llama.cpp's GGUF (`blk.N.attn_qkv.weight`): its converter has already
    /// transposed the `Conv1D` weights, so they arrive `[out][in]`.
    Gguf,
}

/// Names of the tensors outside the blocks: Hugging Face, llama.cpp.
const TOP_NAMES: [(&str, &str); 4] = [
    ("wte.weight", "token_embd.weight"),
    ("wpe.weight", "position_embd.weight"),
    ("ln_f.weight", "output_norm.weight"),
    ("ln_f.bias", "output_norm.bias"),
];

/// Names of a block's tensors (after `h.N.` / `blk.N.`): Hugging Face, llama.cpp.
const BLOCK_NAMES: [(&str, &str); 12] = [
    ("ln_1.weight", "attn_norm.weight"),
    ("ln_1.bias", "attn_norm.bias"),
    ("attn.c_attn.weight", "attn_qkv.weight"),
    ("attn.c_attn.bias", "attn_qkv.bias"),
    ("attn.c_proj.weight", "attn_output.weight"),
    ("attn.c_proj.bias", "attn_output.bias"),
    ("ln_2.weight", "ffn_norm.weight"),
    ("ln_2.bias", "ffn_norm.bias"),
    ("mlp.c_fc.weight", "ffn_up.weight"),
    ("mlp.c_fc.bias", "ffn_up.bias"),
    ("mlp.c_proj.weight", "ffn_down.weight"),
    ("mlp.c_proj.bias", "ffn_down.bias"),
];

impl Gpt2Layout {
    /// The file's name for the tensor Hugging Face calls `hf` (a block
    /// tensor of block `layer`, or a top-level one), without any
    /// `transformer.` prefix.
    fn name(self, layer: Option<usize>, hf: &str) -> String {
        let table: &[(&str, &str)] = if layer.is_some() {
            &BLOCK_NAMES
        } else {
            &TOP_NAMES
        };
        let local = match self {
            Gpt2Layout::HuggingFace => hf,
            Gpt2Layout::Gguf => table.iter().find(|(h, _)| *h == hf).map_or(hf, |(_, g)| *g),
        };
        match (self, layer) {
            (_, None) => local.to_string(),
            (Gpt2Layout::HuggingFace, Some(i)) => format!("h.{i}.{local}"),
            (Gpt2Layout::Gguf, Some(i)) => format!("blk.{i}.{local}"),
        }
    }
}

/// What loading does to a tensor read from the file.
#[derive(Clone, Copy)]
enum As {
    /// Kept as stored (`wte`).
    Matrix,
    /// A linear layer's weight, `[out][in]` here: transposed if the layout
    /// stores it `[in][out]`, dtype kept.
    Linear,
    /// A vector or the position embeddings: widened to f32.
    F32,
}

impl Gpt2Layer {
    /// The matrices, with their names.
    pub fn matrices(&self) -> [(&'static str, &Tensor); 4] {
        [
            ("w_qkv", &self.w_qkv),
            ("w_o", &self.w_o),
            ("w_fc", &self.w_fc),
            ("w_proj", &self.w_proj),
        ]
    }

    /// The f32 vectors (LayerNorm parameters and biases), with their names.
    pub fn vectors(&self) -> [(&'static str, &Tensor); 8] {
        [
            ("ln1.weight", &self.ln1.0),
            ("ln1.bias", &self.ln1.1),
            ("b_qkv", &self.b_qkv),
            ("b_o", &self.b_o),
            ("ln2.weight", &self.ln2.0),
            ("ln2.bias", &self.ln2.1),
            ("b_fc", &self.b_fc),
            ("b_proj", &self.b_proj),
        ]
    }
}

impl Gpt2Weights {
    /// Build the weights from named tensors in the Hugging Face layout.
    /// `get(name)` returns a tensor (any float dtype); names are tried with
    /// and without the `transformer.` prefix. The `Conv1D` weights are
    /// transposed to `[out][in]` and keep their dtype; biases, LayerNorm
    /// parameters and position embeddings are widened to f32.
    ///
    /// # Errors
    /// A missing tensor, a shape that does not match `params`, or a tensor
    /// the engine cannot transpose or widen.
    pub fn from_tensors(
        params: Gpt2Params,
        mut get: impl FnMut(&str) -> Option<Tensor>,
    ) -> Result<Self, ArchError> {
        Self::build(params, Gpt2Layout::HuggingFace, |name| Ok(get(name)))
    }

    /// Build the weights from named tensors in `layout`: what both loaders
    /// share. `get(name)` returns `Ok(None)` for a tensor the file lacks and
    /// `Err` for one it cannot read. Matrices keep their dtype (quantized
    /// ones stay quantized), turned `[out][in]` if the layout stores them
    /// `[in][out]`; biases, LayerNorm parameters and position embeddings
    /// are widened to f32.
    ///
    /// # Errors
    /// A missing or unreadable tensor, a shape that does not match
    /// `params`, or a tensor the engine cannot transpose or widen.
    pub(crate) fn build(
        params: Gpt2Params,
        layout: Gpt2Layout,
        mut get: impl FnMut(&str) -> Result<Option<Tensor>, ArchError>,
    ) -> Result<Self, ArchError> {
        params.validate()?;
        let d = params.n_embd;
        // `want` is the shape here; a `Conv1D` weight is stored reversed.
        let mut t =
            |layer: Option<usize>, hf: &str, want: &[usize], to: As| -> Result<Tensor, ArchError> {
                let name = layout.name(layer, hf);
                let found = match layout {
                    Gpt2Layout::HuggingFace => match get(&format!("transformer.{name}"))? {
                        Some(t) => Some(t),
                        None => get(&name)?,
                    },
                    Gpt2Layout::Gguf => get(&name)?,
                };
                let t =
                    found.ok_or_else(|| ArchError::Config(format!("tensor {name} is missing")))?;
                let transpose = matches!(to, As::Linear) && layout == Gpt2Layout::HuggingFace;
                let stored: Vec<usize> = if transpose {
                    want.iter().rev().copied().collect()
                } else {
                    want.to_vec()
                };
                check_shape(&name, &t, &stored)?;
                Ok(match to {
                    As::Matrix => t,
                    As::Linear if transpose => t.transpose(0, 1)?.contiguous()?,
                    As::Linear => t,
                    As::F32 => t.to_dtype(DType::F32)?,
                })
            };
        let wte = t(None, "wte.weight", &[params.vocab_size, d], As::Matrix)?;
        let wpe = t(None, "wpe.weight", &[params.n_positions, d], As::F32)?;
        let mut layers = Vec::with_capacity(params.n_layer);
        for i in 0..params.n_layer {
            let l = Some(i);
            let mut w = |name: &str, out: usize, inp: usize| t(l, name, &[out, inp], As::Linear);
            let w_qkv = w("attn.c_attn.weight", 3 * d, d)?;
            let w_o = w("attn.c_proj.weight", d, d)?;
            let w_fc = w("mlp.c_fc.weight", 4 * d, d)?;
            let w_proj = w("mlp.c_proj.weight", d, 4 * d)?;
            let mut v = |name: &str, n: usize| t(l, name, &[n], As::F32);
            layers.push(Gpt2Layer {
                ln1: (v("ln_1.weight", d)?, v("ln_1.bias", d)?),
                w_qkv,
                b_qkv: v("attn.c_attn.bias", 3 * d)?,
                w_o,
                b_o: v("attn.c_proj.bias", d)?,
                ln2: (v("ln_2.weight", d)?, v("ln_2.bias", d)?),
                w_fc,
                b_fc: v("mlp.c_fc.bias", 4 * d)?,
                w_proj,
                b_proj: v("mlp.c_proj.bias", d)?,
            });
        }
        let ln_f = (
            t(None, "ln_f.weight", &[d], As::F32)?,
            t(None, "ln_f.bias", &[d], As::F32)?,
        );
        Ok(Gpt2Weights {
            params,
            wte,
            wpe,
            layers,
            ln_f,
        })
    }

    /// Check every tensor's shape against the parameters, and that the
    /// vectors (biases, norms) and position embeddings are f32.
    ///
    /// # Errors
    /// [`ArchError::BadShape`] naming the tensor, or [`ArchError::Config`].
    pub fn validate(&self) -> Result<(), ArchError> {
        let p = &self.params;
        p.validate()?;
        if self.layers.len() != p.n_layer {
            return Err(ArchError::Config(format!(
                "{} layers, config says {}",
                self.layers.len(),
                p.n_layer
            )));
        }
        let d = p.n_embd;
        check_shape("wte", &self.wte, &[p.vocab_size, d])?;
        check_f32("wpe", &self.wpe, &[p.n_positions, d])?;
        check_f32("ln_f.weight", &self.ln_f.0, &[d])?;
        check_f32("ln_f.bias", &self.ln_f.1, &[d])?;
        for (i, l) in self.layers.iter().enumerate() {
            let n = |s: &str| format!("layer {i} {s}");
            let want = [[3 * d, d], [d, d], [4 * d, d], [d, 4 * d]];
            for ((name, t), w) in l.matrices().into_iter().zip(want) {
                check_shape(&n(name), t, &w)?;
            }
            let want = [d, d, 3 * d, d, d, d, 4 * d, d];
            for ((name, t), w) in l.vectors().into_iter().zip(want) {
                check_f32(&n(name), t, &[w])?;
            }
        }
        Ok(())
    }

    /// Every tensor once (the tied head is `wte`).
    fn all(&self) -> Vec<&Tensor> {
        let mut v = vec![&self.wte, &self.wpe, &self.ln_f.0, &self.ln_f.1];
        for l in &self.layers {
            v.extend(l.matrices().into_iter().chain(l.vectors()).map(|(_, t)| t));
        }
        v
    }

    /// The same weights with every layer matrix in the layout the
    /// engine's matrix products read fastest ([`Tensor::regrouped`]: Q4_0,
    /// Q4_1 and Q8_0 blocks regrouped eight rows at a time; other dtypes
    /// unchanged). The embeddings (and the tied head) stay as they are, as
    /// Llama's do ([`crate::llama::LlamaWeights::regrouped`] says why),
    /// until [`with_sum_order`](Gpt2Weights::with_sum_order) picks the
    /// block-sum order.
    /// The regrouped matrices share one home, which Linux is asked to back
    /// with huge pages ([`Tensor::regroup_together`]).
    pub fn regrouped(mut self) -> Gpt2Weights {
        Tensor::regroup_together(&mut self.matrices_mut());
        self
    }

    /// The same weights with the regrouped matrices' decode steps summed
    /// in `order` ([`engine::quant::SumOrder`]; the bytes are shared, not
    /// copied). In [`SumOrder::Block`](engine::quant::SumOrder::Block) a
    /// head tied to the embeddings is regrouped too (one copy; the file's
    /// pages are released and only the rows looked up come back): its
    /// block-sum product is about 1.6 times faster than the file layout's
    /// for a batch of eight decode steps (`cargo bench -p engine --bench
    /// kernels -- batch_quant/q8_0_576x49152`), and no slower for one.
    pub fn with_sum_order(mut self, order: engine::quant::SumOrder) -> Gpt2Weights {
        if order == engine::quant::SumOrder::Block && self.wte.device().is_cpu() {
            Tensor::regroup_together(&mut [&mut self.wte]);
            self.wte = self.wte.with_sum_order(order);
        }
        self.map_matrices(|t| t.with_sum_order(order))
    }

    /// Every tensor on `device` ([`Tensor::to_device`]: the same bytes, in
    /// the file's block layout), the matrices then
    /// [`regrouped`](Gpt2Weights::regrouped) when that device is the CPU.
    ///
    /// # Errors
    /// The device's error (out of memory).
    pub fn to_device(self, device: &engine::Device) -> Result<Gpt2Weights, ArchError> {
        let mut w = self.try_map_matrices(|t| t.to_device(device))?;
        w.wte = w.wte.to_device(device)?;
        w.wpe = w.wpe.to_device(device)?;
        w.ln_f = (w.ln_f.0.to_device(device)?, w.ln_f.1.to_device(device)?);
        for l in &mut w.layers {
            for t in [
                &mut l.ln1.0,
                &mut l.ln1.1,
                &mut l.b_qkv,
                &mut l.b_o,
                &mut l.ln2.0,
                &mut l.ln2.1,
                &mut l.b_fc,
                &mut l.b_proj,
            ] {
                *t = t.to_device(device)?;
            }
        }
        Ok(if device.is_cpu() { w.regrouped() } else { w })
    }

    /// `f` applied to every layer matrix.
    fn map_matrices(self, f: impl Fn(&Tensor) -> Tensor) -> Gpt2Weights {
        never_fails(self.try_map_matrices(|t| Ok(f(t))))
    }

    /// `f` applied to every layer matrix, stopping at its first error.
    fn try_map_matrices<E>(
        mut self,
        f: impl Fn(&Tensor) -> Result<Tensor, E>,
    ) -> Result<Gpt2Weights, E> {
        for t in self.matrices_mut() {
            *t = f(t)?;
        }
        Ok(self)
    }

    /// Every layer matrix, in the order a step reads them.
    fn matrices_mut(&mut self) -> Vec<&mut Tensor> {
        let mut v = Vec::with_capacity(4 * self.layers.len());
        for l in &mut self.layers {
            v.extend([&mut l.w_qkv, &mut l.w_o, &mut l.w_fc, &mut l.w_proj]);
        }
        v
    }

    /// Number of parameters (the tied head counted once).
    pub fn n_params(&self) -> usize {
        totals(self.all()).0
    }

    /// Bytes the weights occupy in their dtypes (the tied head counted once).
    pub fn n_bytes(&self) -> usize {
        totals(self.all()).1
    }

    /// Bytes one decode step reads: every matrix (the tied head included)
    /// and vector, but only one row of the position table (counted as
    /// nothing).
    pub fn bytes_per_token(&self) -> usize {
        self.n_bytes() - n_bytes(&self.wpe)
    }

    /// The same model with every matrix (`wte`, which is also the head, and
    /// the four per-block matrices) converted to `dtype`: widened, or
    /// quantized with the engine's block rounding (a K-quant falls back as
    /// llama.cpp does for rows that are not whole super-blocks:
    /// [`DType::for_row_len`]). Biases, LayerNorm
    /// parameters and position embeddings stay f32.
    ///
    /// # Errors
    /// If a matrix cannot be converted (a width that is not whole blocks,
    /// or a non-finite weight).
    pub fn to_dtype(&self, dtype: DType) -> Result<Gpt2Weights, ArchError> {
        let conv = |name: &str, t: &Tensor| {
            let cols = t.shape().last().copied().unwrap_or(0);
            t.to_dtype(dtype.for_row_len(cols))
                .map_err(|e| ArchError::Config(format!("converting {name} to {dtype}: {e}")))
        };
        let mut w = self.clone();
        w.wte = conv("wte", &self.wte)?;
        for (i, l) in w.layers.iter_mut().enumerate() {
            let n = |s: &str| format!("layer {i} {s}");
            l.w_qkv = conv(&n("w_qkv"), &l.w_qkv)?;
            l.w_o = conv(&n("w_o"), &l.w_o)?;
            l.w_fc = conv(&n("w_fc"), &l.w_fc)?;
            l.w_proj = conv(&n("w_proj"), &l.w_proj)?;
        }
        Ok(w)
    }
}
