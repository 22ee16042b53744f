//! The GPT-2 forward pass over a batch of sequence slots, with the KV cache.

use engine::device::{Buffer, Device, Rows, StepGraphs, ops};
use engine::quant::SumOrder;

use super::config::Gpt2Params;
use super::weights::Gpt2Weights;
use crate::arch_error::ArchError;
use crate::batch::{
    LogitsFor, Segment, attend, graph_key, logit_rows, plan, prefetch_kv, split_logits,
    through_graphs,
};
use crate::kv_cache::{CacheType, KvCache};

/// Activation buffers on the model's device, grown once and reused by
/// every call.
#[derive(Debug, Clone)]
struct Scratch {
    /// The logits of the rows asked for, handed to the caller each call.
    logits: Buffer,
    x: Buffer,
    xn: Buffer,
    qkv: Buffer,
    attn: Buffer,
    proj: Buffer,
    h: Buffer,
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
            attn: b()?,
            proj: b()?,
            h: b()?,
        })
    }

    /// Every buffer, for a CUDA graph's key.
    fn all(&self) -> [&Buffer; 7] {
        [
            &self.logits,
            &self.x,
            &self.xn,
            &self.qkv,
            &self.attn,
            &self.proj,
            &self.h,
        ]
    }
}

/// A GPT-2 model ready to run: weights, KV cache and scratch space.
#[derive(Debug, Clone)]
pub struct Gpt2 {
    w: Gpt2Weights,
    cache: KvCache,
    s: Scratch,
    /// Decode steps on a GPU, replayed as CUDA graphs.
    graphs: StepGraphs,
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
            s: Scratch::on(&Device::Cpu)?,
            graphs: StepGraphs::new(),
        })
    }

    /// The model on `device` (see [`crate::llama::Llama::to_device`]).
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

    /// Replay decode steps on a GPU as CUDA graphs, or not (see
    /// [`crate::llama::Llama::with_graphs`]).
    pub fn with_graphs(mut self, on: bool) -> Self {
        self.graphs.set_enabled(on);
        self
    }

    /// How the forward passes so far ran (see
    /// [`crate::llama::Llama::graph_stats`]).
    pub fn graph_stats(&self) -> engine::device::GraphStats {
        self.graphs.stats()
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
        let lens = self.run(batch, want)?;
        Ok(split_logits(
            &mut self.s.logits,
            &lens,
            self.w.params.vocab_size,
        )?)
    }

    /// The entries' logits stacked in `out` (see
    /// [`crate::llama::Llama::forward_stacked`]).
    ///
    /// # Errors
    /// As [`Gpt2::forward`].
    pub fn forward_stacked(
        &mut self,
        batch: &[(usize, &[u32])],
        out: &mut Vec<f32>,
    ) -> Result<(), ArchError> {
        self.run(batch, LogitsFor::Last)?;
        Ok(self.s.logits.swap_host(out)?)
    }

    /// Each entry's greedy choice, made on the model's device (see
    /// [`crate::llama::Llama::forward_greedy`]).
    ///
    /// # Errors
    /// As [`Gpt2::forward`].
    pub fn forward_greedy(
        &mut self,
        batch: &[(usize, &[u32])],
    ) -> Result<Vec<(u32, f32)>, ArchError> {
        self.run(batch, LogitsFor::Last)?;
        let vocab = self.w.params.vocab_size;
        Ok(ops::greedy_rows(&self.s.logits, vocab)?)
    }

    /// The forward pass, leaving the logits asked for in `self.s.logits`
    /// (`Σ lens × vocab`); returns how many rows each entry has there. A
    /// decode step on a GPU replays a CUDA graph once it has been seen.
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

    /// [`Gpt2::run`]'s pass, launch by launch; the cache's lengths move
    /// only at the end.
    fn pass(
        &mut self,
        batch: &[(usize, &[u32])],
        want: LogitsFor,
    ) -> Result<Vec<usize>, ArchError> {
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
        // x = wte[token] + wpe[position], row by row.
        let tokens: Vec<u32> = batch
            .iter()
            .flat_map(|(_, toks)| toks.iter().copied())
            .collect();
        let positions: Vec<u32> = segs
            .iter()
            .flat_map(|s| (s.position..s.position + s.len).map(|p| p as u32))
            .collect();
        self.s.x.fit(t * d)?;
        ops::embed(&self.w.wte, &tokens, &mut self.s.x)?;
        self.s.proj.fit(t * d)?;
        ops::embed(&self.w.wpe, &positions, &mut self.s.proj)?;
        ops::add_inplace(&mut self.s.x, &self.s.proj)?;
        let n_layers = p.n_layer;
        for layer in 0..n_layers {
            self.block(layer, &segs, &lens)?;
        }
        let lens = self.logits(&segs, want)?;
        for s in &segs {
            self.cache.commit(s.slot, s.len)?;
        }
        Ok(lens)
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
        self.s.x.fit(t * d)?;
        self.s.x.write(0, x)?;
        let run = self.block(layer, &segs, &[t]);
        self.cache.clear(0);
        run?;
        x.copy_from_slice(&self.s.x.read(0..t * d)?);
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
        prefetch_kv(&self.cache, layer, segs);
        s.xn.fit(t * d)?;
        ops::layernorm(&s.x, &l.ln1.0, &l.ln1.1, eps, &mut s.xn)?;
        s.qkv.fit(t * 3 * d)?;
        ops::linear_batch(&s.xn, lens, &[&l.w_qkv], &mut s.qkv)?;
        ops::add_bias_rows(&mut s.qkv, &l.b_qkv)?;
        for seg in segs {
            let col = |c0| Rows {
                at: seg.offset * 3 * d + c0,
                stride: 3 * d,
                count: seg.len,
            };
            self.cache
                .write_rows(seg.slot, layer, seg.row, &s.qkv, col(d), col(2 * d))?;
        }
        // Attention reads Q in place: the first d values of each row.
        s.attn.fit(t * d)?;
        attend(
            &self.cache,
            layer,
            segs,
            (&s.qkv, 3 * d),
            p.n_head,
            &mut s.attn,
        )?;
        s.proj.fit(t * d)?;
        ops::linear_batch(&s.attn, lens, &[&l.w_o], &mut s.proj)?;
        ops::add_bias_rows(&mut s.proj, &l.b_o)?;
        ops::add_inplace(&mut s.x, &s.proj)?;

        // MLP: x += W_proj · gelu(W_fc · LN2(x) + b_fc) + b_proj
        ops::layernorm(&s.x, &l.ln2.0, &l.ln2.1, eps, &mut s.xn)?;
        s.h.fit(t * 4 * d)?;
        ops::linear_batch(&s.xn, lens, &[&l.w_fc], &mut s.h)?;
        ops::add_bias_rows(&mut s.h, &l.b_fc)?;
        ops::gelu_tanh_inplace(&mut s.h)?;
        ops::linear_batch(&s.h, lens, &[&l.w_proj], &mut s.proj)?;
        ops::add_bias_rows(&mut s.proj, &l.b_proj)?;
        ops::add_inplace(&mut s.x, &s.proj)?;
        Ok(())
    }
    // ANCHOR_END: gpt2_block

    /// Final LayerNorm and the tied head (`wte`) for the requested rows.
    fn logits(&mut self, segs: &[Segment], want: LogitsFor) -> Result<Vec<usize>, ArchError> {
        let p = &self.w.params;
        let (d, vocab) = (p.n_embd, p.vocab_size);
        let (rows, lens) = logit_rows(segs, want);
        self.s.proj.fit(rows.len() * d)?;
        ops::gather_rows(&self.s.x, d, &rows, &mut self.s.proj)?;
        self.s.xn.fit(rows.len() * d)?;
        let (g, b) = &self.w.ln_f;
        ops::layernorm(&self.s.proj, g, b, p.layer_norm_epsilon, &mut self.s.xn)?;
        let out = &mut self.s.logits;
        out.fit(rows.len() * vocab)?;
        ops::linear_batch(&self.s.xn, &lens, &[&self.w.wte], out)?;
        Ok(lens)
    }
}
