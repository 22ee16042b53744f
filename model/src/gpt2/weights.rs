//! GPT-2 weights as engine tensors: matrices `[out_features][in_features]`
//! in the dtype the file stores them in, biases, LayerNorm parameters and
//! position embeddings in f32.

use engine::{DType, Tensor};

use super::config::Gpt2Params;
use crate::arch_error::ArchError;
use crate::weight_checks::{check_f32, check_shape, n_bytes, totals};

/// One block's weights. Hugging Face stores GPT-2's linear layers as
/// `Conv1D` with the weight `[in][out]`; they are transposed on loading so
/// every matrix here is `[out][in]` like the Llama ones.
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

/// What loading does to a tensor read from the file.
#[derive(Clone, Copy)]
enum As {
    /// Kept as stored (`wte`).
    Matrix,
    /// A `Conv1D` weight, `[in][out]`: transposed to `[out][in]`, dtype kept.
    Conv1D,
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
        params.validate()?;
        let d = params.n_embd;
        let mut t = |name: &str, want: &[usize], to: As| -> Result<Tensor, ArchError> {
            let t = get(&format!("transformer.{name}"))
                .or_else(|| get(name))
                .ok_or_else(|| ArchError::Config(format!("tensor {name} is missing")))?;
            check_shape(name, &t, want)?;
            Ok(match to {
                As::Matrix => t,
                As::Conv1D => t.transpose(0, 1)?.contiguous()?,
                As::F32 => t.to_dtype(DType::F32)?,
            })
        };
        let wte = t("wte.weight", &[params.vocab_size, d], As::Matrix)?;
        let wpe = t("wpe.weight", &[params.n_positions, d], As::F32)?;
        let mut layers = Vec::with_capacity(params.n_layer);
        for i in 0..params.n_layer {
            let p = |s: &str| format!("h.{i}.{s}");
            // Conv1D weights are `[in][out]` in the file.
            let mut w = |name: &str, inp: usize, out: usize| t(&p(name), &[inp, out], As::Conv1D);
            let w_qkv = w("attn.c_attn.weight", d, 3 * d)?;
            let w_o = w("attn.c_proj.weight", d, d)?;
            let w_fc = w("mlp.c_fc.weight", d, 4 * d)?;
            let w_proj = w("mlp.c_proj.weight", 4 * d, d)?;
            let mut v = |name: &str, n: usize| t(&p(name), &[n], As::F32);
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
            t("ln_f.weight", &[d], As::F32)?,
            t("ln_f.bias", &[d], As::F32)?,
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
