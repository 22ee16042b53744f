//! Sampling one token from a 49,152-token row (SmolLM2's vocabulary):
//! the exponentials, the walk to a uniform point against the block search
//! that finds the walk's token, and the whole draw with its
//! log-probability.
//!
//! `cargo bench -p decode --bench sampling`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};

/// Logits spread as a model's are: most far below the top few.
fn logits(n: usize) -> Vec<f32> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    (0..n).map(|_| rng.gen_range(-12.0f32..8.0)).collect()
}

fn sampling(c: &mut Criterion) {
    let mut g = c.benchmark_group("sample_49152");
    let x = logits(49_152);
    let wt = decode::probs::weights(&x);
    // Uniform points over the total, as the draws give them.
    let points: Vec<f64> = (0..64)
        .map(|k| wt.total * (k as f64 + 0.5) / 64.0)
        .collect();
    g.bench_function("weights", |b| {
        b.iter(|| decode::probs::weights(black_box(&x)))
    });
    g.bench_function("walk_64_points", |b| {
        b.iter(|| {
            points
                .iter()
                .map(|&u| decode::sample::walk(black_box(&wt.w), u))
                .sum::<u32>()
        })
    });
    g.bench_function("token_at_64_points", |b| {
        b.iter(|| {
            points
                .iter()
                .map(|&u| decode::sample::token_at(black_box(&wt.w), wt.total, u))
                .sum::<u32>()
        })
    });
    let mut rng = decode::seeded_rng(7, 0);
    g.bench_function("sample_with_logprob", |b| {
        b.iter(|| decode::sample_with_logprob(black_box(&x), &mut rng))
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1500))
}

criterion_group! { name = benches; config = config(); targets = sampling }
criterion_main!(benches);
