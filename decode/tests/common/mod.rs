//! Shared helpers for decode's integration tests (included with `mod common;`).
#![allow(dead_code)]

use decode::toy::{FnModel, bigram_model};

/// A random-looking but deterministic bigram table of size `v × v`.
pub fn table(v: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..v)
        .map(|_| {
            (0..v)
                .map(|_| {
                    s = s
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((s >> 33) as f32 / (1u64 << 31) as f32) * 8.0 - 4.0
                })
                .collect()
        })
        .collect()
}

/// A bigram toy model over `table(v, seed)`.
pub fn model(v: usize, seed: u64, slots: usize) -> FnModel<impl Fn(&[u32]) -> Vec<f32>> {
    bigram_model(table(v, seed), slots, 256)
}

/// A detokenizer whose token `i` is the single letter `'a' + i`.
pub fn letters(v: usize) -> Vec<Vec<u8>> {
    (0..v).map(|i| vec![b'a' + i as u8]).collect()
}

/// A toy model whose logits depend on every token so far (the row of
/// `table(v, seed)` that a hash of the whole history picks), for tests in
/// which a wrong cached prefix must change the output.
pub fn history_model(v: usize, seed: u64, slots: usize) -> FnModel<impl Fn(&[u32]) -> Vec<f32>> {
    let t = table(v, seed);
    FnModel::new(v, slots, 256, move |toks: &[u32]| {
        let h = toks.iter().fold(17u64, |h, &x| {
            h.wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .wrapping_add(u64::from(x) + 1)
        });
        t[((h >> 32) % v as u64) as usize].clone()
    })
}
