//! Building [`LlamaWeights`] from a GGUF file (llama.cpp's layout).

use engine::Tensor;
use engine::tensor::Storage;

use super::config::LlamaConfig;
use super::weights::{LlamaLayer, LlamaWeights};
use crate::arch_error::ArchError;
use crate::gguf::GgufFile;

// ANCHOR: unpermute
/// Undo llama.cpp's Q/K row permutation.
///
/// llama.cpp's converter reorders the rows of each head of `attn_q` and
/// `attn_k` so that its "normal" RoPE, which rotates adjacent pairs
/// `(2i, 2i+1)`, computes what Hugging Face's half-rotated RoPE computes on
/// pairs `(i, i + head_dim/2)`. In the file, row `2i + h` of a head is row
/// `h·head_dim/2 + i` of the original. We move the rows back (as
/// `transformers` does when it loads a GGUF) and use the half-rotated RoPE.
/// A row is `row_len` items of any kind: f32 values, or the bytes of a
/// quantized row's blocks, which move whole.
///
/// # Errors
/// [`ArchError::BadShape`] if `w` is not `n_heads · head_dim` rows of `row_len`.
pub fn unpermute_rope_rows<T: Copy + Default>(
    w: &[T],
    n_heads: usize,
    head_dim: usize,
    row_len: usize,
) -> Result<Vec<T>, ArchError> {
    if Some(w.len())
        != n_heads
            .checked_mul(head_dim)
            .and_then(|r| r.checked_mul(row_len))
    {
        return Err(ArchError::BadShape {
            name: "rope rows".to_string(),
            expected: vec![n_heads * head_dim, row_len],
            found: vec![w.len()],
        });
    }
    let half = head_dim / 2;
    let mut out = vec![T::default(); w.len()];
    for head in 0..n_heads {
        for i in 0..half {
            for h in 0..2 {
                let src = (head * head_dim + 2 * i + h) * row_len;
                let dst = (head * head_dim + h * half + i) * row_len;
                out[dst..dst + row_len].copy_from_slice(&w[src..src + row_len]);
            }
        }
    }
    Ok(out)
}
// ANCHOR_END: unpermute

fn tensor(g: &GgufFile, name: &str, want: &[usize]) -> Result<Tensor, ArchError> {
    let t = g
        .tensor(name)
        .map_err(|e| ArchError::load(format!("tensor {name}"), e))?;
    // A 1-D tensor compares by length; a matrix by [rows, cols].
    if t.shape() != want {
        return Err(ArchError::BadShape {
            name: name.to_string(),
            expected: want.to_vec(),
            found: t.shape().to_vec(),
        });
    }
    Ok(t)
}

/// A Q or K projection with its rows put back in Hugging Face order, in
/// the file's dtype (rows of blocks move as bytes).
fn rope_tensor(
    g: &GgufFile,
    name: &str,
    heads: usize,
    hd: usize,
    d: usize,
) -> Result<Tensor, ArchError> {
    let t = tensor(g, name, &[heads * hd, d])?;
    let bad = |e: engine::EngineError| ArchError::load(format!("tensor {name}"), e);
    match t.storage() {
        Storage::F32(v) => Tensor::from_vec(unpermute_rope_rows(v, heads, hd, d)?, t.shape()),
        Storage::F16(v) => Tensor::from_f16(unpermute_rope_rows(v, heads, hd, d)?, t.shape()),
        Storage::BF16(v) => Tensor::from_bf16(unpermute_rope_rows(v, heads, hd, d)?, t.shape()),
        Storage::Quantized { dtype, bytes } => {
            let row = dtype.bytes_for(d).unwrap_or(0);
            let rows = unpermute_rope_rows(bytes, heads, hd, row)?;
            // The file's copy is not read again.
            bytes.release();
            Tensor::from_quantized(*dtype, rows, t.shape())
        }
        // A file's tensors are never regrouped, nor on a device.
        other => Err(engine::EngineError::UnsupportedDType {
            op: "rope_tensor",
            dtype: other.dtype(),
        }),
    }
    .map_err(bad)
}

impl LlamaConfig {
    /// Read the hyper-parameters from a GGUF file's `llama.*` metadata.
    ///
    /// # Errors
    /// [`ArchError::Load`] when a key is missing or has the wrong type,
    /// [`ArchError::Config`] for another architecture or bad dimensions.
    pub fn from_gguf(g: &GgufFile) -> Result<Self, ArchError> {
        ArchError::check_gguf_architecture(g, "llama")?;
        let u = |k: &str| g.get_usize(k).map_err(|e| ArchError::load("metadata", e));
        let f = |k: &str| g.get_f32(k).map_err(|e| ArchError::load("metadata", e));
        let d_model = u("llama.embedding_length")?;
        let n_heads = u("llama.attention.head_count")?;
        let n_kv_heads = g
            .get_usize("llama.attention.head_count_kv")
            .unwrap_or(n_heads);
        let head_dim = d_model.checked_div(n_heads).unwrap_or(0);
        let vocab_size = match g.get_usize("llama.vocab_size") {
            Ok(v) => v,
            Err(_) => g
                .tensor_info("token_embd.weight")
                .map_err(|e| ArchError::load("metadata", e))?
                .shape
                .first()
                .copied()
                .unwrap_or(0),
        };
        let c = LlamaConfig {
            n_layers: u("llama.block_count")?,
            d_model,
            n_heads,
            n_kv_heads,
            head_dim,
            ffn_dim: u("llama.feed_forward_length")?,
            vocab_size,
            rope_theta: g.get_f32("llama.rope.freq_base").unwrap_or(10_000.0),
            rms_eps: f("llama.attention.layer_norm_rms_epsilon")?,
            max_positions: u("llama.context_length")?,
        };
        c.validate()?;
        Ok(c)
    }
}

impl LlamaWeights {
    /// Load every tensor of a llama GGUF in the dtype the file stores,
    /// undoing the Q/K permutation. Quantized tensors stay in the file's
    /// memory map (only Q and K, whose rows move, are copied).
    /// `progress(done, total)` is called after each block.
    ///
    /// # Errors
    /// Missing tensors, wrong shapes, unsupported dtypes or bad metadata.
    pub fn from_gguf(
        g: &GgufFile,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<Self, ArchError> {
        let c = LlamaConfig::from_gguf(g)?;
        let (d, hd, ffn) = (c.d_model, c.head_dim, c.ffn_dim);
        let tok_embd = tensor(g, "token_embd.weight", &[c.vocab_size, d])?;
        let mut layers = Vec::with_capacity(c.n_layers);
        for i in 0..c.n_layers {
            let p = |s: &str| format!("blk.{i}.{s}.weight");
            layers.push(LlamaLayer {
                attn_norm: tensor(g, &p("attn_norm"), &[d])?,
                wq: rope_tensor(g, &p("attn_q"), c.n_heads, hd, d)?,
                wk: rope_tensor(g, &p("attn_k"), c.n_kv_heads, hd, d)?,
                wv: tensor(g, &p("attn_v"), &[c.n_kv_heads * hd, d])?,
                wo: tensor(g, &p("attn_output"), &[d, c.n_heads * hd])?,
                ffn_norm: tensor(g, &p("ffn_norm"), &[d])?,
                w_gate: tensor(g, &p("ffn_gate"), &[ffn, d])?,
                w_up: tensor(g, &p("ffn_up"), &[ffn, d])?,
                w_down: tensor(g, &p("ffn_down"), &[d, ffn])?,
            });
            progress(i + 1, c.n_layers);
        }
        let out_norm = tensor(g, "output_norm.weight", &[d])?;
        let lm_head = match g.tensor_info("output.weight") {
            Ok(_) => Some(tensor(g, "output.weight", &[c.vocab_size, d])?),
            Err(_) => None,
        };
        let w = LlamaWeights {
            config: c,
            tok_embd,
            layers,
            out_norm,
            lm_head,
        };
        w.validate()?;
        Ok(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpermute_inverts_the_converter_permutation() {
        // The converter's permutation for one head of 4 rows: original row
        // h·2 + i goes to file row 2i + h, i.e. [r0, r2, r1, r3].
        let (heads, hd, cols) = (2, 4, 1);
        let original: Vec<f32> = (0..8).map(|x| x as f32).collect();
        let file = [0.0, 2.0, 1.0, 3.0, 4.0, 6.0, 5.0, 7.0];
        assert_eq!(
            unpermute_rope_rows(&file, heads, hd, cols).unwrap(),
            original
        );
        assert!(unpermute_rope_rows(&file[..7], heads, hd, cols).is_err());
    }
}
