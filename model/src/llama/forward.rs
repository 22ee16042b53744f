//! The Llama forward pass over a batch of sequence slots, with the KV cache.

use engine::device::{Buffer, Device, Rows, StepGraphs, ops};
use engine::quant::SumOrder;

use super::config::LlamaConfig;
use super::weights::LlamaWeights;
use crate::arch_error::ArchError;
use crate::batch::{
    LogitsFor, Segment, attend, graph_key, logit_rows, plan, prefetch_kv, split_logits,
    through_graphs,
};
use crate::kv_cache::{CacheType, KvCache};

/// Activation buffers on the model's device, grown once and reused by
/// every call (no allocation per decode step once they have reached their
/// size).
#[derive(Debug, Clone)]
struct Scratch {
    /// The logits of the rows asked for, handed to the caller each call.
    logits: Buffer,
    x: Buffer,
    xn: Buffer,
    qkv: Buffer,
    /// Each row's RoPE angles (`head_dim` per row), shared by every layer.
    rope: Buffer,
    attn: Buffer,
    proj: Buffer,
    act: Buffer,
}

impl Scratch {
    /// Empty buffers on `device`.
    fn on(device: &Device) -> Result<Scratch, ArchError> {
        let b = || Buffer::zeros(device, 0);
        Ok(Scratch {
            logits: b()?,
            x: b()?,
            xn: b()?,
            qkv: b()?,
            rope: b()?,
            attn: b()?,
            proj: b()?,
            act: b()?,
        })
    }

    /// Every buffer, for a CUDA graph's key.
    fn all(&self) -> [&Buffer; 8] {
        [
            &self.logits,
            &self.x,
            &self.xn,
            &self.qkv,
            &self.rope,
            &self.attn,
            &self.proj,
            &self.act,
        ]
    }
}

/// A Llama-family model ready to run: weights, KV cache and scratch space.
#[derive(Debug, Clone)]
pub struct Llama {
    w: LlamaWeights,
    cache: KvCache,
    s: Scratch,
    /// Decode steps on a GPU, replayed as CUDA graphs.
    graphs: StepGraphs,
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
            s: Scratch::on(&Device::Cpu)?,
            graphs: StepGraphs::new(),
        })
    }

    /// The model on `device`: weights, KV cache (its contents kept) and
    /// activations move there, and every later call runs there. On the
    /// host the matrices take the layout the CPU kernels read fastest; on a
    /// GPU, the file's blocks.
    ///
    /// # Errors
    /// The device's error (out of memory), or a KV-cache type the device
    /// does not support.
    pub fn to_device(mut self, device: &Device) -> Result<Self, ArchError> {
        if self.device() == *device {
            return Ok(self);
        }
        self.w = self.w.to_device(device)?;
        self.cache = self.cache.to_device(device)?;
        self.s = Scratch::on(device)?;
        self.graphs.clear();
        Ok(self)
    }

    /// The device the model runs on.
    pub fn device(&self) -> Device {
        self.cache.device()
    }

    /// True when every position's results (its cached keys and values,
    /// and its logits) are the same bits however its sequence's tokens were
    /// cut into [`Llama::forward`] calls, one at a time or in chunks of any
    /// size: on the CPU, with every layer weight multiplied the same way for
    /// any row count ([`engine::nn::same_product_for_every_length`]: the
    /// 4-bit formats summed by block, as `infer serve` runs SmolLM2's
    /// Q4_1). Norms, RoPE, the cache writes and attention (one task per
    /// query row) already work row by row on the CPU. A prompt cache may
    /// then reuse a prefix of any length.
    pub fn chunking_free(&self) -> bool {
        self.device().is_cpu()
            && self.w.layers.iter().all(|l| {
                [&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down]
                    .into_iter()
                    .all(engine::nn::same_product_for_every_length)
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
        let device = self.device();
        self.cache = self.cache.retyped(ty)?;
        if !device.is_cpu() {
            self.cache = self.cache.to_device(&device)?;
        }
        self.graphs.clear();
        Ok(self)
    }

    /// Sum each block of the regrouped Q4_0/Q4_1/Q5_0/Q8_0 matrices in `order` when
    /// multiplying decode steps: [`SumOrder::Ggml`] (the default) follows
    /// llama.cpp's arithmetic, [`SumOrder::Block`] does about a third
    /// fewer vector operations, for batches of decode steps that wait for
    /// arithmetic rather than memory. A sequence gets the same tokens alone
    /// or in a batch in either order.
    pub fn with_sum_order(mut self, order: SumOrder) -> Self {
        self.w = self.w.with_sum_order(order);
        self
    }

    /// Replay decode steps on a GPU as CUDA graphs (the default, unless
    /// `INFER_CUDA_GRAPHS=0`), or launch every kernel of every step.
    pub fn with_graphs(mut self, on: bool) -> Self {
        self.graphs.set_enabled(on);
        self
    }

    /// How the forward passes so far ran: eagerly, captured into a CUDA
    /// graph, or replayed from one.
    pub fn graph_stats(&self) -> engine::device::GraphStats {
        self.graphs.stats()
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
        let lens = self.run(batch, want)?;
        let vocab = self.vocab();
        Ok(split_logits(&mut self.s.logits, &lens, vocab)?)
    }

    /// As [`Llama::forward`] with [`LogitsFor::Last`], the entries' logits
    /// stacked in `out` (entry `i`'s row at `i × vocab`): on the host the
    /// model's own buffer is swapped with `out`, so a batch's rows are not
    /// copied out one vector each ([`split_logits`] copies them), and
    /// `out`'s allocation serves the next call.
    ///
    /// # Errors
    /// As [`Llama::forward`].
    pub fn forward_stacked(
        &mut self,
        batch: &[(usize, &[u32])],
        out: &mut Vec<f32>,
    ) -> Result<(), ArchError> {
        self.run(batch, LogitsFor::Last)?;
        Ok(self.s.logits.swap_host(out)?)
    }

    /// As [`Llama::forward`] with [`LogitsFor::Last`], but each entry's
    /// greedy choice comes back instead of its logits: the id of its
    /// largest logit and that token's log-probability
    /// ([`ops::greedy_rows`]), chosen on the model's device, so that a GPU
    /// sends back two numbers per entry instead of the vocabulary's logits.
    ///
    /// # Errors
    /// As [`Llama::forward`].
    pub fn forward_greedy(
        &mut self,
        batch: &[(usize, &[u32])],
    ) -> Result<Vec<(u32, f32)>, ArchError> {
        self.run(batch, LogitsFor::Last)?;
        Ok(ops::greedy_rows(&self.s.logits, self.vocab())?)
    }

    /// Length of a row of logits.
    fn vocab(&self) -> usize {
        self.w.config.vocab_size
    }

    /// The forward pass, leaving the logits asked for in `self.s.logits`
    /// (`Σ lens × vocab`); returns how many rows each entry has there. A
    /// decode step on a GPU replays a CUDA graph once it has been seen
    /// ([`StepGraphs`]).
    fn run(&mut self, batch: &[(usize, &[u32])], want: LogitsFor) -> Result<Vec<usize>, ArchError> {
        let key = graph_key(&self.cache, batch, want, &self.s.all());
        let device = self.device();
        through_graphs(
            self,
            |m| &mut m.graphs,
            (&device, key),
            |m| m.pass(batch, want),
        )
    }

    /// [`Llama::run`]'s pass, launch by launch. The cache's lengths move
    /// only at the end, so a pass that fails leaves it as it was.
    fn pass(
        &mut self,
        batch: &[(usize, &[u32])],
        want: LogitsFor,
    ) -> Result<Vec<usize>, ArchError> {
        let segs = plan(&mut self.cache, batch, self.w.config.vocab_size)?;
        let lens: Vec<usize> = segs.iter().map(|s| s.len).collect();
        let t: usize = lens.iter().sum();
        let (d, hd) = (self.w.config.d_model, self.w.config.head_dim);
        let tokens: Vec<u32> = batch
            .iter()
            .flat_map(|(_, toks)| toks.iter().copied())
            .collect();
        self.s.x.fit(t * d)?;
        ops::embed(&self.w.tok_embd, &tokens, &mut self.s.x)?;
        // Each row's RoPE angles, computed once for all layers.
        let positions: Vec<u32> = segs
            .iter()
            .flat_map(|s| (s.position..s.position + s.len).map(|p| p as u32))
            .collect();
        self.s.rope.fit(t * hd)?;
        ops::rope_angles(&positions, hd, self.w.config.rope_theta, &mut self.s.rope)?;
        for layer in 0..self.w.config.n_layers {
            self.block(layer, &segs, &lens)?;
        }
        let lens = self.logits(&segs, want)?;
        for s in &segs {
            self.cache.commit(s.slot, s.len)?;
        }
        Ok(lens)
    }

    // ANCHOR: llama_block
    /// One transformer block on the `t` stacked rows in `self.s.x`.
    fn block(&mut self, layer: usize, segs: &[Segment], lens: &[usize]) -> Result<(), ArchError> {
        let c = &self.w.config;
        let l = &self.w.layers[layer];
        let s = &mut self.s;
        let t: usize = lens.iter().sum();
        let (hd, ffn) = (c.head_dim, c.ffn_dim);
        let (q_dim, kv_dim, qkv_dim) = (c.n_heads * hd, c.n_kv_heads * hd, c.qkv_dim());

        // Attention: x += Wo · attention(RoPE(Wq·norm(x)), RoPE(Wk·norm(x)), Wv·norm(x))
        prefetch_kv(&self.cache, layer, segs);
        s.qkv.fit(t * qkv_dim)?;
        let norm = (&l.attn_norm, c.rms_eps);
        ops::rmsnorm_linear_batch(
            &s.x,
            norm,
            &mut s.xn,
            lens,
            &[&l.wq, &l.wk, &l.wv],
            &mut s.qkv,
        )?;
        // Q's heads and K's lie side by side in each row: one call rotates
        // both, by that row's angles.
        ops::rope_rotate(&mut s.qkv, qkv_dim, c.n_heads + c.n_kv_heads, hd, &s.rope)?;
        for seg in segs {
            let col = |c0| Rows {
                at: seg.offset * qkv_dim + c0,
                stride: qkv_dim,
                count: seg.len,
            };
            let (k, v) = (col(q_dim), col(q_dim + kv_dim));
            self.cache
                .write_rows(seg.slot, layer, seg.row, &s.qkv, k, v)?;
        }
        // Attention reads Q in place: the first q_dim values of each row.
        s.attn.fit(t * q_dim)?;
        attend(
            &self.cache,
            layer,
            segs,
            (&s.qkv, qkv_dim),
            c.n_heads,
            &mut s.attn,
        )?;
        ops::linear_add(&s.attn, lens, &l.wo, &mut s.x)?;

        // MLP: x += W_down · (silu(W_gate · norm(x)) ⊙ (W_up · norm(x)))
        s.act.fit(t * ffn)?;
        let norm = (&l.ffn_norm, c.rms_eps);
        ops::rmsnorm_mlp_add(
            &mut s.x,
            norm,
            &mut s.xn,
            lens,
            (&l.w_gate, &l.w_up, &l.w_down),
            &mut s.act,
        )?;
        Ok(())
    }
    // ANCHOR_END: llama_block

    /// Final norm and output head for the requested rows, every entry's
    /// rows in one product (the head is read once per call).
    fn logits(&mut self, segs: &[Segment], want: LogitsFor) -> Result<Vec<usize>, ArchError> {
        let c = &self.w.config;
        let (d, vocab) = (c.d_model, c.vocab_size);
        let (rows, lens) = logit_rows(segs, want);
        self.s.proj.fit(rows.len() * d)?;
        ops::gather_rows(&self.s.x, d, &rows, &mut self.s.proj)?;
        let out = &mut self.s.logits;
        out.fit(rows.len() * vocab)?;
        let norm = (&self.w.out_norm, c.rms_eps);
        ops::rmsnorm_linear_batch(
            &self.s.proj,
            norm,
            &mut self.s.xn,
            &lens,
            &[self.w.head()],
            out,
        )?;
        Ok(lens)
    }
}
