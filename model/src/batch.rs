//! Planning one forward call over several sequence slots.
//!
//! A call feeds a list of `(slot, tokens)` entries: one long entry is a
//! prefill, one token per entry is a (batched) decode step. All tokens are
//! stacked into one `[T][d]` activation matrix so every linear layer reads
//! its weights once per call. Attention, too, is one call for the whole
//! batch ([`attend`]), each entry's queries against its own slot of the KV
//! cache.

use engine::device::{Buffer, StepGraphs};

use crate::arch_error::ArchError;
use crate::kv_cache::KvCache;

/// One entry of a batch, placed in the stacked activations and the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// The sequence slot.
    pub slot: usize,
    /// First row of this entry in the stacked `[T][d]` activations.
    pub offset: usize,
    /// Number of new tokens.
    pub len: usize,
    /// Cache row of the first new token.
    pub row: usize,
    /// Absolute position of the first new token.
    pub position: usize,
}

/// Check a batch (distinct slots, non-empty, ids inside the vocabulary),
/// reserve cache rows for every entry, and lay the entries out.
pub fn plan(
    cache: &mut KvCache,
    batch: &[(usize, &[u32])],
    vocab: usize,
) -> Result<Vec<Segment>, ArchError> {
    let mut segs = Vec::with_capacity(batch.len());
    let mut offset = 0;
    for (i, &(slot, tokens)) in batch.iter().enumerate() {
        if batch[..i].iter().any(|&(s, _)| s == slot) {
            return Err(ArchError::DuplicateSlot { slot });
        }
        if tokens.is_empty() {
            return Err(ArchError::EmptyInput { slot });
        }
        if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= vocab) {
            return Err(ArchError::BadToken { token: bad, vocab });
        }
        let r = cache.reserve(slot, tokens.len())?;
        segs.push(Segment {
            slot,
            offset,
            len: tokens.len(),
            row: r.row,
            position: r.position,
        });
        offset += tokens.len();
    }
    Ok(segs)
}

/// Causal attention of every entry of a batch at layer `layer`, in one
/// call to the cache ([`KvCache::attend`]: one hand-off to the thread pool
/// on the host): entry `s`'s queries, rows `s.offset..s.offset + s.len`
/// of the stacked `q` (a buffer and its row stride), against its own slot's keys and values, which
/// already hold its new rows.
///
/// # Errors
/// A slot or layer the cache does not have, buffers that disagree.
pub fn attend(
    cache: &KvCache,
    layer: usize,
    segs: &[Segment],
    q: (&Buffer, usize),
    n_heads: usize,
    out: &mut Buffer,
) -> Result<(), ArchError> {
    let seqs: Vec<(usize, usize, usize)> = segs.iter().map(|s| (s.slot, s.row, s.len)).collect();
    Ok(cache.attend(layer, &seqs, q, n_heads, out)?)
}

// ANCHOR: graph_key
/// The key under which a CUDA graph may replay this forward pass
/// ([`StepGraphs`]): one new token of one sequence whose last logits are
/// wanted, on a cache that does not slide (an eviction copies rows, which a
/// graph does not hold). It names the slot, the cache and `buffers`, every
/// activation buffer the pass uses, so that a buffer that grew (and moved)
/// makes a new key. `None` for any other pass.
pub fn graph_key(
    cache: &KvCache,
    batch: &[(usize, &[u32])],
    want: LogitsFor,
    buffers: &[&Buffer],
) -> Option<u64> {
    let [(slot, tokens)] = batch else {
        return None;
    };
    if tokens.len() != 1 || want != LogitsFor::Last || cache.slides() || cache.device().is_cpu() {
        return None;
    }
    let mut parts = vec![*slot as u64];
    parts.extend(cache.device_addresses());
    parts.extend(buffers.iter().map(|b| b.address()));
    Some(StepGraphs::key(&parts))
}
// ANCHOR_END: graph_key

/// Run `pass` on `model` through the CUDA graphs `graphs(model)` holds
/// ([`StepGraphs::run`], with the key of [`graph_key`]), which are taken out
/// for the call so that the pass may borrow the whole model.
///
/// # Errors
/// The pass's, or the device's launching a graph.
pub fn through_graphs<M, R>(
    model: &mut M,
    graphs: fn(&mut M) -> &mut StepGraphs,
    (device, key): (&engine::Device, Option<u64>),
    mut pass: impl FnMut(&mut M) -> Result<R, ArchError>,
) -> Result<R, ArchError> {
    let mut g = std::mem::take(graphs(model));
    let r = g.run(device, key, || pass(model));
    *graphs(model) = g;
    r
}

/// Which positions of each entry need logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogitsFor {
    /// Only each entry's last position (generation).
    Last,
    /// Every position (tests, perplexity).
    All,
}

/// The stacked rows whose logits `want` asks for (in entry order), and
/// how many of them belong to each entry.
pub fn logit_rows(segs: &[Segment], want: LogitsFor) -> (Vec<usize>, Vec<usize>) {
    let mut rows = Vec::new();
    let mut lens = Vec::with_capacity(segs.len());
    for s in segs {
        let r = match want {
            LogitsFor::Last => s.offset + s.len - 1..s.offset + s.len,
            LogitsFor::All => s.offset..s.offset + s.len,
        };
        lens.push(r.len());
        rows.extend(r);
    }
    (rows, lens)
}

/// Ask for the cache lines where this layer's keys and values of every
/// entry will be written ([`KvCache::prefetch_rows`]), so they arrive while
/// the layer's products run.
pub fn prefetch_kv(cache: &KvCache, layer: usize, segs: &[Segment]) {
    for s in segs {
        cache.prefetch_rows(s.slot, layer, s.row, s.len);
    }
}

/// Split the stacked logits in `out` (`Σ lens` rows of `vocab`) into one
/// vector per entry. A single entry (one sequence decoding) takes the
/// buffer's vector as it is: no copy of its 49k floats per token. Several
/// entries copy their rows out, one task per entry on the engine's
/// threads (eight decode steps' logits are 1.5 MB for SmolLM2, which one
/// thread copying alone kept the others waiting for), and leave the buffer
/// in place for the next step, so a batch's megabytes are not allocated
/// afresh (page by page) every step.
///
/// # Errors
/// The device's error, for logits on a GPU.
pub fn split_logits(
    out: &mut Buffer,
    lens: &[usize],
    vocab: usize,
) -> Result<Vec<Vec<f32>>, engine::EngineError> {
    if lens.len() == 1 {
        return Ok(vec![out.take_host()?]);
    }
    let copied;
    let all = match out.as_host() {
        Some(v) => v,
        None => {
            copied = out.to_host()?;
            &copied
        }
    };
    let starts: Vec<usize> = lens
        .iter()
        .scan(0, |at, n| {
            let s = *at;
            *at += n;
            Some(s * vocab)
        })
        .collect();
    let mut rows: Vec<Vec<f32>> = lens.iter().map(|n| Vec::with_capacity(n * vocab)).collect();
    engine::threads::for_each_chunk_mut(&mut rows, 1, |i, row| {
        let (start, n) = (starts[i], lens[i] * vocab);
        row[0].extend_from_slice(&all[start..start + n]);
    });
    Ok(rows)
}
