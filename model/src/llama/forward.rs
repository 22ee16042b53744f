//! The Llama forward pass over a batch of sequence slots, with the KV cache.

use engine::kernels::{self, AttnDims};
use engine::nn;
use engine::quant::SumOrder;

use super::config::LlamaConfig;
use super::weights::LlamaWeights;
use crate::arch_error::ArchError;
use crate::batch::{LogitsFor, Segment, attend, gather_rows, logit_rows, plan, split_logits};
use crate::kv_cache::{CacheType, KvCache};
use crate::ops::fit;

/// Activation buffers, grown once and reused by every call (no allocation
/// per decode step once they have reached their size).
#[derive(Debug, Default, Clone)]
struct Scratch {
    x: Vec<f32>,
    xn: Vec<f32>,
    qkv: Vec<f32>,
    /// Each row's RoPE angles (`head_dim` per row), shared by every layer.
    rope: Vec<f32>,
    q: Vec<f32>,
    attn: Vec<f32>,
    proj: Vec<f32>,
    gate_up: Vec<f32>,
    act: Vec<f32>,
}

/// A Llama-family model ready to run: weights, KV cache and scratch space.
#[derive(Debug, Clone)]
pub struct Llama {
    w: LlamaWeights,
    cache: KvCache,
    s: Scratch,
}

impl Llama {
    /// Wrap `weights` with a KV cache of `n_slots` sequences of `capacity`
    /// positions each. The matrices are put in the layout the engine reads
    /// fastest ([`LlamaWeights::regrouped`]).
    ///
    /// # Errors
    /// If the weights do not match their configuration or the cache is too large.
    pub fn new(weights: LlamaWeights, capacity: usize, n_slots: usize) -> Result<Self, ArchError> {
        weights.validate()?;
        let cache = KvCache::new(weights.config.kv_shape(), capacity, n_slots)?;
        Ok(Self {
            w: weights.regrouped(),
            cache,
            s: Scratch::default(),
        })
    }

    /// Let the cache evict old positions instead of failing when full,
    /// keeping the first `sink` tokens (see [`crate::kv_cache`]).
    pub fn with_sliding_window(mut self, sink: usize) -> Self {
        self.cache = self.cache.with_sliding_window(sink);
        self
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

    /// Dimensions.
    pub fn config(&self) -> &LlamaConfig {
        &self.w.config
    }

    /// The weights.
    pub fn weights(&self) -> &LlamaWeights {
        &self.w
    }

    /// The KV cache.
    pub fn cache(&self) -> &KvCache {
        &self.cache
    }

    /// The KV cache, mutable (truncate, reorder, clear).
    pub fn cache_mut(&mut self) -> &mut KvCache {
        &mut self.cache
    }

    /// Run the model on a batch of `(slot, tokens)` entries, appending their
    /// keys and values to each slot's cache. Returns, per entry, the logits
    /// of its last position (`LogitsFor::Last`, `vocab` floats) or of every
    /// new position (`LogitsFor::All`, `len × vocab` floats).
    ///
    /// # Errors
    /// Bad tokens or slots, a slot listed twice, or a full cache; the cache
    /// is unchanged on error.
    pub fn forward(
        &mut self,
        batch: &[(usize, &[u32])],
        want: LogitsFor,
    ) -> Result<Vec<Vec<f32>>, ArchError> {
        let segs = plan(&mut self.cache, batch, self.w.config.vocab_size)?;
        let lens: Vec<usize> = segs.iter().map(|s| s.len).collect();
        let t: usize = lens.iter().sum();
        let d = self.w.config.d_model;
        let x = fit(&mut self.s.x, t * d);
        for (i, tok) in batch.iter().flat_map(|(_, toks)| toks.iter()).enumerate() {
            nn::embed(&self.w.tok_embd, &[*tok], &mut x[i * d..(i + 1) * d])?;
        }
        let (hd, theta) = (self.w.config.head_dim, self.w.config.rope_theta);
        let rope = fit(&mut self.s.rope, t * hd);
        for seg in &segs {
            for j in 0..seg.len {
                let r = seg.offset + j;
                kernels::rope_angles(hd, seg.position + j, theta, &mut rope[r * hd..(r + 1) * hd]);
            }
        }
        for layer in 0..self.w.config.n_layers {
            self.block(layer, &segs, &lens)?;
        }
        for s in &segs {
            self.cache.commit(s.slot, s.len)?;
        }
        self.logits(&segs, want)
    }

    // ANCHOR: llama_block
    /// One transformer block on the `t` stacked rows in `self.s.x`.
    fn block(&mut self, layer: usize, segs: &[Segment], lens: &[usize]) -> Result<(), ArchError> {
        let c = &self.w.config;
        let l = &self.w.layers[layer];
        let s = &mut self.s;
        let t: usize = lens.iter().sum();
        let (d, hd, ffn) = (c.d_model, c.head_dim, c.ffn_dim);
        let (q_dim, kv_dim, qkv_dim) = (c.n_heads * hd, c.n_kv_heads * hd, c.qkv_dim());

        // Attention: x += Wo · attention(RoPE(Wq·norm(x)), RoPE(Wk·norm(x)), Wv·norm(x))
        let xn = fit(&mut s.xn, t * d);
        nn::rmsnorm(&s.x, &l.attn_norm, c.rms_eps, xn)?;
        let qkv = fit(&mut s.qkv, t * qkv_dim);
        nn::linear_batch(xn, lens, &[&l.wq, &l.wk, &l.wv], qkv)?;
        let q = fit(&mut s.q, t * q_dim);
        for seg in segs {
            for j in 0..seg.len {
                let r = seg.offset + j;
                let row = &mut qkv[r * qkv_dim..(r + 1) * qkv_dim];
                // Q's heads and K's lie side by side: one call rotates both,
                // by this row's angles (computed once for all layers).
                let heads = c.n_heads + c.n_kv_heads;
                let angles = &s.rope[r * hd..(r + 1) * hd];
                kernels::rope_rotate(&mut row[..q_dim + kv_dim], heads, hd, angles);
                let (qr, kv) = row.split_at_mut(q_dim);
                let (kr, vr) = kv.split_at_mut(kv_dim);
                q[r * q_dim..(r + 1) * q_dim].copy_from_slice(qr);
                self.cache.write(seg.slot, layer, seg.row + j, kr, vr)?;
            }
        }
        let attn = fit(&mut s.attn, t * q_dim);
        let dims = AttnDims {
            n_heads: c.n_heads,
            n_kv_heads: c.n_kv_heads,
            head_dim: hd,
            capacity: self.cache.capacity(),
        };
        attend(&self.cache, layer, segs, q, dims, attn)?;
        let proj = fit(&mut s.proj, t * d);
        nn::linear_batch(attn, lens, &[&l.wo], proj)?;
        kernels::add_inplace(&mut s.x, proj);

        // MLP: x += W_down · (silu(W_gate · norm(x)) ⊙ (W_up · norm(x)))
        nn::rmsnorm(&s.x, &l.ffn_norm, c.rms_eps, xn)?;
        let gate_up = fit(&mut s.gate_up, t * 2 * ffn);
        nn::linear_batch(xn, lens, &[&l.w_gate, &l.w_up], gate_up)?;
        let act = fit(&mut s.act, t * ffn);
        kernels::swiglu_rows(gate_up, ffn, act);
        nn::linear_batch(act, lens, &[&l.w_down], proj)?;
        kernels::add_inplace(&mut s.x, proj);
        Ok(())
    }
    // ANCHOR_END: llama_block

    /// Final norm and output head for the requested rows, every entry's
    /// rows in one product (the head is read once per call).
    fn logits(&mut self, segs: &[Segment], want: LogitsFor) -> Result<Vec<Vec<f32>>, ArchError> {
        let c = &self.w.config;
        let (d, vocab) = (c.d_model, c.vocab_size);
        let (rows, lens) = logit_rows(segs, want);
        let picked = fit(&mut self.s.proj, rows.len() * d);
        gather_rows(&self.s.x, d, &rows, picked);
        let xn = fit(&mut self.s.xn, rows.len() * d);
        nn::rmsnorm(picked, &self.w.out_norm, c.rms_eps, xn)?;
        let mut out = vec![0.0; rows.len() * vocab];
        nn::linear_batch(xn, &lens, &[self.w.head()], &mut out)?;
        Ok(split_logits(out, &lens, vocab))
    }
}
