//! The real models behind [`decode::LanguageModel`], the trait every
//! decoding strategy drives.

use decode::{LanguageModel, ModelError};

use crate::batch::LogitsFor;
use crate::gpt2::Gpt2;
use crate::llama::Llama;

/// A model's greedy choice made where its logits are, when that is a
/// device (`choose`); `None` on the CPU, where the logits are in memory
/// already and the host's choice is the one every other path makes.
fn on_device(
    device: engine::Device,
    choose: impl FnOnce() -> Result<Vec<(u32, f32)>, crate::arch_error::ArchError>,
) -> Result<Option<Vec<(u32, f32)>>, ModelError> {
    if device.is_cpu() {
        return Ok(None);
    }
    Ok(Some(choose()?))
}

impl LanguageModel for Llama {
    fn vocab_size(&self) -> usize {
        self.config().vocab_size
    }

    fn num_slots(&self) -> usize {
        self.cache().n_slots()
    }

    fn max_seq_len(&self) -> usize {
        // With a sliding window the cache never fills; the trained context
        // length is then the honest limit.
        match self.cache().sliding_window() {
            Some(_) => self.config().max_positions.max(self.cache().capacity()),
            None => self.cache().capacity(),
        }
    }

    fn seq_len(&self, slot: usize) -> usize {
        self.cache().next_position(slot)
    }

    fn forward(&mut self, batch: &[(usize, &[u32])]) -> Result<Vec<Vec<f32>>, ModelError> {
        Ok(Llama::forward(self, batch, LogitsFor::Last)?)
    }

    fn forward_stacked(
        &mut self,
        batch: &[(usize, &[u32])],
        out: &mut Vec<f32>,
    ) -> Result<(), ModelError> {
        Ok(Llama::forward_stacked(self, batch, out)?)
    }

    fn forward_all(&mut self, slot: usize, tokens: &[u32]) -> Result<Vec<f32>, ModelError> {
        Ok(Llama::forward(self, &[(slot, tokens)], LogitsFor::All)?.remove(0))
    }

    fn forward_greedy(
        &mut self,
        batch: &[(usize, &[u32])],
    ) -> Result<Option<Vec<(u32, f32)>>, ModelError> {
        on_device(self.device(), || Llama::forward_greedy(self, batch))
    }

    fn truncate(&mut self, slot: usize, len: usize) -> Result<(), ModelError> {
        let cache = self.cache_mut();
        // `len` counts tokens; rows differ from positions after an eviction.
        let evicted = cache.next_position(slot) - cache.len(slot);
        Ok(cache.truncate(slot, len.saturating_sub(evicted))?)
    }

    fn reorder(&mut self, sources: &[usize]) -> Result<(), ModelError> {
        Ok(self.cache_mut().reorder(sources)?)
    }

    fn clear(&mut self, slot: usize) {
        self.cache_mut().clear(slot);
    }

    fn intact_len(&self, slot: usize) -> usize {
        // After an eviction the cache holds the first `sink` tokens and a
        // recent window, not a prefix.
        let cache = self.cache();
        if cache.len(slot) == cache.next_position(slot) {
            cache.len(slot)
        } else {
            0
        }
    }

    fn chunking_free(&self) -> bool {
        Llama::chunking_free(self)
    }

    fn for_each_task(&self, n: usize, f: &(dyn Fn(usize) + Sync)) {
        engine::threads::for_each_task(n, f);
    }
}

impl LanguageModel for Gpt2 {
    fn vocab_size(&self) -> usize {
        self.params().vocab_size
    }

    fn num_slots(&self) -> usize {
        self.cache().n_slots()
    }

    fn max_seq_len(&self) -> usize {
        self.cache().capacity()
    }

    fn seq_len(&self, slot: usize) -> usize {
        self.cache().len(slot)
    }

    fn forward(&mut self, batch: &[(usize, &[u32])]) -> Result<Vec<Vec<f32>>, ModelError> {
        Ok(Gpt2::forward(self, batch, LogitsFor::Last)?)
    }

    fn forward_stacked(
        &mut self,
        batch: &[(usize, &[u32])],
        out: &mut Vec<f32>,
    ) -> Result<(), ModelError> {
        Ok(Gpt2::forward_stacked(self, batch, out)?)
    }

    fn forward_all(&mut self, slot: usize, tokens: &[u32]) -> Result<Vec<f32>, ModelError> {
        Ok(Gpt2::forward(self, &[(slot, tokens)], LogitsFor::All)?.remove(0))
    }

    fn forward_greedy(
        &mut self,
        batch: &[(usize, &[u32])],
    ) -> Result<Option<Vec<(u32, f32)>>, ModelError> {
        on_device(self.device(), || Gpt2::forward_greedy(self, batch))
    }

    fn truncate(&mut self, slot: usize, len: usize) -> Result<(), ModelError> {
        Ok(self.cache_mut().truncate(slot, len)?)
    }

    fn reorder(&mut self, sources: &[usize]) -> Result<(), ModelError> {
        Ok(self.cache_mut().reorder(sources)?)
    }

    fn clear(&mut self, slot: usize) {
        self.cache_mut().clear(slot);
    }

    fn for_each_task(&self, n: usize, f: &(dyn Fn(usize) + Sync)) {
        engine::threads::for_each_task(n, f);
    }
}
