//! Causal scaled-dot-product attention with grouped-query heads.

use crate::error::{EngineError, Result};
use crate::kernels::{self, AttnDims};
use crate::tensor::Tensor;

impl Tensor {
    /// Causal attention `softmax(q·kᵀ/√d + causal mask)·v` for `q`
    /// `[t, n_heads, head_dim]` against `k`, `v` `[s, n_kv_heads, head_dim]`
    /// (`s ≥ t`): the queries are the last `t` positions, so query `i` sees
    /// keys `0..=s-t+i`. Query head `h` uses KV head `h / (n_heads /
    /// n_kv_heads)`. No mask is materialised; a single query (`t = 1`) takes
    /// the decode kernel.
    ///
    /// # Errors
    /// [`EngineError::BadShape`] / [`EngineError::ShapeMismatch`] if the
    /// shapes do not fit that description,
    /// [`EngineError::UnsupportedDType`] for quantized inputs.
    pub fn causal_attention(q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Tensor> {
        let op = "causal_attention";
        let (&[t, n_heads, hd], &[s, n_kv, hd_k]) = (q.shape(), k.shape()) else {
            return Err(EngineError::BadShape {
                op,
                shape: if q.rank() != 3 { q.shape() } else { k.shape() }.to_vec(),
                reason: "expected q [t, n_heads, head_dim] and k, v [s, n_kv_heads, head_dim]"
                    .into(),
            });
        };
        let ok = v.shape() == k.shape() && hd_k == hd && s >= t && n_kv > 0 && n_heads % n_kv == 0;
        if !ok {
            return Err(EngineError::ShapeMismatch {
                op,
                lhs: q.shape().to_vec(),
                rhs: if v.shape() != k.shape() {
                    v.shape()
                } else {
                    k.shape()
                }
                .to_vec(),
            });
        }
        let qv = super::owned_f32(q, op)?;
        // The kernels read each KV head's positions contiguously:
        // [s, n_kv, hd] -> [n_kv, s, hd] (a permuted view, then one copy).
        let kv = super::owned_f32(&k.permute(&[1, 0, 2])?, op)?;
        let vv = super::owned_f32(&v.permute(&[1, 0, 2])?, op)?;
        let dims = AttnDims {
            n_heads,
            n_kv_heads: n_kv,
            head_dim: hd,
            capacity: s,
        };
        let mut out = vec![0.0; qv.len()];
        if t == 1 {
            kernels::attention_decode(&qv, &kv, &vv, dims, s, &mut out);
        } else if t > 0 {
            kernels::attention_prefill(&qv, &kv, &vv, dims, s - t, t, &mut out);
        }
        Tensor::from_vec(out, q.shape())
    }
}
