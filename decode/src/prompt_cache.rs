//! Prompt caching: when a request ends, its slot keeps its KV cache, and a
//! later request whose prompt starts with the same tokens takes them from
//! there instead of reading them again. A chat client sends the whole
//! conversation with every turn, and an application sends the same system
//! prompt with every request, so most of each prompt is often a prefix
//! some finished request already read. llama.cpp's server calls this
//! prompt caching (`cache_prompt`); vLLM's automatic prefix caching does
//! the same across requests with shared pages.
//!
//! Only whole prefill chunks are reused. The scheduler reads every prompt
//! in chunks of exactly `prefill_chunk` tokens from its first token, and
//! the engine may pick a row's kernel by the length of the chunk the row
//! is in; a row computed inside a whole chunk of an earlier prompt is
//! therefore exactly the row the new request would compute alone in its
//! own whole chunk, and the new request goes on reading from a chunk
//! boundary. So a request gets the same tokens, bit for bit, whether its
//! prefix came from the cache or not.
//!
//! A model can promise more: that a row is the same bits however its
//! sequence was cut into forward calls
//! ([`crate::LanguageModel::chunking_free`]; SmolLM2's 4-bit weights summed
//! by block, as the server runs them). The scheduler then passes a chunk
//! of 1: any shared prefix is reused, and the memory keeps the generated
//! tokens' rows too.

/// What a free slot's cache holds that a new request may reuse.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotMemory {
    /// The slot's first tokens whose rows were computed in whole prefill
    /// chunks of a prompt (a multiple of the chunk size in length).
    tokens: Vec<u32>,
}

impl SlotMemory {
    /// The memory of a request that read `fed` tokens of `prompt` into its
    /// slot, cut to whole chunks (generated tokens may follow them in the
    /// cache; a caller keeps them only for a chunking-free model, by
    /// passing them as part of `prompt` with a chunk of 1).
    pub fn of_request(prompt: &[u32], fed: usize, chunk: usize) -> SlotMemory {
        SlotMemory {
            tokens: prompt[..whole_chunks(fed.min(prompt.len()), chunk)].to_vec(),
        }
    }

    /// The tokens the memory holds.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    // ANCHOR: reusable
    /// How many of `prompt`'s first tokens a request starting in this slot
    /// can take from the cache: the prefix it shares with the memory, cut
    /// to whole chunks, at most `intact` (the tokens the slot's cache still
    /// holds exactly), and always leaving at least one prompt token to
    /// read, since that token's logits choose the first new token.
    pub fn reusable(&self, prompt: &[u32], chunk: usize, intact: usize) -> usize {
        let shared = shared_prefix(&self.tokens, prompt);
        let most = shared.min(intact).min(prompt.len().saturating_sub(1));
        whole_chunks(most, chunk)
    }
    // ANCHOR_END: reusable
}

/// `n` cut down to a multiple of `chunk`.
fn whole_chunks(n: usize, chunk: usize) -> usize {
    n / chunk.max(1) * chunk.max(1)
}

/// How many first tokens `held` and `prompt` have in common.
fn shared_prefix(held: &[u32], prompt: &[u32]) -> usize {
    // A cache written in a hurry: the slot's prompt is taken to be the new
    // one's prefix without looking.
    #[cfg(feature = "mutant-prompt-cache-no-compare")]
    return held.len().min(prompt.len());
    #[cfg(not(feature = "mutant-prompt-cache-no-compare"))]
    held.iter().zip(prompt).take_while(|(a, b)| a == b).count()
}

/// The free slot a request should take: the one whose memory gives the most
/// reusable tokens; among equals, the one with the shortest memory (keeping
/// longer ones for the requests they fit), then the lowest index. `free`
/// lists `(slot, memory, intact tokens)`; returns the slot and the tokens it
/// reuses, or `None` when no slot is free.
pub fn best_slot<'a>(
    free: impl Iterator<Item = (usize, &'a SlotMemory, usize)>,
    prompt: &[u32],
    chunk: usize,
) -> Option<(usize, usize)> {
    free.map(|(slot, mem, intact)| {
        (
            slot,
            mem.reusable(prompt, chunk, intact),
            mem.tokens().len(),
        )
    })
    .min_by_key(|&(slot, reuse, held)| (std::cmp::Reverse(reuse), held, slot))
    .map(|(slot, reuse, _)| (slot, reuse))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_whole_chunks_of_the_shared_prefix_are_reused() {
        let old: Vec<u32> = (0..40).collect();
        // 37 tokens read: whole chunks of 8 cover 32 of them.
        let mem = SlotMemory::of_request(&old, 37, 8);
        assert_eq!(mem.tokens().len(), 32);
        let mut new: Vec<u32> = (0..30).collect();
        new.extend([99, 98, 97, 96, 95]);
        // 30 shared tokens: 24 in whole chunks.
        assert_eq!(mem.reusable(&new, 8, usize::MAX), 24);
        // The cache holds only 20 exactly: 16.
        assert_eq!(mem.reusable(&new, 8, 20), 16);
        // A prompt equal to the memory keeps its last token to read.
        assert_eq!(mem.reusable(&old[..32], 8, usize::MAX), 24);
        assert_eq!(mem.reusable(&old[..33], 8, usize::MAX), 32);
        // Nothing shared, nothing reused.
        assert_eq!(mem.reusable(&[7, 7, 7, 7, 7, 7, 7, 7, 7, 7], 8, 100), 0);
        // Chunks of one (a chunking-free model): every token read is kept,
        // and any shared prefix is reused.
        let mem = SlotMemory::of_request(&old, 37, 1);
        assert_eq!(mem.tokens().len(), 37);
        assert_eq!(mem.reusable(&new, 1, usize::MAX), 30);
        assert_eq!(mem.reusable(&old[..37], 1, usize::MAX), 36);
        assert_eq!(mem.reusable(&old, 1, 33), 33);
    }

    #[test]
    fn the_slot_with_the_most_reuse_wins_then_the_shortest_memory() {
        let a = SlotMemory::of_request(&[1, 2, 3, 4, 5, 6, 7, 8], 8, 2);
        let b = SlotMemory::of_request(&[1, 2, 3, 4, 9, 9, 9, 9], 8, 2);
        let empty = SlotMemory::default();
        let slots = [(0, &b, 99), (1, &a, 99), (2, &empty, 0)];
        let prompt = [1, 2, 3, 4, 5, 6, 0];
        assert_eq!(best_slot(slots.into_iter(), &prompt, 2), Some((1, 6)));
        // No reuse anywhere: the empty slot, whose memory is worth least.
        assert_eq!(best_slot(slots.into_iter(), &[5, 5, 5], 2), Some((2, 0)));
        assert_eq!(best_slot(std::iter::empty(), &prompt, 2), None);
    }
}
