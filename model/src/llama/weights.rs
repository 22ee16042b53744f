//! Llama weights as engine tensors, each in the dtype its file stores
//! (row-major matrices, `[out_features][in_features]`).

use engine::{DType, Tensor};

use super::config::LlamaConfig;
use crate::arch_error::ArchError;
use crate::weight_checks::{check_f32, check_shape, n_bytes, never_fails, totals};

/// One transformer block's weights.
#[derive(Debug, Clone)]
pub struct LlamaLayer {
    /// RMSNorm weight before attention, `[d]` (f32).
    pub attn_norm: Tensor,
    /// Query projection, `[n_heads·head_dim][d]`, rows in the Hugging Face
    /// (half-rotated RoPE) order.
    pub wq: Tensor,
    /// Key projection, `[n_kv_heads·head_dim][d]`, rows as `wq`'s.
    pub wk: Tensor,
    /// Value projection, `[n_kv_heads·head_dim][d]`.
    pub wv: Tensor,
    /// Attention output projection, `[d][n_heads·head_dim]`.
    pub wo: Tensor,
    /// RMSNorm weight before the MLP, `[d]` (f32).
    pub ffn_norm: Tensor,
    /// Gate projection, `[ffn][d]`.
    pub w_gate: Tensor,
    /// Up projection, `[ffn][d]`.
    pub w_up: Tensor,
    /// Down projection, `[d][ffn]`.
    pub w_down: Tensor,
}

/// All weights of a Llama-family model.
#[derive(Debug, Clone)]
pub struct LlamaWeights {
    /// Dimensions.
    pub config: LlamaConfig,
    /// Token embeddings, `[vocab][d]`.
    pub tok_embd: Tensor,
    /// Blocks.
    pub layers: Vec<LlamaLayer>,
    /// Final RMSNorm weight, `[d]` (f32).
    pub out_norm: Tensor,
    /// Output head `[vocab][d]`; `None` when tied to `tok_embd` (SmolLM2).
    pub lm_head: Option<Tensor>,
}

impl LlamaLayer {
    /// The matrices, with their names.
    pub fn matrices(&self) -> [(&'static str, &Tensor); 7] {
        [
            ("wq", &self.wq),
            ("wk", &self.wk),
            ("wv", &self.wv),
            ("wo", &self.wo),
            ("w_gate", &self.w_gate),
            ("w_up", &self.w_up),
            ("w_down", &self.w_down),
        ]
    }
}

impl LlamaWeights {
    /// Check every tensor's shape against the configuration.
    ///
    /// # Errors
    /// [`ArchError::BadShape`] naming the tensor, or [`ArchError::Config`].
    pub fn validate(&self) -> Result<(), ArchError> {
        let c = &self.config;
        c.validate()?;
        if self.layers.len() != c.n_layers {
            return Err(ArchError::Config(format!(
                "{} layers, config says {}",
                self.layers.len(),
                c.n_layers
            )));
        }
        let (d, q, kv) = (c.d_model, c.n_heads * c.head_dim, c.n_kv_heads * c.head_dim);
        check_shape("tok_embd", &self.tok_embd, &[c.vocab_size, d])?;
        check_f32("out_norm", &self.out_norm, &[d])?;
        if let Some(h) = &self.lm_head {
            check_shape("lm_head", h, &[c.vocab_size, d])?;
        }
        for (i, l) in self.layers.iter().enumerate() {
            let n = |s: &str| format!("layer {i} {s}");
            check_f32(&n("attn_norm"), &l.attn_norm, &[d])?;
            check_f32(&n("ffn_norm"), &l.ffn_norm, &[d])?;
            let want = [
                [q, d],
                [kv, d],
                [kv, d],
                [d, q],
                [c.ffn_dim, d],
                [c.ffn_dim, d],
                [d, c.ffn_dim],
            ];
            for ((name, t), w) in l.matrices().into_iter().zip(want) {
                check_shape(&n(name), t, &w)?;
            }
        }
        Ok(())
    }

    /// The same weights with every layer matrix and an untied head in the
    /// layout the engine's matrix products read fastest
    /// ([`Tensor::regrouped`]: Q4_0, Q4_1, Q5_0 and Q8_0 blocks regrouped eight
    /// rows at a time; other dtypes unchanged). The token embeddings stay
    /// as they are, and so does a head tied to them (SmolLM2's Q8_0 table):
    /// regrouped, that head measured no faster for one token (the step
    /// waits for memory) and in some runs slower for a batch of eight
    /// (`cargo bench -p engine --bench kernels -- batch_quant`), because
    /// the regrouped kernel's per-row order costs more arithmetic than the
    /// file layout's many-token kernel. The block-sum order is faster, so
    /// [`with_sum_order`](LlamaWeights::with_sum_order) regroups a tied
    /// head for it.
    /// The regrouped matrices share one home, in the order a step reads
    /// them, which Linux is asked to back with huge pages
    /// ([`Tensor::regroup_together`]).
    pub fn regrouped(mut self) -> LlamaWeights {
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
    pub fn with_sum_order(mut self, order: engine::quant::SumOrder) -> LlamaWeights {
        if self.lm_head.is_none()
            && order == engine::quant::SumOrder::Block
            && self.tok_embd.device().is_cpu()
        {
            Tensor::regroup_together(&mut [&mut self.tok_embd]);
            self.tok_embd = self.tok_embd.with_sum_order(order);
        }
        self.map_matrices(|t| t.with_sum_order(order))
    }

    /// `f` applied to every layer matrix and an untied head.
    fn map_matrices(self, f: impl Fn(&Tensor) -> Tensor) -> LlamaWeights {
        never_fails(self.try_map_matrices(|t| Ok(f(t))))
    }

    /// `f` applied to every layer matrix and an untied head, stopping at
    /// its first error.
    fn try_map_matrices<E>(
        mut self,
        f: impl Fn(&Tensor) -> Result<Tensor, E>,
    ) -> Result<LlamaWeights, E> {
        for t in self.matrices_mut() {
            *t = f(t)?;
        }
        Ok(self)
    }

    /// Every layer matrix, in the order a step reads them, and an untied
    /// head.
    fn matrices_mut(&mut self) -> Vec<&mut Tensor> {
        let mut v = Vec::with_capacity(7 * self.layers.len() + 1);
        for l in &mut self.layers {
            v.extend([
                &mut l.wq,
                &mut l.wk,
                &mut l.wv,
                &mut l.wo,
                &mut l.w_gate,
                &mut l.w_up,
                &mut l.w_down,
            ]);
        }
        v.extend(self.lm_head.as_mut());
        v
    }

    /// Every tensor on `device` ([`Tensor::to_device`]: the same bytes, in
    /// the file's block layout; a tied head stays tied), the matrices then
    /// [`regrouped`](LlamaWeights::regrouped) when that device is the CPU.
    ///
    /// # Errors
    /// The device's error (out of memory).
    pub fn to_device(self, device: &engine::Device) -> Result<LlamaWeights, ArchError> {
        let mut w = self.try_map_matrices(|t| t.to_device(device))?;
        w.tok_embd = w.tok_embd.to_device(device)?;
        w.out_norm = w.out_norm.to_device(device)?;
        for l in &mut w.layers {
            l.attn_norm = l.attn_norm.to_device(device)?;
            l.ffn_norm = l.ffn_norm.to_device(device)?;
        }
        Ok(if device.is_cpu() { w.regrouped() } else { w })
    }

    /// The output head: `lm_head` or, when tied, the token embeddings.
    pub fn head(&self) -> &Tensor {
        self.lm_head.as_ref().unwrap_or(&self.tok_embd)
    }

    /// Every tensor once (a tied head is `tok_embd`).
    fn all(&self) -> Vec<&Tensor> {
        let mut v = vec![&self.tok_embd, &self.out_norm];
        v.extend(&self.lm_head);
        for l in &self.layers {
            v.extend([&l.attn_norm, &l.ffn_norm]);
            v.extend(l.matrices().into_iter().map(|(_, t)| t));
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

    /// Bytes one decode step reads: every matrix and the output head, but
    /// only one row of an untied embedding table (counted as nothing).
    pub fn bytes_per_token(&self) -> usize {
        let untied_embd = match &self.lm_head {
            Some(_) => n_bytes(&self.tok_embd),
            None => 0,
        };
        self.n_bytes() - untied_embd
    }

    /// The same model with every matrix (embeddings and head included)
    /// converted to `dtype`: widened, or quantized with the engine's block
    /// rounding (a K-quant falls back as llama.cpp does for a matrix whose
    /// rows are not whole super-blocks: [`DType::for_row_len`]). Norm weights stay f32.
    ///
    /// # Errors
    /// If a matrix cannot be converted (a width that is not whole blocks,
    /// or a non-finite weight).
    pub fn to_dtype(&self, dtype: DType) -> Result<LlamaWeights, ArchError> {
        let conv = |name: &str, t: &Tensor| {
            let cols = t.shape().last().copied().unwrap_or(0);
            t.to_dtype(dtype.for_row_len(cols))
                .map_err(|e| ArchError::Config(format!("converting {name} to {dtype}: {e}")))
        };
        let mut w = self.clone();
        w.tok_embd = conv("tok_embd", &self.tok_embd)?;
        if let Some(h) = &self.lm_head {
            w.lm_head = Some(conv("lm_head", h)?);
        }
        for (i, l) in w.layers.iter_mut().enumerate() {
            let n = |s: &str| format!("layer {i} {s}");
            l.wq = conv(&n("wq"), &l.wq)?;
            l.wk = conv(&n("wk"), &l.wk)?;
            l.wv = conv(&n("wv"), &l.wv)?;
            l.wo = conv(&n("wo"), &l.wo)?;
            l.w_gate = conv(&n("w_gate"), &l.w_gate)?;
            l.w_up = conv(&n("w_up"), &l.w_up)?;
            l.w_down = conv(&n("w_down"), &l.w_down)?;
        }
        Ok(w)
    }
}
