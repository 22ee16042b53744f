//! Toy language models with known distributions, for tests and the book.
//!
//! A toy model's "KV cache" is simply the list of tokens each slot holds;
//! its logits are a pure function of that list. It counts how many tokens
//! it was fed, so tests can check that beam search never recomputes a prefix.

use crate::lm::{LanguageModel, ModelError};

/// A model whose next-token logits are `f(tokens so far)`.
pub struct FnModel<F: Fn(&[u32]) -> Vec<f32>> {
    f: F,
    vocab: usize,
    slots: Vec<Vec<u32>>,
    max_seq_len: usize,
    /// Total number of tokens passed to `forward` so far.
    pub tokens_fed: usize,
    /// Number of `forward` calls so far.
    pub forward_calls: usize,
    /// What [`LanguageModel::chunking_free`] answers (false unless set with
    /// [`FnModel::with_chunking_free`]; the logits depend on the tokens alone,
    /// so either answer is true of this model).
    chunking_free: bool,
}

impl<F: Fn(&[u32]) -> Vec<f32>> FnModel<F> {
    /// A model with `vocab` tokens and `num_slots` slots of `max_seq_len` tokens.
    pub fn new(vocab: usize, num_slots: usize, max_seq_len: usize, f: F) -> Self {
        FnModel {
            f,
            vocab,
            slots: vec![Vec::new(); num_slots],
            max_seq_len,
            tokens_fed: 0,
            forward_calls: 0,
            chunking_free: false,
        }
    }

    /// This model, declaring itself [chunking-free](LanguageModel::chunking_free),
    /// as a real model with row-by-row arithmetic does: a prompt cache then
    /// reuses any shared prefix.
    pub fn with_chunking_free(mut self) -> Self {
        self.chunking_free = true;
        self
    }

    /// The tokens slot `slot` holds.
    pub fn slot_tokens(&self, slot: usize) -> &[u32] {
        &self.slots[slot]
    }
}

fn err(msg: String) -> ModelError {
    msg.into()
}

impl<F: Fn(&[u32]) -> Vec<f32>> LanguageModel for FnModel<F> {
    fn vocab_size(&self) -> usize {
        self.vocab
    }
    fn num_slots(&self) -> usize {
        self.slots.len()
    }
    fn max_seq_len(&self) -> usize {
        self.max_seq_len
    }
    fn seq_len(&self, slot: usize) -> usize {
        self.slots.get(slot).map_or(0, |s| s.len())
    }
    fn chunking_free(&self) -> bool {
        self.chunking_free
    }
    fn forward(&mut self, batch: &[(usize, &[u32])]) -> Result<Vec<Vec<f32>>, ModelError> {
        self.forward_calls += 1;
        let mut out = Vec::with_capacity(batch.len());
        for &(slot, toks) in batch {
            let n = self.slots.len();
            let s = self
                .slots
                .get_mut(slot)
                .ok_or_else(|| err(format!("toy forward: slot {slot} of {n}")))?;
            if toks.is_empty() || s.len() + toks.len() > self.max_seq_len {
                return Err(err(format!(
                    "toy forward: {} tokens into a slot holding {} of {}",
                    toks.len(),
                    s.len(),
                    self.max_seq_len
                )));
            }
            s.extend_from_slice(toks);
            self.tokens_fed += toks.len();
            let row = (self.f)(s);
            out.push(row);
        }
        Ok(out)
    }
    fn truncate(&mut self, slot: usize, len: usize) -> Result<(), ModelError> {
        let s = self
            .slots
            .get_mut(slot)
            .ok_or_else(|| err(format!("toy truncate: slot {slot}")))?;
        s.truncate(len);
        Ok(())
    }
    fn reorder(&mut self, sources: &[usize]) -> Result<(), ModelError> {
        let old = self.slots.clone();
        for (i, &src) in sources.iter().enumerate() {
            let from = old
                .get(src)
                .ok_or_else(|| err(format!("toy reorder: source slot {src}")))?;
            let to = self
                .slots
                .get_mut(i)
                .ok_or_else(|| err(format!("toy reorder: target slot {i}")))?;
            *to = from.clone();
        }
        Ok(())
    }
    fn clear(&mut self, slot: usize) {
        if let Some(s) = self.slots.get_mut(slot) {
            s.clear();
        }
    }
}

/// A bigram model: the logits after token `t` are row `t` of a table
/// (`table.len()` = vocabulary size, each row of that length).
pub fn bigram_model(
    table: Vec<Vec<f32>>,
    num_slots: usize,
    max_seq_len: usize,
) -> FnModel<impl Fn(&[u32]) -> Vec<f32>> {
    let vocab = table.len();
    FnModel::new(vocab, num_slots, max_seq_len, move |toks: &[u32]| {
        let last = *toks.last().unwrap_or(&0) as usize;
        table[last.min(table.len() - 1)].clone()
    })
}

/// The "greedy trap": vocabulary `{0: start, 1: A, 2: B, 3: C, 4: EOS, 5..: filler}`.
/// After the start token, A has probability 0.5 and B 0.4 (rest spread);
/// after A the next token is spread evenly over the fillers (each ≤ 0.1);
/// after B, C follows with probability 0.9. Greedy picks A then a filler
/// (≤ 0.05); the best two-token sequence is B C (0.36), which a beam of
/// width ≥ 2 finds. Everything after that goes to EOS.
pub fn greedy_trap_model(num_slots: usize) -> FnModel<impl Fn(&[u32]) -> Vec<f32>> {
    const V: usize = 16;
    let probs = move |toks: &[u32]| -> Vec<f32> {
        let mut p = [1e-4f32; V];
        match toks.last().copied().unwrap_or(0) {
            0 => {
                p[1] = 0.5;
                p[2] = 0.4;
            }
            1 => {
                for x in p.iter_mut().skip(5) {
                    *x = 0.09;
                }
            }
            2 => p[3] = 0.9,
            _ => p[4] = 0.9,
        }
        let s: f32 = p.iter().sum();
        p.iter().map(|x| (x / s).ln()).collect()
    };
    FnModel::new(V, num_slots, 64, probs)
}
