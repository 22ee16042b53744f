//! The GPT-2 forward pass over a batch of sequence slots, with the KV cache.

use engine::kernels::{self, AttnDims};
use engine::nn;
use engine::quant::SumOrder;

use super::config::Gpt2Params;
use super::weights::Gpt2Weights;
use crate::arch_error::ArchError;
use crate::batch::{LogitsFor, Segment, attend, gather_rows, logit_rows, plan, split_logits};
use crate::kv_cache::{CacheType, KvCache};
use crate::ops::{add_bias, fit};

/// Activation buffers, grown once and reused by every call.
#[derive(Debug, Default, Clone)]
struct Scratch {
    x: Vec<f32>,
    xn: Vec<f32>,
    qkv: Vec<f32>,
    q: Vec<f32>,
    attn: Vec<f32>,
    proj: Vec<f32>,
    h: Vec<f32>,
}

/// A GPT-2 model ready to run: weights, KV cache and scratch space.
#[derive(Debug, Clone)]
pub struct Gpt2 {
    w: Gpt2Weights,
    cache: KvCache,
    s: Scratch,
}

impl Gpt2 {
    /// Wrap `weights` with a KV cache of `n_slots` sequences. The capacity is
    /// capped at `n_positions`: learned positions end there, so no sliding
    /// window can go further. The matrices are put in the layout the
    /// engine reads fastest ([`Gpt2Weights::regrouped`]).
    ///
    /// # Errors
    /// If the weights do not match their parameters or the cache is too large.
    pub fn new(weights: Gpt2Weights, capacity: usize, n_slots: usize) -> Result<Self, ArchError> {
        weights.validate()?;
        let p = &weights.params;
        let cache = KvCache::new(p.kv_shape(), capacity.min(p.n_positions), n_slots)?;
        Ok(Self {
            w: weights.regrouped(),
            cache,
            s: Scratch::default(),
        })
    }

    /// Dimensions.
    pub fn params(&self) -> &Gpt2Params {
        &self.w.params
    }

    /// The weights.
    pub fn weights(&self) -> &Gpt2Weights {
        &self.w
    }

    /// Store keys and values as `ty` (f16 halves the cache; the default,
    /// f32, is exact). Empties the cache.
    ///
    /// # Errors
    /// If the cache is too large.
    pub fn with_cache_type(mut self, ty: CacheType) -> Result<Self, ArchError> {
        self.cache = self.cache.retyped(ty)?;
        Ok(self)
    }

    /// Sum each block of the regrouped Q4_0/Q4_1 matrices in `order` when
    /// multiplying decode steps: [`SumOrder::Ggml`] (the default) follows
    /// llama.cpp's arithmetic, [`SumOrder::Block`] does about a third
    /// fewer vector operations, for batches of decode steps that wait for
    /// arithmetic rather than memory. A sequence gets the same tokens alone
    /// or in a batch in either order.
    pub fn with_sum_order(mut self, order: SumOrder) -> Self {
        self.w = self.w.with_sum_order(order);
        self
    }

    /// The KV cache.
    pub fn cache(&self) -> &KvCache {
        &self.cache
    }

    /// The KV cache, mutable (truncate, reorder, clear).
    pub fn cache_mut(&mut self) -> &mut KvCache {
        &mut self.cache
    }

    /// Run the model on a batch of `(slot, tokens)` entries (see
    /// [`crate::llama::Llama::forward`]).
    ///
    /// # Errors
    /// Bad tokens or slots, a slot listed twice, a full cache, or positions
    /// past `n_positions`.
    pub fn forward(
        &mut self,
        batch: &[(usize, &[u32])],
        want: LogitsFor,
    ) -> Result<Vec<Vec<f32>>, ArchError> {
        let p = &self.w.params;
        let segs = plan(&mut self.cache, batch, p.vocab_size)?;
        if let Some(s) = segs.iter().find(|s| s.position + s.len > p.n_positions) {
            return Err(ArchError::PositionOverflow {
                slot: s.slot,
                start: s.position,
                end: s.position + s.len,
                max: p.n_positions,
            });
        }
        let lens: Vec<usize> = segs.iter().map(|s| s.len).collect();
        let t: usize = lens.iter().sum();
        let d = p.n_embd;
        let x = fit(&mut self.s.x, t * d);
        let wpe = self.w.wpe.as_f32_slice()?;
        for (seg, (_, toks)) in segs.iter().zip(batch) {
            let rows = &mut x[seg.offset * d..(seg.offset + seg.len) * d];
            nn::embed(&self.w.wte, toks, rows)?;
            let pos = seg.position * d..(seg.position + seg.len) * d;
            kernels::add_inplace(rows, &wpe[pos]);
        }
        let n_layers = p.n_layer;
        for layer in 0..n_layers {
            self.block(layer, &segs, &lens)?;
        }
        for s in &segs {
            self.cache.commit(s.slot, s.len)?;
        }
        self.logits(&segs, want)
    }

    /// Block `layer` alone on `x`, the rows of one new sequence at
    /// positions `0..t`, in place: what [`Gpt2::forward`] does at that
    /// layer, without the embeddings, the other blocks or the head. It runs
    /// in slot 0, whose cache it clears before and after. (The book's
    /// build-it-yourself track compares a reader's block with this one.)
    ///
    /// # Errors
    /// [`ArchError::Config`] for a layer out of range or rows that are not
    /// `n_embd` wide; the errors of the forward pass (a full cache).
    pub fn run_block(&mut self, layer: usize, x: &mut [f32]) -> Result<(), ArchError> {
        let (d, n_layer, vocab) = {
            let p = &self.w.params;
            (p.n_embd, p.n_layer, p.vocab_size)
        };
        if layer >= n_layer || x.is_empty() || !x.len().is_multiple_of(d) {
            return Err(ArchError::Config(format!(
                "run_block: layer {layer} of {n_layer}, {} values for rows of {d}",
                x.len()
            )));
        }
        let t = x.len() / d;
        self.cache.clear(0);
        let toks = vec![0u32; t];
        let segs = plan(&mut self.cache, &[(0, &toks)], vocab)?;
        fit(&mut self.s.x, t * d).copy_from_slice(x);
        let run = self.block(layer, &segs, &[t]);
        self.cache.clear(0);
        run?;
        x.copy_from_slice(&self.s.x[..t * d]);
        Ok(())
    }

    // ANCHOR: gpt2_block
    /// One transformer block on the `t` stacked rows in `self.s.x`.
    fn block(&mut self, layer: usize, segs: &[Segment], lens: &[usize]) -> Result<(), ArchError> {
        let p = &self.w.params;
        let l = &self.w.layers[layer];
        let s = &mut self.s;
        let (d, eps) = (p.n_embd, p.layer_norm_epsilon);
        let t: usize = lens.iter().sum();

        // Attention: x += W_o · attention(split(W_qkv · LN1(x) + b)) + b_o
        let xn = fit(&mut s.xn, t * d);
        nn::layernorm(&s.x, &l.ln1.0, &l.ln1.1, eps, xn)?;
        let qkv = fit(&mut s.qkv, t * 3 * d);
        nn::linear_batch(xn, lens, &[&l.w_qkv], qkv)?;
        add_bias(qkv, l.b_qkv.as_f32_slice()?);
        let q = fit(&mut s.q, t * d);
        for seg in segs {
            for j in 0..seg.len {
                let r = seg.offset + j;
                let row = &qkv[r * 3 * d..(r + 1) * 3 * d];
                q[r * d..(r + 1) * d].copy_from_slice(&row[..d]);
                self.cache
                    .write(seg.slot, layer, seg.row + j, &row[d..2 * d], &row[2 * d..])?;
            }
        }
        let attn = fit(&mut s.attn, t * d);
        let dims = AttnDims {
            n_heads: p.n_head,
            n_kv_heads: p.n_head,
            head_dim: p.head_dim(),
            capacity: self.cache.capacity(),
        };
        attend(&self.cache, layer, segs, q, dims, attn)?;
        let proj = fit(&mut s.proj, t * d);
        nn::linear_batch(attn, lens, &[&l.w_o], proj)?;
        add_bias(proj, l.b_o.as_f32_slice()?);
        kernels::add_inplace(&mut s.x, proj);

        // MLP: x += W_proj · gelu(W_fc · LN2(x) + b_fc) + b_proj
        nn::layernorm(&s.x, &l.ln2.0, &l.ln2.1, eps, xn)?;
        let h = fit(&mut s.h, t * 4 * d);
        nn::linear_batch(xn, lens, &[&l.w_fc], h)?;
        add_bias(h, l.b_fc.as_f32_slice()?);
        kernels::gelu_tanh_inplace(h);
        nn::linear_batch(h, lens, &[&l.w_proj], proj)?;
        add_bias(proj, l.b_proj.as_f32_slice()?);
        kernels::add_inplace(&mut s.x, proj);
        Ok(())
    }
    // ANCHOR_END: gpt2_block

    /// Final LayerNorm and the tied head (`wte`) for the requested rows.
    fn logits(&mut self, segs: &[Segment], want: LogitsFor) -> Result<Vec<Vec<f32>>, ArchError> {
        let p = &self.w.params;
        let (d, vocab) = (p.n_embd, p.vocab_size);
        let (rows, lens) = logit_rows(segs, want);
        let picked = fit(&mut self.s.proj, rows.len() * d);
        gather_rows(&self.s.x, d, &rows, picked);
        let xn = fit(&mut self.s.xn, rows.len() * d);
        let (g, b) = &self.w.ln_f;
        nn::layernorm(picked, g, b, p.layer_norm_epsilon, xn)?;
        let mut out = vec![0.0; rows.len() * vocab];
        nn::linear_batch(xn, &lens, &[&self.w.wte], &mut out)?;
        Ok(split_logits(out, &lens, vocab))
    }
}
