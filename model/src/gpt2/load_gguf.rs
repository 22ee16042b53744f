//! Loading GPT-2 from a GGUF file in llama.cpp's layout (`gpt2.*`
//! metadata; `token_embd`, `position_embd`, `blk.N.attn_qkv`, ...).

use super::config::Gpt2Params;
use super::weights::{Gpt2Layout, Gpt2Weights};
use crate::arch_error::ArchError;
use crate::gguf::GgufFile;

impl Gpt2Params {
    /// Read the hyper-parameters from a GGUF file's `gpt2.*` metadata; the
    /// vocabulary size is the row count of `token_embd.weight`.
    ///
    /// # Errors
    /// [`ArchError::Load`] when a key or `token_embd.weight` is missing or
    /// has the wrong type, [`ArchError::Config`] for another architecture
    /// or dimensions this forward pass does not implement (an MLP width
    /// other than 4 × `n_embd`, grouped K/V heads).
    pub fn from_gguf(g: &GgufFile) -> Result<Self, ArchError> {
        ArchError::check_gguf_architecture(g, "gpt2")?;
        let u = |k: &str| g.get_usize(k).map_err(|e| ArchError::load("metadata", e));
        let n_embd = u("gpt2.embedding_length")?;
        let n_head = u("gpt2.attention.head_count")?;
        let ffn = u("gpt2.feed_forward_length")?;
        if Some(ffn) != n_embd.checked_mul(4) {
            return Err(ArchError::Config(format!(
                "gpt2.feed_forward_length {ffn} is not 4 × embedding_length {n_embd}"
            )));
        }
        if let Ok(kv) = g.get_usize("gpt2.attention.head_count_kv")
            && kv != n_head
        {
            return Err(ArchError::Config(format!(
                "gpt2.attention.head_count_kv {kv} differs from head_count {n_head}: \
                 GPT-2 has no grouped K/V heads"
            )));
        }
        let vocab_size = g
            .tensor_info("token_embd.weight")
            .map_err(|e| ArchError::load("metadata", e))?
            .shape
            .first()
            .copied()
            .unwrap_or(0);
        let p = Gpt2Params {
            n_layer: u("gpt2.block_count")?,
            n_embd,
            n_head,
            vocab_size,
            n_positions: u("gpt2.context_length")?,
            layer_norm_epsilon: g
                .get_f32("gpt2.attention.layer_norm_epsilon")
                .map_err(|e| ArchError::load("metadata", e))?,
        };
        p.validate()?;
        Ok(p)
    }
}

/// GPT-2 ties its output head to the token embeddings, and this forward
/// pass uses `wte` as the head. llama.cpp reads an optional `output.weight`
/// (older converters wrote a copy of `token_embd.weight` there): a copy is
/// accepted and ignored, anything else is refused rather than silently
/// replaced by the embeddings.
fn check_tied_head(g: &GgufFile) -> Result<(), ArchError> {
    let Ok(out) = g.tensor_info("output.weight") else {
        return Ok(());
    };
    let emb = g
        .tensor_info("token_embd.weight")
        .map_err(|e| ArchError::load("tensor token_embd.weight", e))?;
    let bytes = |name: &str| {
        g.tensor_bytes(name)
            .map_err(|e| ArchError::load(format!("tensor {name}"), e))
    };
    if out.dtype == emb.dtype
        && out.shape == emb.shape
        && bytes("output.weight")? == bytes("token_embd.weight")?
    {
        return Ok(());
    }
    Err(ArchError::Config(format!(
        "output.weight ({} {:?}) is not a copy of token_embd.weight ({} {:?}): \
         an untied output head is not supported (GPT-2 uses the token \
         embeddings as its head; quantize with llama-quantize --pure to keep \
         the two alike)",
        out.dtype.name(),
        out.shape,
        emb.dtype.name(),
        emb.shape
    )))
}

impl Gpt2Weights {
    /// Load every tensor of a GPT-2 GGUF written in llama.cpp's layout.
    /// Its converter has already transposed Hugging Face's `Conv1D`
    /// weights, so the matrices are `[out][in]` as they are used, in the
    /// dtype the file stores (quantized ones stay in the file's memory
    /// map); biases, LayerNorm parameters and position embeddings are
    /// widened to f32.
    ///
    /// # Errors
    /// Another architecture, missing or unreadable keys and tensors, wrong
    /// shapes, or an `output.weight` that is not a copy of the embeddings.
    pub fn from_gguf(g: &GgufFile) -> Result<Self, ArchError> {
        let params = Gpt2Params::from_gguf(g)?;
        check_tied_head(g)?;
        let w = Gpt2Weights::build(params, Gpt2Layout::Gguf, |name| {
            if g.tensor_info(name).is_err() {
                return Ok(None);
            }
            g.tensor(name)
                .map(Some)
                .map_err(|e| ArchError::load(format!("tensor {name}"), e))
        })?;
        w.validate()?;
        Ok(w)
    }
}

#[cfg(test)]
mod tests {
    use engine::{DType, Tensor};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::batch::LogitsFor;
    use crate::gguf::MetaValue;
    use crate::gguf::write::write_gguf;
    use crate::gpt2::Gpt2;

    fn params() -> Gpt2Params {
        Gpt2Params {
            n_layer: 2,
            n_embd: 32,
            n_head: 4,
            vocab_size: 40,
            n_positions: 16,
            layer_norm_epsilon: 1e-5,
        }
    }

    /// Random weights with every tensor distinct (norms and biases too).
    fn random_weights() -> Gpt2Weights {
        let p = params();
        let d = p.n_embd;
        let mut rng = StdRng::seed_from_u64(5);
        let mut r = |shape: &[usize], centre: f32| {
            let n = shape.iter().product();
            let v = (0..n).map(|_| centre + rng.gen_range(-0.3..0.3)).collect();
            Tensor::from_vec(v, shape).unwrap()
        };
        let layers = (0..p.n_layer)
            .map(|_| super::super::Gpt2Layer {
                ln1: (r(&[d], 1.0), r(&[d], 0.0)),
                w_qkv: r(&[3 * d, d], 0.0),
                b_qkv: r(&[3 * d], 0.0),
                w_o: r(&[d, d], 0.0),
                b_o: r(&[d], 0.0),
                ln2: (r(&[d], 1.0), r(&[d], 0.0)),
                w_fc: r(&[4 * d, d], 0.0),
                b_fc: r(&[4 * d], 0.0),
                w_proj: r(&[d, 4 * d], 0.0),
                b_proj: r(&[d], 0.0),
            })
            .collect();
        Gpt2Weights {
            wte: r(&[p.vocab_size, d], 0.0),
            wpe: r(&[p.n_positions, d], 0.0),
            ln_f: (r(&[d], 1.0), r(&[d], 0.0)),
            layers,
            params: p,
        }
    }

    fn metadata(arch: &str, p: &Gpt2Params) -> Vec<(String, MetaValue)> {
        let u = |v: usize| MetaValue::U32(v as u32);
        let a = |k: &str| format!("{arch}.{k}");
        vec![
            (
                "general.architecture".into(),
                MetaValue::String(arch.into()),
            ),
            (a("context_length"), u(p.n_positions)),
            (a("embedding_length"), u(p.n_embd)),
            (a("feed_forward_length"), u(4 * p.n_embd)),
            (a("block_count"), u(p.n_layer)),
            (a("attention.head_count"), u(p.n_head)),
            (
                a("attention.layer_norm_epsilon"),
                MetaValue::F32(p.layer_norm_epsilon),
            ),
        ]
    }

    /// The tensors of `w` under llama.cpp's names (matrices `[out][in]`).
    fn gguf_tensors(w: &Gpt2Weights) -> Vec<(String, Tensor)> {
        let mut t = vec![
            ("token_embd.weight".to_string(), w.wte.clone()),
            ("position_embd.weight".into(), w.wpe.clone()),
            ("output_norm.weight".into(), w.ln_f.0.clone()),
            ("output_norm.bias".into(), w.ln_f.1.clone()),
        ];
        for (i, l) in w.layers.iter().enumerate() {
            for (name, x) in [
                ("attn_norm.weight", &l.ln1.0),
                ("attn_norm.bias", &l.ln1.1),
                ("attn_qkv.weight", &l.w_qkv),
                ("attn_qkv.bias", &l.b_qkv),
                ("attn_output.weight", &l.w_o),
                ("attn_output.bias", &l.b_o),
                ("ffn_norm.weight", &l.ln2.0),
                ("ffn_norm.bias", &l.ln2.1),
                ("ffn_up.weight", &l.w_fc),
                ("ffn_up.bias", &l.b_fc),
                ("ffn_down.weight", &l.w_proj),
                ("ffn_down.bias", &l.b_proj),
            ] {
                t.push((format!("blk.{i}.{name}"), x.clone()));
            }
        }
        t
    }

    fn gguf(meta: &[(String, MetaValue)], tensors: &[(String, Tensor)]) -> GgufFile {
        let mut bytes = Vec::new();
        write_gguf(&mut bytes, meta, tensors).unwrap();
        GgufFile::from_bytes(bytes).unwrap()
    }

    fn logits(w: Gpt2Weights) -> Vec<f32> {
        let mut m = Gpt2::new(w, 16, 1).unwrap();
        let toks = [3, 1, 4, 1, 5, 9, 2, 6];
        m.forward(&[(0, &toks)], LogitsFor::All).unwrap().remove(0)
    }

    #[test]
    fn gguf_layout_gives_the_same_model() {
        let w = random_weights();
        let g = gguf(&metadata("gpt2", &w.params), &gguf_tensors(&w));
        let loaded = Gpt2Weights::from_gguf(&g).unwrap();
        assert_eq!(loaded.params, w.params);
        // Bit-identical weights, so bit-identical logits: a transposed
        // square matrix (w_o) or a swapped bias would show here.
        assert_eq!(logits(loaded), logits(w));
    }

    #[test]
    fn quantized_matrices_stay_quantized() {
        let w = random_weights().to_dtype(DType::Q8_0).unwrap();
        let mut tensors = gguf_tensors(&w);
        // llama-quantize never quantizes the position table, but a file
        // that did is still read (widened to f32).
        let wpe = tensors
            .iter_mut()
            .find(|(n, _)| n == "position_embd.weight");
        wpe.unwrap().1 = w.wpe.to_dtype(DType::F16).unwrap();
        let g = gguf(&metadata("gpt2", &w.params), &tensors);
        let loaded = Gpt2Weights::from_gguf(&g).unwrap();
        assert_eq!(loaded.wte.dtype(), DType::Q8_0);
        for l in &loaded.layers {
            for (name, t) in l.matrices() {
                assert_eq!(t.dtype(), DType::Q8_0, "{name}");
            }
        }
        assert_eq!(loaded.wpe.dtype(), DType::F32);
        assert_eq!(loaded.n_bytes(), w.n_bytes());
    }

    #[test]
    fn a_copied_output_head_is_accepted_an_untied_one_refused() {
        let w = random_weights();
        let mut tensors = gguf_tensors(&w);
        tensors.push(("output.weight".into(), w.wte.clone()));
        let g = gguf(&metadata("gpt2", &w.params), &tensors);
        assert!(Gpt2Weights::from_gguf(&g).is_ok());

        tensors.pop();
        let halved: Vec<f32> = w
            .wte
            .to_vec_f32()
            .unwrap()
            .iter()
            .map(|x| x * 0.5)
            .collect();
        let other = Tensor::from_vec(halved, w.wte.shape()).unwrap();
        tensors.push(("output.weight".into(), other));
        let g = gguf(&metadata("gpt2", &w.params), &tensors);
        let err = Gpt2Weights::from_gguf(&g).unwrap_err().to_string();
        assert!(err.contains("untied output head"), "{err}");
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        let w = random_weights();
        let p = w.params.clone();
        let err = |meta: &[(String, MetaValue)], tensors: &[(String, Tensor)]| {
            Gpt2Weights::from_gguf(&gguf(meta, tensors))
                .unwrap_err()
                .to_string()
        };

        // Another architecture (a llama file's metadata).
        let e = err(&metadata("llama", &p), &gguf_tensors(&w));
        assert!(e.contains("\"llama\"") && e.contains("\"gpt2\""), "{e}");

        // A missing tensor.
        let mut t = gguf_tensors(&w);
        t.retain(|(n, _)| n != "blk.1.ffn_up.bias");
        let e = err(&metadata("gpt2", &p), &t);
        assert!(
            e.contains("blk.1.ffn_up.bias") && e.contains("missing"),
            "{e}"
        );

        // A matrix stored `[in][out]` (transposed once too often).
        let mut t = gguf_tensors(&w);
        let qkv = t.iter_mut().find(|(n, _)| n == "blk.0.attn_qkv.weight");
        let x = &mut qkv.unwrap().1;
        *x = x.transpose(0, 1).unwrap().contiguous().unwrap();
        let e = err(&metadata("gpt2", &p), &t);
        assert!(
            e.contains("blk.0.attn_qkv.weight") && e.contains("[96, 32]"),
            "{e}"
        );

        // A missing key.
        let mut m = metadata("gpt2", &p);
        m.retain(|(k, _)| k != "gpt2.attention.layer_norm_epsilon");
        let e = err(&m, &gguf_tensors(&w));
        assert!(e.contains("gpt2.attention.layer_norm_epsilon"), "{e}");

        // An MLP width this forward pass does not implement.
        let mut m = metadata("gpt2", &p);
        m[3].1 = MetaValue::U32(100);
        let e = err(&m, &gguf_tensors(&w));
        assert!(e.contains("feed_forward_length 100"), "{e}");
    }
}
