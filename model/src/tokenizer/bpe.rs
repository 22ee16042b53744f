//! Byte-pair encoding of one pre-tokenized piece.
//!
//! Start from one token per byte; repeatedly merge the adjacent pair whose
//! merge rule has the lowest rank (the earliest learned), the leftmost such
//! pair first, until no adjacent pair has a rule.
//!
//! [`bpe`] is the plain version: it rescans the whole piece after every
//! merge, O(n²), fine for words. [`bpe_heap`] gives the same result in
//! O(n log n) with a linked list of symbols and a min-heap of candidate
//! pairs, so a megabyte with no spaces cannot stall the tokenizer. A
//! property test keeps the two equal.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// Merge rules: `(left id, right id) -> (rank, merged id)`.
#[derive(Debug, Clone, Default)]
pub struct Merges {
    rules: HashMap<(u32, u32), (u32, u32)>,
}

impl Merges {
    /// An empty rule set.
    pub fn new() -> Self {
        Merges::default()
    }

    /// Add a rule; earlier ranks win. A repeated pair keeps its first rank.
    pub fn insert(&mut self, left: u32, right: u32, rank: u32, merged: u32) {
        self.rules.entry((left, right)).or_insert((rank, merged));
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rule for a pair, if any.
    pub fn get(&self, left: u32, right: u32) -> Option<(u32, u32)> {
        self.rules.get(&(left, right)).copied()
    }
}

#[cfg(not(feature = "mutant-bpe-leftmost-first"))]
// ANCHOR: bpe_merge
/// Apply the merges to a sequence of token ids (one per byte at the start).
pub fn bpe(mut ids: Vec<u32>, merges: &Merges) -> Vec<u32> {
    loop {
        // Find the lowest-ranked mergeable pair; ties go to the leftmost.
        let mut best: Option<(u32, usize, u32)> = None; // (rank, position, merged id)
        for (i, pair) in ids.windows(2).enumerate() {
            if let Some((rank, merged)) = merges.get(pair[0], pair[1])
                && best.is_none_or(|(r, _, _)| rank < r)
            {
                best = Some((rank, i, merged));
            }
        }
        let Some((_, i, merged)) = best else {
            return ids;
        };
        ids[i] = merged;
        ids.remove(i + 1);
    }
}
// ANCHOR_END: bpe_merge

/// Mutant twin of [`bpe`]: merges the leftmost pair that has any rule,
/// whatever its rank.
#[cfg(feature = "mutant-bpe-leftmost-first")]
pub fn bpe(mut ids: Vec<u32>, merges: &Merges) -> Vec<u32> {
    loop {
        let mut best: Option<(u32, usize, u32)> = None;
        for (i, pair) in ids.windows(2).enumerate() {
            if let Some((rank, merged)) = merges.get(pair[0], pair[1])
                && best.is_none()
            {
                best = Some((rank, i, merged));
            }
        }
        let Some((_, i, merged)) = best else {
            return ids;
        };
        ids[i] = merged;
        ids.remove(i + 1);
    }
}

/// One symbol of the linked list used by [`bpe_heap`].
#[derive(Clone, Copy)]
struct Symbol {
    id: u32,
    prev: Option<usize>,
    next: Option<usize>,
}

/// The same result as [`bpe`] in O(n log n).
///
/// The heap holds `(rank, position, left id, right id)` for adjacent pairs
/// that have a rule; positions are the left symbol's original index, which
/// increases along the list, so the smallest entry is the leftmost pair of
/// lowest rank. Entries made stale by earlier merges are detected (the
/// symbols there no longer have those ids) and skipped.
pub fn bpe_heap(ids: Vec<u32>, merges: &Merges) -> Vec<u32> {
    if ids.len() < 2 {
        return ids;
    }
    let n = ids.len();
    let mut syms: Vec<Symbol> = ids
        .iter()
        .enumerate()
        .map(|(i, &id)| Symbol {
            id,
            prev: i.checked_sub(1),
            next: (i + 1 < n).then_some(i + 1),
        })
        .collect();
    let mut alive = vec![true; n];
    let mut heap = BinaryHeap::new();
    let push =
        |heap: &mut BinaryHeap<Reverse<(u32, usize, u32, u32)>>, pos: usize, l: u32, r: u32| {
            if let Some((rank, _)) = merges.get(l, r) {
                heap.push(Reverse((rank, pos, l, r)));
            }
        };
    for i in 0..n - 1 {
        push(&mut heap, i, ids[i], ids[i + 1]);
    }
    while let Some(Reverse((_, pos, l, r))) = heap.pop() {
        let Some(next) = syms[pos].next else { continue };
        if !alive[pos] || syms[pos].id != l || syms[next].id != r {
            continue; // stale
        }
        let Some((_, merged)) = merges.get(l, r) else {
            continue;
        };
        // Merge `next` into `pos`.
        syms[pos].id = merged;
        alive[next] = false;
        syms[pos].next = syms[next].next;
        if let Some(after) = syms[next].next {
            syms[after].prev = Some(pos);
        }
        if let Some(before) = syms[pos].prev {
            push(&mut heap, before, syms[before].id, merged);
        }
        if let Some(after) = syms[pos].next {
            push(&mut heap, pos, merged, syms[after].id);
        }
    }
    let mut out = Vec::new();
    let mut at = Some(0); // symbol 0 is never merged away (it is always a left side)
    while let Some(i) = at {
        out.push(syms[i].id);
        at = syms[i].next;
    }
    out
}

/// The same merging as [`bpe`], recording the sequence after every merge
/// together with the rank of the rule applied (for teaching and debugging).
pub fn bpe_steps(mut ids: Vec<u32>, merges: &Merges) -> Vec<(u32, Vec<u32>)> {
    let mut steps = Vec::new();
    loop {
        let mut best: Option<(u32, usize, u32)> = None;
        for (i, pair) in ids.windows(2).enumerate() {
            if let Some((rank, merged)) = merges.get(pair[0], pair[1])
                && best.is_none_or(|(r, _, _)| rank < r)
            {
                best = Some((rank, i, merged));
            }
        }
        let Some((rank, i, merged)) = best else {
            return steps;
        };
        ids[i] = merged;
        ids.remove(i + 1);
        steps.push((rank, ids.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_by_rank_not_position() {
        // ids: a=0 b=1 c=2; rules: (b,c)->bc=3 rank 0, (a,b)->ab=4 rank 1, (a,bc)->abc=5 rank 2
        let mut m = Merges::new();
        m.insert(1, 2, 0, 3);
        m.insert(0, 1, 1, 4);
        m.insert(0, 3, 2, 5);
        assert_eq!(bpe(vec![0, 1, 2], &m), vec![5]);
        assert_eq!(
            bpe_steps(vec![0, 1, 2], &m),
            vec![(0, vec![0, 3]), (2, vec![5])]
        );
        assert_eq!(bpe(vec![0, 1, 0, 1], &m), vec![4, 4]);
        assert_eq!(bpe(vec![2, 0], &m), vec![2, 0]);
        assert_eq!(bpe(vec![], &m), Vec::<u32>::new());
    }

    // The heap version's agreement with the plain one on random tables is
    // the property test `plain_bpe_equals_heap_bpe` in model/tests.

    #[test]
    fn long_run_is_fast_and_equal() {
        let mut m = Merges::new();
        m.insert(0, 0, 0, 1);
        m.insert(1, 1, 1, 2);
        let ids = vec![0u32; 1500];
        assert_eq!(bpe_heap(ids.clone(), &m), bpe(ids, &m));
    }

    #[test]
    fn equal_ranks_merge_leftmost_first() {
        // (a,a) -> aa; "aaa" is "aa" + "a", not "a" + "aa".
        let mut m = Merges::new();
        m.insert(0, 0, 0, 1);
        assert_eq!(bpe(vec![0, 0, 0], &m), vec![1, 0]);
    }
}
