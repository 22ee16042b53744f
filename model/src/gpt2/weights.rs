//! GPT-2 weights as plain f32 matrices, `[out_features][in_features]`.

use super::config::Gpt2Params;
use crate::arch_error::ArchError;

/// One block's weights. Hugging Face stores GPT-2's linear layers as
/// `Conv1D` with the weight `[in][out]`; they are transposed on loading so
/// every layer here is `[out][in]` like the Llama ones.
#[derive(Debug, Clone)]
pub struct Gpt2Layer {
    /// LayerNorm before attention: weight and bias, `[d]`.
    pub ln1: (Vec<f32>, Vec<f32>),
    /// Fused Q|K|V projection `[3d][d]` and bias `[3d]` (`attn.c_attn`).
    pub w_qkv: Vec<f32>,
    /// Bias of the fused projection.
    pub b_qkv: Vec<f32>,
    /// Attention output projection `[d][d]` (`attn.c_proj`).
    pub w_o: Vec<f32>,
    /// Its bias.
    pub b_o: Vec<f32>,
    /// LayerNorm before the MLP.
    pub ln2: (Vec<f32>, Vec<f32>),
    /// MLP up projection `[4d][d]` (`mlp.c_fc`).
    pub w_fc: Vec<f32>,
    /// Its bias.
    pub b_fc: Vec<f32>,
    /// MLP down projection `[d][4d]` (`mlp.c_proj`).
    pub w_proj: Vec<f32>,
    /// Its bias.
    pub b_proj: Vec<f32>,
}

/// All weights of a GPT-2 model.
#[derive(Debug, Clone)]
pub struct Gpt2Weights {
    /// Dimensions.
    pub params: Gpt2Params,
    /// Token embeddings `[vocab][d]` (also the output head).
    pub wte: Vec<f32>,
    /// Learned position embeddings `[n_positions][d]`.
    pub wpe: Vec<f32>,
    /// Blocks.
    pub layers: Vec<Gpt2Layer>,
    /// Final LayerNorm weight and bias.
    pub ln_f: (Vec<f32>, Vec<f32>),
}

/// Transpose a row-major `rows × cols` matrix.
pub fn transpose(w: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; w.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = w[r * cols + c];
        }
    }
    out
}

impl Gpt2Weights {
    /// Build the weights from named tensors in the Hugging Face layout.
    /// `get(name)` returns a tensor's f32 data and shape; names are tried
    /// with and without the `transformer.` prefix.
    ///
    /// # Errors
    /// A missing tensor or a shape that does not match `params`.
    pub fn from_tensors(
        params: Gpt2Params,
        mut get: impl FnMut(&str) -> Option<(Vec<f32>, Vec<usize>)>,
    ) -> Result<Self, ArchError> {
        params.validate()?;
        let d = params.n_embd;
        let mut t = |name: &str, want: &[usize]| -> Result<Vec<f32>, ArchError> {
            let (data, shape) = get(&format!("transformer.{name}"))
                .or_else(|| get(name))
                .ok_or_else(|| ArchError::Config(format!("tensor {name} is missing")))?;
            if shape != want {
                return Err(ArchError::BadShape {
                    name: name.to_string(),
                    expected: want.to_vec(),
                    found: shape,
                });
            }
            Ok(data)
        };
        let wte = t("wte.weight", &[params.vocab_size, d])?;
        let wpe = t("wpe.weight", &[params.n_positions, d])?;
        let mut layers = Vec::with_capacity(params.n_layer);
        for i in 0..params.n_layer {
            let p = |s: &str| format!("h.{i}.{s}");
            layers.push(Gpt2Layer {
                ln1: (t(&p("ln_1.weight"), &[d])?, t(&p("ln_1.bias"), &[d])?),
                w_qkv: transpose(&t(&p("attn.c_attn.weight"), &[d, 3 * d])?, d, 3 * d),
                b_qkv: t(&p("attn.c_attn.bias"), &[3 * d])?,
                w_o: transpose(&t(&p("attn.c_proj.weight"), &[d, d])?, d, d),
                b_o: t(&p("attn.c_proj.bias"), &[d])?,
                ln2: (t(&p("ln_2.weight"), &[d])?, t(&p("ln_2.bias"), &[d])?),
                w_fc: transpose(&t(&p("mlp.c_fc.weight"), &[d, 4 * d])?, d, 4 * d),
                b_fc: t(&p("mlp.c_fc.bias"), &[4 * d])?,
                w_proj: transpose(&t(&p("mlp.c_proj.weight"), &[4 * d, d])?, 4 * d, d),
                b_proj: t(&p("mlp.c_proj.bias"), &[d])?,
            });
        }
        let ln_f = (t("ln_f.weight", &[d])?, t("ln_f.bias", &[d])?);
        Ok(Gpt2Weights {
            params,
            wte,
            wpe,
            layers,
            ln_f,
        })
    }

    /// Check every tensor length against the parameters.
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
        let check = |name: String, got: usize, want: &[usize]| {
            if got == want.iter().product::<usize>() {
                Ok(())
            } else {
                Err(ArchError::BadShape {
                    name,
                    expected: want.to_vec(),
                    found: vec![got],
                })
            }
        };
        check("wte".into(), self.wte.len(), &[p.vocab_size, d])?;
        check("wpe".into(), self.wpe.len(), &[p.n_positions, d])?;
        check("ln_f.weight".into(), self.ln_f.0.len(), &[d])?;
        check("ln_f.bias".into(), self.ln_f.1.len(), &[d])?;
        for (i, l) in self.layers.iter().enumerate() {
            let n = |s: &str| format!("h.{i}.{s}");
            check(n("ln_1.weight"), l.ln1.0.len(), &[d])?;
            check(n("ln_1.bias"), l.ln1.1.len(), &[d])?;
            check(n("attn.c_attn.weight"), l.w_qkv.len(), &[3 * d, d])?;
            check(n("attn.c_attn.bias"), l.b_qkv.len(), &[3 * d])?;
            check(n("attn.c_proj.weight"), l.w_o.len(), &[d, d])?;
            check(n("attn.c_proj.bias"), l.b_o.len(), &[d])?;
            check(n("ln_2.weight"), l.ln2.0.len(), &[d])?;
            check(n("ln_2.bias"), l.ln2.1.len(), &[d])?;
            check(n("mlp.c_fc.weight"), l.w_fc.len(), &[4 * d, d])?;
            check(n("mlp.c_fc.bias"), l.b_fc.len(), &[4 * d])?;
            check(n("mlp.c_proj.weight"), l.w_proj.len(), &[d, 4 * d])?;
            check(n("mlp.c_proj.bias"), l.b_proj.len(), &[d])?;
        }
        Ok(())
    }

    /// Number of parameters (the tied head counted once).
    pub fn n_params(&self) -> usize {
        let per: usize = self
            .layers
            .iter()
            .map(|l| {
                2 * l.ln1.0.len()
                    + 2 * l.ln2.0.len()
                    + l.w_qkv.len()
                    + l.b_qkv.len()
                    + l.w_o.len()
                    + l.b_o.len()
                    + l.w_fc.len()
                    + l.b_fc.len()
                    + l.w_proj.len()
                    + l.b_proj.len()
            })
            .sum();
        self.wte.len() + self.wpe.len() + per + 2 * self.ln_f.0.len()
    }
}
