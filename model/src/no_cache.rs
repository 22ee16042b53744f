//! The no-cache mode: recompute the whole prefix at every step.
//!
//! [`Recompute`] wraps any cached model and throws its cache away before
//! every call, feeding the full token history instead. The logits are the
//! same (up to float rounding); the cost of step `n` grows with `n`. It
//! exists to measure what the KV cache buys and to test that the cache is
//! exact.

use decode::{LanguageModel, ModelError};

/// A model that forgets its KV cache before every call.
pub struct Recompute {
    inner: Box<dyn LanguageModel>,
    history: Vec<Vec<u32>>,
}

impl Recompute {
    /// Wrap `inner` (its slots should be empty).
    pub fn new(inner: Box<dyn LanguageModel>) -> Self {
        let history = vec![Vec::new(); inner.num_slots()];
        Self { inner, history }
    }

    /// The wrapped model.
    pub fn into_inner(self) -> Box<dyn LanguageModel> {
        self.inner
    }

    fn check(&self, slot: usize) -> Result<(), ModelError> {
        if slot < self.history.len() {
            Ok(())
        } else {
            Err(format!(
                "recompute: slot {slot} out of range ({} slots)",
                self.history.len()
            )
            .into())
        }
    }
}

impl LanguageModel for Recompute {
    fn vocab_size(&self) -> usize {
        self.inner.vocab_size()
    }

    fn num_slots(&self) -> usize {
        self.history.len()
    }

    fn max_seq_len(&self) -> usize {
        self.inner.max_seq_len()
    }

    fn seq_len(&self, slot: usize) -> usize {
        self.history.get(slot).map_or(0, Vec::len)
    }

    // ANCHOR: recompute_forward
    fn forward(&mut self, batch: &[(usize, &[u32])]) -> Result<Vec<Vec<f32>>, ModelError> {
        for &(slot, _) in batch {
            self.check(slot)?;
        }
        let full: Vec<Vec<u32>> = batch
            .iter()
            .map(|&(slot, toks)| {
                let mut h = self.history[slot].clone();
                h.extend_from_slice(toks);
                h
            })
            .collect();
        for &(slot, _) in batch {
            self.inner.clear(slot);
        }
        let entries: Vec<(usize, &[u32])> = batch
            .iter()
            .zip(&full)
            .map(|(&(s, _), h)| (s, h.as_slice()))
            .collect();
        let out = self.inner.forward(&entries)?;
        for (&(slot, _), h) in batch.iter().zip(full) {
            self.history[slot] = h;
        }
        Ok(out)
    }
    // ANCHOR_END: recompute_forward

    fn truncate(&mut self, slot: usize, len: usize) -> Result<(), ModelError> {
        self.check(slot)?;
        let h = &mut self.history[slot];
        if len > h.len() {
            return Err(format!(
                "recompute: cannot truncate slot {slot} to {len}, it holds {}",
                h.len()
            )
            .into());
        }
        h.truncate(len);
        Ok(())
    }

    fn reorder(&mut self, sources: &[usize]) -> Result<(), ModelError> {
        for &s in sources {
            self.check(s)?;
        }
        if sources.len() > self.history.len() {
            return Err(format!(
                "recompute: {} sources for {} slots",
                sources.len(),
                self.history.len()
            )
            .into());
        }
        let old = self.history.clone();
        for (i, &s) in sources.iter().enumerate() {
            self.history[i] = old[s].clone();
        }
        Ok(())
    }

    fn clear(&mut self, slot: usize) {
        if let Some(h) = self.history.get_mut(slot) {
            h.clear();
        }
        self.inner.clear(slot);
    }
}
