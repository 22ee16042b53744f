//! Kernel benchmarks: matmul GFLOP/s, matvec GB/s against a plain streaming
//! read in the same run, what a batch of decode steps costs per token (one
//! matrix in cache, and many streamed from the L3 or from memory),
//! softmax / RMSNorm scalar vs SIMD, decode attention.
//!
//! `cargo bench -p engine --bench kernels`. Criterion's "elem/s" for the
//! matmul groups are FLOP/s (2·m·n·k per product); "B/s" for the matvec and
//! stream groups is bytes of matrix read per second.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use engine::kernels::{self, AttnDims, scalar};
use rand::{Rng, SeedableRng};

/// Matrices on cache lines, as `infer` holds them (`engine::alloc`).
#[global_allocator]
static ALLOC: engine::alloc::LineAligned = engine::alloc::LineAligned;

fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| rng.gen_range(-1.0f32..1.0)).collect()
}

fn matmul(c: &mut Criterion) {
    let mut g = c.benchmark_group("matmul_f32");
    for n in [768usize, 1024] {
        let (a, b) = (random(n * n, 1), random(n * n, 2));
        let mut out = vec![0.0; n * n];
        g.throughput(Throughput::Elements(2 * (n * n * n) as u64));
        g.bench_function(BenchmarkId::from_parameter(format!("{n}^3")), |bch| {
            bch.iter(|| kernels::matmul(black_box(&a), black_box(&b), n, n, n, &mut out))
        });
    }
    g.finish();
}

fn matvec(c: &mut Criterion) {
    let mut g = c.benchmark_group("matvec");
    for (rows, cols) in [(49152usize, 576usize), (50257, 768)] {
        let w = random(rows * cols, 3);
        let wh: Vec<half::f16> = w.iter().map(|v| half::f16::from_f32(*v)).collect();
        let x = random(cols, 4);
        let mut out = vec![0.0; rows];
        let shape = format!("{cols}x{rows}");
        g.throughput(Throughput::Bytes((rows * cols * 4) as u64));
        g.bench_function(BenchmarkId::new("stream_read_f32", &shape), |bch| {
            bch.iter(|| kernels::stream_sum(black_box(&w)))
        });
        g.bench_function(BenchmarkId::new("f32", &shape), |bch| {
            bch.iter(|| kernels::matvec(black_box(&w), rows, cols, black_box(&x), &mut out))
        });
        g.throughput(Throughput::Bytes((rows * cols * 2) as u64));
        g.bench_function(BenchmarkId::new("f16", &shape), |bch| {
            bch.iter(|| kernels::matvec_f16(black_box(&wh), rows, cols, black_box(&x), &mut out))
        });
    }
    g.finish();
}

/// Quantized matrix-vector products through `nn::linear` (activations
/// quantized on the fly, integer dot products), as GB/s of blocks read.
fn matvec_quant(c: &mut Criterion) {
    let mut g = c.benchmark_group("matvec_quant");
    use engine::DType::{Q4_0, Q4_1, Q4_K, Q6_K, Q8_0};
    // The K-quants' shape is SmolLM2's `ffn_down` (1536 columns, six
    // super-blocks a row), the only matrices a Q4_K_M file keeps in them.
    let shapes = [
        (1536usize, 576usize, &[Q4_1, Q8_0, Q4_0][..]),
        (49152, 576, &[Q4_1, Q8_0, Q4_0][..]),
        (576, 1536, &[Q4_K, Q6_K, Q4_1][..]),
    ];
    for (rows, cols, dtypes) in shapes {
        let w = engine::Tensor::from_vec(random(rows * cols, 3), &[rows, cols]).unwrap();
        let x = random(cols, 4);
        let mut out = vec![0.0; rows];
        let shape = format!("{cols}x{rows}");
        for &dt in dtypes {
            let q = w.to_dtype(dt).unwrap();
            g.throughput(Throughput::Bytes(dt.bytes_for(rows * cols).unwrap() as u64));
            g.bench_function(BenchmarkId::new(dt.to_string(), &shape), |bch| {
                bch.iter(|| engine::nn::linear(black_box(&x), 1, &[&q], &mut out).unwrap())
            });
        }
    }
    let big = random(64 << 20, 5);
    g.throughput(Throughput::Bytes((big.len() * 4) as u64));
    g.bench_function("stream_read_256MB", |bch| {
        bch.iter(|| kernels::stream_sum(black_box(&big)))
    });
    g.finish();
}

/// What a batch of decode steps costs: `t` one-token sequences through one
/// product with a regrouped quantized weight (as a model holds it), for
/// `t` = 1 and 8, in the file's layout and regrouped. Criterion's "elem/s"
/// is tokens per second: on a
/// memory-bound matrix the eight tokens share one read of the weights,
/// and what is left is the integer work each token does for itself.
fn batch_quant(c: &mut Criterion) {
    let mut g = c.benchmark_group("batch_quant");
    for (rows, cols, dt) in [
        (1536usize, 576usize, engine::DType::Q4_1),
        (1536, 576, engine::DType::Q8_0),
        (49152, 576, engine::DType::Q8_0),
    ] {
        let file = engine::Tensor::from_vec(random(rows * cols, 3), &[rows, cols])
            .unwrap()
            .to_dtype(dt)
            .unwrap();
        let regrouped = file.regrouped();
        let block = regrouped.with_sum_order(engine::quant::SumOrder::Block);
        let layouts = [
            ("file", &file),
            ("regrouped", &regrouped),
            ("block_sums", &block),
        ];
        for (layout, w) in layouts {
            for t in [1usize, 8] {
                let x = random(t * cols, 4);
                let mut out = vec![0.0; t * rows];
                let lens = vec![1; t];
                g.throughput(Throughput::Elements(t as u64));
                let id = BenchmarkId::new(
                    format!("{dt}_{cols}x{rows}_{layout}"),
                    format!("{t}_tokens"),
                );
                g.bench_function(id, |bch| {
                    bch.iter(|| {
                        engine::nn::linear_batch(black_box(&x), &lens, &[w], &mut out).unwrap()
                    })
                });
            }
        }
    }
    g.finish();
}

/// Gate and up matrices (3072 × 576 Q4_1 each, regrouped, summed by
/// block) multiplied in turn by 1 and by 8 tokens, as a decode batch does,
/// for SmolLM2's thirty layers (33 MB) and for 240 (265 MB). Each product
/// streams its weights while it computes: 33 MB can stay in a large
/// server L3 between passes, 265 MB cannot, so the two sizes show what
/// eight tokens cost against one when the weights come from the L3 and
/// when they come from memory. "B/s" is bytes of weights per second.
fn batch_stream(c: &mut Criterion) {
    let mut g = c.benchmark_group("batch_stream");
    let (rows, cols) = (3072usize, 576usize);
    let matrix = |seed| {
        engine::Tensor::from_vec(random(rows * cols, seed), &[rows, cols])
            .unwrap()
            .to_dtype(engine::DType::Q4_1)
            .unwrap()
            .regrouped()
            .with_sum_order(engine::quant::SumOrder::Block)
    };
    for layers in [30usize, 240] {
        let w: Vec<engine::Tensor> = (0..layers as u64).map(|s| matrix(10 + s)).collect();
        // Q4_1: 20 bytes per block of 32.
        let bytes = layers * rows * cols / 32 * 20;
        for t in [1usize, 8] {
            let x = random(t * cols, 4);
            let mut out = vec![0.0; t * rows];
            let lens = vec![1; t];
            g.throughput(Throughput::Bytes(bytes as u64));
            let id = BenchmarkId::new(
                format!("q4_1_576x3072_{}MiB", bytes >> 20),
                format!("{t}_tokens"),
            );
            g.bench_function(id, |bch| {
                bch.iter(|| {
                    for m in &w {
                        engine::nn::linear_batch(black_box(&x), &lens, &[m], &mut out).unwrap()
                    }
                })
            });
        }
    }
    g.finish();
}

/// A 128-token prompt through `ffn_down`'s shape (576 rows of 1536), as
/// a model holds each format (the 32-value formats regrouped): the
/// integer many-token kernel for Q4_1 and Q5_0, widened f32 tiles for the
/// K-quants. Criterion's "elem/s" is prompt tokens per second.
fn prompt_quant(c: &mut Criterion) {
    use engine::DType::{Q4_1, Q4_K, Q5_0, Q6_K};
    let mut g = c.benchmark_group("prompt_quant");
    let (rows, cols, t) = (576usize, 1536usize, 128usize);
    let w = engine::Tensor::from_vec(random(rows * cols, 3), &[rows, cols]).unwrap();
    let x = random(t * cols, 4);
    let mut out = vec![0.0; t * rows];
    for dt in [Q4_1, Q5_0, Q4_K, Q6_K] {
        let q = w.to_dtype(dt).unwrap();
        let q = if dt.block_len() == 32 {
            q.regrouped()
        } else {
            q
        };
        g.throughput(Throughput::Elements(t as u64));
        let id = BenchmarkId::new(dt.to_string(), format!("{cols}x{rows}_{t}_tokens"));
        g.bench_function(id, |bch| {
            bch.iter(|| engine::nn::linear(black_box(&x), t, &[&q], &mut out).unwrap())
        });
    }
    g.finish();
}

fn rows(c: &mut Criterion) {
    let n = 49152;
    let x = random(n, 5);
    let w = random(n, 6);
    let mut y = x.clone();
    let mut out = vec![0.0; n];
    let mut g = c.benchmark_group("row_49152");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("softmax/scalar", |b| {
        b.iter(|| {
            y.copy_from_slice(&x);
            scalar::softmax_inplace(black_box(&mut y))
        })
    });
    g.bench_function("softmax/simd", |b| {
        b.iter(|| {
            y.copy_from_slice(&x);
            kernels::softmax_inplace(black_box(&mut y))
        })
    });
    g.bench_function("rmsnorm/scalar", |b| {
        b.iter(|| scalar::rmsnorm(black_box(&x), &w, 1e-5, &mut out))
    });
    g.bench_function("rmsnorm/simd", |b| {
        b.iter(|| kernels::rmsnorm(black_box(&x), &w, 1e-5, &mut out))
    });
    // What every quantized product does first: the activations into
    // 8-bit blocks of 32 (codes, scales, sums), here 32 rows of 1536.
    let mut acts = engine::quant::act::Q8Acts::default();
    g.bench_function("quantize_acts_32x1536", |b| {
        b.iter(|| acts.quantize(black_box(&x), 1536))
    });
    g.finish();
}

fn attention(c: &mut Criterion) {
    // SmolLM2-135M's attention: 9 query heads sharing 3 KV heads of 64.
    let dims = AttnDims {
        n_heads: 9,
        n_kv_heads: 3,
        head_dim: 64,
        capacity: 1024,
    };
    let cache = dims.n_kv_heads * dims.capacity * dims.head_dim;
    let (k, v) = (random(cache, 7), random(cache, 8));
    let q = random(dims.n_heads * dims.head_dim, 9);
    let mut out = vec![0.0; q.len()];
    let mut g = c.benchmark_group("attention_decode_1024");
    g.bench_function("scalar", |b| {
        b.iter(|| scalar::attention_decode(black_box(&q), &k, &v, dims, 1024, &mut out))
    });
    g.bench_function("simd_threaded", |b| {
        b.iter(|| kernels::attention_decode(black_box(&q), &k, &v, dims, 1024, &mut out))
    });
    // The f16 cache a model keeps by default, at a long and a short context.
    let (k16, v16): (Vec<half::f16>, Vec<half::f16>) = (
        k.iter().map(|x| half::f16::from_f32(*x)).collect(),
        v.iter().map(|x| half::f16::from_f32(*x)).collect(),
    );
    for len in [1024usize, 128] {
        g.bench_function(format!("f16_cache_{len}_positions"), |b| {
            b.iter(|| {
                kernels::attention_decode(black_box(&q), &k16[..], &v16[..], dims, len, &mut out)
            })
        });
    }
    // The Q8_0 cache (`--cache-type q8_0`): a little over half the f16
    // cache's bytes, so its arithmetic shows where the cache fits in L2.
    let (k8, v8) = (
        engine::quant::quantize(engine::DType::Q8_0, &k).expect("whole blocks"),
        engine::quant::quantize(engine::DType::Q8_0, &v).expect("whole blocks"),
    );
    for len in [1024usize, 128] {
        g.bench_function(format!("q8_0_cache_{len}_positions"), |b| {
            b.iter(|| {
                let (k, v) = (kernels::KvSlice::Q8_0(&k8), kernels::KvSlice::Q8_0(&v8));
                kernels::attention_decode(black_box(&q), k, v, dims, len, &mut out)
            })
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1500))
}

criterion_group! { name = benches; config = config(); targets = matmul, matvec, matvec_quant, batch_quant, batch_stream, prompt_quant, rows, attention }
criterion_main!(benches);
