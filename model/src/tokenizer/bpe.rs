//! Byte-pair encoding of one pre-tokenized piece.
//!
//! Start from one token per byte; repeatedly merge the adjacent pair whose
//! merge rule has the lowest rank (the earliest learned), the leftmost such
//! pair first, until no adjacent pair has a rule.

use std::collections::HashMap;

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

    #[test]
    fn equal_ranks_merge_leftmost_first() {
        // (a,a) -> aa; "aaa" is "aa" + "a", not "a" + "aa".
        let mut m = Merges::new();
        m.insert(0, 0, 0, 1);
        assert_eq!(bpe(vec![0, 0, 0], &m), vec![1, 0]);
    }
}
