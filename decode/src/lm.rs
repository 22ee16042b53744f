//! The small language-model trait every decoding strategy drives.
//!
//! A model holds a fixed number of *sequence slots*, each with its own
//! KV cache. Strategies feed tokens to slots and get back the logits of
//! each slot's last position; beam search rearranges slots with
//! [`LanguageModel::reorder`] instead of recomputing prefixes.

/// Error raised by a model behind the trait (boxed so that `decode` never
/// names a concrete model's error type).
pub type ModelError = Box<dyn std::error::Error + Send + Sync + 'static>;

// ANCHOR: trait
/// A causal language model with per-slot cached state.
pub trait LanguageModel {
    /// Size of the vocabulary: the length of every logits row.
    fn vocab_size(&self) -> usize;

    /// Number of sequence slots this model was built with.
    fn num_slots(&self) -> usize;

    /// Longest sequence (prompt plus generated tokens) a slot can hold.
    fn max_seq_len(&self) -> usize;

    /// Number of tokens currently cached in `slot`.
    fn seq_len(&self, slot: usize) -> usize;

    /// Append `tokens` to each listed slot (one entry per distinct slot; a
    /// prompt may be many tokens, a decode step is one) and return, in the
    /// same order, the logits of the last position of each entry.
    fn forward(&mut self, batch: &[(usize, &[u32])]) -> Result<Vec<Vec<f32>>, ModelError>;

    /// [`LanguageModel::forward`] with the entries' logits stacked in
    /// `out`, entry `i`'s row at `i × vocab`, so that a batch's rows need
    /// not be copied out one vector each. A model may swap `out` with a
    /// buffer of its own (keeping `out`'s allocation for its next call), so
    /// whatever `out` held before is not kept. The default copies
    /// `forward`'s rows.
    fn forward_stacked(
        &mut self,
        batch: &[(usize, &[u32])],
        out: &mut Vec<f32>,
    ) -> Result<(), ModelError> {
        let rows = self.forward(batch)?;
        out.clear();
        for row in &rows {
            out.extend_from_slice(row);
        }
        Ok(())
    }

    /// Append `tokens` to `slot` and return the logits of *every* new
    /// position, `tokens.len() × vocab` (what perplexity scoring needs).
    /// The default feeds one token at a time; models override it with one
    /// batched pass.
    fn forward_all(&mut self, slot: usize, tokens: &[u32]) -> Result<Vec<f32>, ModelError> {
        let mut out = Vec::with_capacity(tokens.len() * self.vocab_size());
        for t in tokens {
            out.extend(self.forward(&[(slot, std::slice::from_ref(t))])?.remove(0));
        }
        Ok(out)
    }

    /// Like [`LanguageModel::forward`], but hand back each entry's greedy
    /// choice instead of its logits: the id of the largest logit (the first
    /// on ties) and that token's log-probability (NaN when the logits held
    /// NaN or `+inf`). `None`, having done nothing, when the model has no
    /// cheaper way than the logits: the default, and a model on the CPU,
    /// whose logits are in memory already. A model on a GPU chooses there
    /// and sends back two numbers per entry instead of the vocabulary's
    /// logits.
    fn forward_greedy(
        &mut self,
        batch: &[(usize, &[u32])],
    ) -> Result<Option<Vec<(u32, f32)>>, ModelError> {
        let _ = batch;
        Ok(None)
    }

    /// Roll `slot` back to its first `len` tokens.
    fn truncate(&mut self, slot: usize, len: usize) -> Result<(), ModelError>;

    /// Rearrange slots: afterwards slot `i` holds what slot `sources[i]`
    /// held before (a slot may be copied to several places). Slots not
    /// listed (`i >= sources.len()`) are left as they are.
    fn reorder(&mut self, sources: &[usize]) -> Result<(), ModelError>;

    /// Forget everything in `slot`.
    fn clear(&mut self, slot: usize);

    /// How many of `slot`'s first tokens its cache still holds exactly, so
    /// that [`LanguageModel::truncate`] to that length or less keeps a true
    /// prefix: all of them ([`LanguageModel::seq_len`]) unless the cache
    /// has evicted positions to make room.
    fn intact_len(&self, slot: usize) -> usize {
        self.seq_len(slot)
    }

    /// True when every position's cached state, and every result after
    /// it, is the same bits however the tokens before it were cut into
    /// [`LanguageModel::forward`] calls (one at a time, or in chunks of any
    /// size). A prompt cache may then reuse a shared prefix of any length,
    /// generated tokens included, instead of whole prefill chunks only
    /// ([`crate::prompt_cache`]). The default, false, is always safe.
    fn chunking_free(&self) -> bool {
        false
    }

    /// Run `f(0)`, …, `f(n − 1)`, each once, in any order and possibly at
    /// once on the model's own threads: the per-sequence work of a step
    /// (choosing each sequence's token) while the model's threads would
    /// otherwise wait. The default runs them in turn.
    fn for_each_task(&self, n: usize, f: &(dyn Fn(usize) + Sync)) {
        (0..n).for_each(f);
    }
}
// ANCHOR_END: trait

/// A boxed model is a model (so a scheduler can own a `Box<dyn LanguageModel>`).
impl<T: LanguageModel + ?Sized> LanguageModel for Box<T> {
    fn vocab_size(&self) -> usize {
        (**self).vocab_size()
    }
    fn num_slots(&self) -> usize {
        (**self).num_slots()
    }
    fn max_seq_len(&self) -> usize {
        (**self).max_seq_len()
    }
    fn seq_len(&self, slot: usize) -> usize {
        (**self).seq_len(slot)
    }
    fn forward(&mut self, batch: &[(usize, &[u32])]) -> Result<Vec<Vec<f32>>, ModelError> {
        (**self).forward(batch)
    }
    fn forward_stacked(
        &mut self,
        batch: &[(usize, &[u32])],
        out: &mut Vec<f32>,
    ) -> Result<(), ModelError> {
        (**self).forward_stacked(batch, out)
    }
    fn forward_all(&mut self, slot: usize, tokens: &[u32]) -> Result<Vec<f32>, ModelError> {
        (**self).forward_all(slot, tokens)
    }
    fn forward_greedy(
        &mut self,
        batch: &[(usize, &[u32])],
    ) -> Result<Option<Vec<(u32, f32)>>, ModelError> {
        (**self).forward_greedy(batch)
    }
    fn truncate(&mut self, slot: usize, len: usize) -> Result<(), ModelError> {
        (**self).truncate(slot, len)
    }
    fn reorder(&mut self, sources: &[usize]) -> Result<(), ModelError> {
        (**self).reorder(sources)
    }
    fn clear(&mut self, slot: usize) {
        (**self).clear(slot)
    }
    fn intact_len(&self, slot: usize) -> usize {
        (**self).intact_len(slot)
    }
    fn chunking_free(&self) -> bool {
        (**self).chunking_free()
    }
    fn for_each_task(&self, n: usize, f: &(dyn Fn(usize) + Sync)) {
        (**self).for_each_task(n, f)
    }
}
