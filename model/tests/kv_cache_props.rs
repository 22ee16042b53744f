//! Properties of the KV cache's slot moves (chapter 5).

use model::kv_cache::{KvCache, KvShape};
use proptest::prelude::*;

const SHAPE: KvShape = KvShape {
    n_layers: 2,
    n_kv_heads: 2,
    head_dim: 3,
};
const CAPACITY: usize = 6;

/// Fill slot `slot` with `n` rows whose every value names the slot, the
/// layer and the row (negated for V), so any copy from a wrong slot shows.
fn fill(c: &mut KvCache, slot: usize, n: usize) {
    let w = SHAPE.n_kv_heads * SHAPE.head_dim;
    let layer = |l: usize, sign: f32| -> Vec<f32> {
        (0..n * w)
            .map(|i| sign * (1000 * (slot + 1) + 100 * l + i) as f32)
            .collect()
    };
    let ks: Vec<Vec<f32>> = (0..SHAPE.n_layers).map(|l| layer(l, 1.0)).collect();
    let vs: Vec<Vec<f32>> = (0..SHAPE.n_layers).map(|l| layer(l, -1.0)).collect();
    let kr: Vec<&[f32]> = ks.iter().map(|x| x.as_slice()).collect();
    let vr: Vec<&[f32]> = vs.iter().map(|x| x.as_slice()).collect();
    c.append(slot, &kr, &vr).unwrap();
}

/// What a reader can see of one slot: its length and its live K and V rows.
fn snapshot(c: &KvCache, slot: usize) -> (usize, Vec<Vec<f32>>) {
    let len = c.len(slot);
    let hd = SHAPE.head_dim;
    let mut rows = Vec::new();
    for layer in 0..SHAPE.n_layers {
        for kv in [c.keys(slot, layer).unwrap(), c.values(slot, layer).unwrap()] {
            for h in 0..SHAPE.n_kv_heads {
                let start = h * CAPACITY * hd;
                rows.push(kv[start..start + len * hd].to_vec());
            }
        }
    }
    (len, rows)
}

fn lens_and_sources() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    (1usize..6).prop_flat_map(|n_slots| {
        (
            prop::collection::vec(1usize..=CAPACITY, n_slots),
            prop::collection::vec(0..n_slots, 0..=n_slots),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    // ANCHOR: prop_reorder
    /// After `reorder(sources)`, slot `i` holds exactly what slot
    /// `sources[i]` held before (length and every live K/V row), and slots
    /// past `sources.len()` are unchanged: whatever permutation, duplication
    /// or cycle the sources form.
    #[test]
    fn reorder_moves_whole_slots((lens, sources) in lens_and_sources()) {
        let mut c = KvCache::new(SHAPE, CAPACITY, lens.len()).unwrap();
        for (slot, &n) in lens.iter().enumerate() {
            fill(&mut c, slot, n);
        }
        let before: Vec<_> = (0..lens.len()).map(|s| snapshot(&c, s)).collect();
        c.reorder(&sources).unwrap();
        for i in 0..lens.len() {
            let want = sources.get(i).map_or(i, |&s| s);
            prop_assert_eq!(&snapshot(&c, i), &before[want], "slot {} should hold old slot {}", i, want);
        }
    }
    // ANCHOR_END: prop_reorder
}
