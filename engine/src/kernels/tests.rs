//! Every SIMD kernel against its scalar twin, on random lengths 0..=4099
//! (odd tails included) and slices starting 0–3 floats into a larger
//! buffer (unaligned). Levels the CPU lacks are skipped with a message.

use proptest::prelude::*;

use super::*;

/// The SIMD levels this CPU can run (each is tested); prints the ones skipped.
fn simd_levels() -> Vec<Level> {
    static REPORT: std::sync::Once = std::sync::Once::new();
    let best = dispatch::detect();
    let mut out = Vec::new();
    for l in [Level::Avx2, Level::Avx512, Level::Neon] {
        let arch_ok = cfg!(target_arch = "x86_64") != (l == Level::Neon);
        if arch_ok && l <= best {
            out.push(l);
        } else if arch_ok {
            REPORT.call_once(|| eprintln!("skipped {l} kernels in every SIMD-vs-scalar test: this CPU lacks the feature (best: {best})"));
        }
    }
    out
}

/// `|got - want| <= rel * scale + abs`, with a message naming what and where.
fn close(
    what: &str,
    i: usize,
    got: f32,
    want: f32,
    rel: f32,
    scale: f32,
    abs: f32,
) -> Result<(), TestCaseError> {
    let ok = (got - want).abs() <= rel * scale + abs || (got.is_nan() && want.is_nan());
    prop_assert!(
        ok,
        "{what}[{i}]: simd {got} vs scalar {want} (diff {}, bound {})",
        (got - want).abs(),
        rel * scale + abs
    );
    Ok(())
}

/// A slice of `len` values in `[-lim, lim]` starting `off` floats into its buffer.
fn buf(lim: f32) -> impl Strategy<Value = (Vec<f32>, usize)> {
    (0usize..=4099, 0usize..4).prop_flat_map(move |(len, off)| {
        (proptest::collection::vec(-lim..lim, len + off), Just(off))
    })
}

fn two(lim: f32) -> impl Strategy<Value = (Vec<f32>, Vec<f32>, usize)> {
    (0usize..=4099, 0usize..4).prop_flat_map(move |(len, off)| {
        (
            proptest::collection::vec(-lim..lim, len + off),
            proptest::collection::vec(-lim..lim, len + off),
            Just(off),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    // dot: error bound 1e-5 relative to Σ|aᵢbᵢ| (different summation order).
    #[test]
    fn dot_matches((a, b, off) in two(1.0)) {
        let (a, b) = (&a[off..], &b[off..]);
        let want = scalar::dot(a, b);
        let scale: f32 = a.iter().zip(b).map(|(x, y)| (x * y).abs()).sum();
        for l in simd_levels() {
            close("dot", 0, simd_at!(l, avx2_neon: dot(a, b)), want, 1e-5, scale, 1e-6)?;
        }
    }

    // axpy: one fused multiply-add per element, 1e-6 relative.
    #[test]
    fn axpy_matches((x, y, off) in two(10.0), alpha in -3.0f32..3.0) {
        let mut want = y[off..].to_vec();
        scalar::axpy(alpha, &x[off..], &mut want);
        for l in simd_levels() {
            let mut got = y.clone();
            simd_at!(l, avx2_neon: axpy(alpha, &x[off..], &mut got[off..]));
            for (i, (g, w)) in got[off..].iter().zip(&want).enumerate() {
                close("axpy", i, *g, *w, 1e-6, w.abs() + (alpha * x[off + i]).abs(), 1e-6)?;
            }
        }
    }

    // softmax: vector exp is within a few ulp; 1e-5 relative per element.
    #[test]
    fn softmax_matches((x, off) in buf(30.0)) {
        let mut want = x[off..].to_vec();
        scalar::softmax_inplace(&mut want);
        for l in simd_levels() {
            let mut got = x.clone();
            simd_at!(l, avx2_neon: softmax_inplace(&mut got[off..]));
            for (i, (g, w)) in got[off..].iter().zip(&want).enumerate() {
                close("softmax", i, *g, *w, 1e-5, w.abs(), 1e-9)?;
            }
        }
    }

    // log-softmax: 1e-5 relative to |x - max| + 1 (the size of the terms).
    #[test]
    fn log_softmax_matches((x, off) in buf(30.0)) {
        let mut want = x[off..].to_vec();
        scalar::log_softmax_inplace(&mut want);
        for l in simd_levels() {
            let mut got = x.clone();
            simd_at!(l, avx2: log_softmax_inplace(&mut got[off..]));
            for (i, (g, w)) in got[off..].iter().zip(&want).enumerate() {
                close("log_softmax", i, *g, *w, 1e-5, w.abs() + 1.0, 1e-6)?;
            }
        }
    }

    // gemm on strided (transposed) views equals the naive strided twin:
    // 1e-5 relative to Σ|aᵢₚbₚⱼ|.
    #[test]
    fn gemm_strided_matches(m in 0usize..20, k in 0usize..40, n in 0usize..20, ta in any::<bool>(), tb in any::<bool>(), seed in any::<u64>()) {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let a: Vec<f32> = (0..m * k).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let b: Vec<f32> = (0..k * n).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let sa = if ta { Strided { data: &a, row_stride: 1, col_stride: m } } else { Strided { data: &a, row_stride: k, col_stride: 1 } };
        let sb = if tb { Strided { data: &b, row_stride: 1, col_stride: k } } else { Strided { data: &b, row_stride: n, col_stride: 1 } };
        let mut want = vec![0.0; m * n];
        let mut got = vec![0.0; m * n];
        scalar::gemm_strided(sa, sb, m, k, n, &mut want);
        gemm_strided(sa, sb, m, k, n, &mut got);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            close("gemm", i, *g, *w, 1e-5, k as f32, 1e-6)?;
        }
    }

    // gemm split into blocks for the pool (by columns when n >= m, else by
    // rows, blocks not multiples of the alignment at the edges) equals the
    // naive twin: 1e-5 relative to Σ|aᵢₚbₚⱼ|.
    #[test]
    fn gemm_blocks_match(m in 1usize..90, k in 1usize..50, n in 1usize..90, parts in 2usize..5, ta in any::<bool>(), tb in any::<bool>(), seed in any::<u64>()) {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let a: Vec<f32> = (0..m * k).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let b: Vec<f32> = (0..k * n).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let sa = if ta { Strided { data: &a, row_stride: 1, col_stride: m } } else { Strided { data: &a, row_stride: k, col_stride: 1 } };
        let sb = if tb { Strided { data: &b, row_stride: 1, col_stride: k } } else { Strided { data: &b, row_stride: n, col_stride: 1 } };
        let mut want = vec![0.0; m * n];
        let mut got = vec![f32::NAN; m * n];
        scalar::gemm_strided(sa, sb, m, k, n, &mut want);
        gemm_parts(sa, sb, m, k, n, &mut got, parts);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            close("gemm blocks", i, *g, *w, 1e-5, k as f32, 1e-6)?;
        }
    }

    // rmsnorm / layernorm: 1e-5 relative to |x·inv·w| per element.
    #[test]
    fn norms_match((x, w, off) in two(4.0)) {
        let (x, w) = (&x[off..], &w[off..]);
        let b: Vec<f32> = w.iter().map(|v| v * 0.5).collect();
        let mut want = vec![0.0; x.len()];
        let mut want_ln = vec![0.0; x.len()];
        scalar::rmsnorm(x, w, 1e-5, &mut want);
        scalar::layernorm(x, w, &b, 1e-5, &mut want_ln);
        for l in simd_levels() {
            let mut got = vec![0.0; x.len() + off];
            simd_at!(l, avx2_neon: rmsnorm(x, w, 1e-5, &mut got[off..]));
            for (i, (g, wv)) in got[off..].iter().zip(&want).enumerate() {
                close("rmsnorm", i, *g, *wv, 1e-5, wv.abs(), 1e-6)?;
            }
            simd_at!(l, avx2_neon: layernorm(x, w, &b, 1e-5, &mut got[off..]));
            for (i, (g, wv)) in got[off..].iter().zip(&want_ln).enumerate() {
                close("layernorm", i, *g, *wv, 1e-4, (wv - b[i]).abs(), 1e-5)?;
            }
        }
    }

    // silu / gelu: vector exp vs libm; 1e-5 relative, 1e-6 absolute.
    #[test]
    fn activations_match((x, off) in buf(12.0)) {
        let mut want_s = x[off..].to_vec();
        let mut want_g = x[off..].to_vec();
        scalar::silu_inplace(&mut want_s);
        scalar::gelu_tanh_inplace(&mut want_g);
        for l in simd_levels() {
            let mut got = x.clone();
            simd_at!(l, avx2_neon: silu_inplace(&mut got[off..]));
            for (i, (g, w)) in got[off..].iter().zip(&want_s).enumerate() {
                close("silu", i, *g, *w, 1e-5, w.abs(), 1e-6)?;
            }
            let mut got = x.clone();
            simd_at!(l, avx2_neon: gelu_tanh_inplace(&mut got[off..]));
            for (i, (g, w)) in got[off..].iter().zip(&want_g).enumerate() {
                close("gelu", i, *g, *w, 1e-5, w.abs(), 1e-6)?;
            }
        }
    }

    // add / mul / mul_to: exact (one IEEE operation per element).
    #[test]
    fn elementwise_exact((x, y, off) in two(100.0)) {
        let mut want_a = x[off..].to_vec();
        let mut want_m = x[off..].to_vec();
        scalar::add_inplace(&mut want_a, &y[off..]);
        scalar::mul_inplace(&mut want_m, &y[off..]);
        for l in simd_levels() {
            let mut got = x.clone();
            simd_at!(l, avx2_neon: add_inplace(&mut got[off..], &y[off..]));
            prop_assert_eq!(&got[off..], &want_a[..], "add at {}", l);
            let mut got = x.clone();
            simd_at!(l, avx2_neon: mul_inplace(&mut got[off..], &y[off..]));
            prop_assert_eq!(&got[off..], &want_m[..], "mul at {}", l);
            let mut got = vec![f32::NAN; x.len() - off];
            simd_at!(l, avx2_neon: mul_to(&mut got, &x[off..], &y[off..]));
            prop_assert_eq!(&got[..], &want_m[..], "mul_to at {}", l);
        }
    }

    // matvec (f32 and f16): 1e-5 relative to Σ|wᵢxᵢ| per row.
    #[test]
    fn matvec_matches(rows in 0usize..23, cols in 0usize..300, off in 0usize..4, seed in any::<u64>()) {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let w: Vec<f32> = (0..rows * cols + off).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let x: Vec<f32> = (0..cols).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let w = &w[off..];
        let wh: Vec<half::f16> = w.iter().map(|v| half::f16::from_f32(*v)).collect();
        let mut want = vec![0.0; rows];
        let mut want_h = vec![0.0; rows];
        scalar::matvec(w, rows, cols, &x, &mut want);
        scalar::matvec_f16(&wh, rows, cols, &x, &mut want_h);
        for l in simd_levels() {
            let mut got = vec![0.0; rows];
            matvec_at(l, w, cols, &x, &mut got);
            for r in 0..rows {
                let scale: f32 = w[r * cols..(r + 1) * cols].iter().zip(&x).map(|(a, b)| (a * b).abs()).sum();
                close("matvec", r, got[r], want[r], 1e-5, scale, 1e-6)?;
            }
            matvec_f16_at(l, &wh, cols, &x, &mut got);
            for r in 0..rows {
                let scale: f32 = w[r * cols..(r + 1) * cols].iter().zip(&x).map(|(a, b)| (a * b).abs()).sum();
                close("matvec_f16", r, got[r], want_h[r], 1e-5, scale, 1e-6)?;
            }
        }
        // Every x86 level gives the AVX2 bits (AVX-512 has its own f16 and
        // f32 forms).
        let x86: Vec<Level> = simd_levels().into_iter().filter(|&l| l != Level::Neon).collect();
        if x86.len() > 1 {
            let (mut avx2_bits, mut avx2_bits_h) = (vec![0.0; rows], vec![0.0; rows]);
            matvec_at(Level::Avx2, w, cols, &x, &mut avx2_bits);
            matvec_f16_at(Level::Avx2, &wh, cols, &x, &mut avx2_bits_h);
            for &l in &x86[1..] {
                let (mut got, mut got_h) = (vec![0.0; rows], vec![0.0; rows]);
                matvec_at(l, w, cols, &x, &mut got);
                matvec_f16_at(l, &wh, cols, &x, &mut got_h);
                for r in 0..rows {
                    prop_assert_eq!(got[r].to_bits(), avx2_bits[r].to_bits(), "f32 {} row {}", l, r);
                    prop_assert_eq!(got_h[r].to_bits(), avx2_bits_h[r].to_bits(), "f16 {} row {}", l, r);
                }
            }
        }
    }

    // Transposition moves values only: every level writes the same bits,
    // in whole 8×8 blocks and in the tails of rows and columns.
    #[test]
    fn transpose_matches(n in 0usize..40, t in 1usize..20, seed in any::<u64>()) {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let src: Vec<f32> = (0..n * t).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let mut want = vec![vec![f32::NAN; n]; t];
        scalar::transpose(&src, t, &mut want.iter_mut().map(|d| &mut d[..]).collect::<Vec<_>>());
        for (i, d) in want.iter().enumerate() {
            for (j, &v) in d.iter().enumerate() {
                prop_assert_eq!(v.to_bits(), src[j * t + i].to_bits());
            }
        }
        for l in simd_levels() {
            let mut got = vec![vec![f32::NAN; n]; t];
            let mut dst: Vec<&mut [f32]> = got.iter_mut().map(|d| &mut d[..]).collect();
            simd_at!(l, avx2: transpose(&src, t, &mut dst));
            prop_assert_eq!(&got, &want);
        }
    }

    // streaming sum: 1e-5 relative to Σ|xᵢ|.
    #[test]
    fn stream_sum_matches((x, off) in buf(1.0)) {
        let x = &x[off..];
        let want = scalar::stream_sum(x);
        let scale: f32 = x.iter().map(|v| v.abs()).sum();
        for l in simd_levels() {
            let got = stream_sum_at(l, x);
            close("stream_sum", 0, got, want, 1e-5, scale, 1e-6)?;
            if l == Level::Avx512 {
                // The same sums as AVX2's, so the same bits.
                prop_assert_eq!(got.to_bits(), stream_sum_at(Level::Avx2, x).to_bits());
            }
        }
        close("stream_sum (threaded)", 0, stream_sum(x), want, 1e-5, scale, 1e-6)?;
    }

    // Threaded, dispatched attention equals the plain twin (1e-5 abs, the
    // outputs are convex combinations of values in [-1, 1]).
    #[test]
    fn attention_matches(
        n_kv in 1usize..4, group in 1usize..6, hd in prop_oneof![1usize..140, Just(32usize), Just(64usize)], cap_extra in 0usize..5,
        start in 0usize..70, t in 1usize..6, seed in any::<u64>(),
    ) {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let dims = AttnDims { n_heads: n_kv * group, n_kv_heads: n_kv, head_dim: hd, capacity: start + t + cap_extra };
        let cache = n_kv * dims.capacity * hd;
        let mut r = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect() };
        let (k, v, q) = (r(cache), r(cache), r(t * dims.n_heads * hd));
        let mut want = vec![0.0; q.len()];
        let mut got = vec![0.0; q.len()];
        scalar::attention_prefill(&q, &k, &v, dims, start, t, &mut want);
        attention_prefill(&q, &k, &v, dims, start, t, &mut got);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            close("attention_prefill", i, *g, *w, 0.0, 0.0, 1e-5)?;
        }
        let row = dims.n_heads * hd;
        attention_decode(&q[..row], &k, &v, dims, start + 1, &mut got[..row]);
        for (i, (g, w)) in got[..row].iter().zip(&want[..row]).enumerate() {
            close("attention_decode", i, *g, *w, 0.0, 0.0, 1e-5)?;
        }
        // An f16 cache: the same as the f32 twin on the f16-rounded values.
        let (kh, vh): (Vec<half::f16>, Vec<half::f16>) = (
            k.iter().map(|&x| half::f16::from_f32(x)).collect(),
            v.iter().map(|&x| half::f16::from_f32(x)).collect(),
        );
        let (kr, vr): (Vec<f32>, Vec<f32>) = (kh.iter().map(|x| x.to_f32()).collect(), vh.iter().map(|x| x.to_f32()).collect());
        scalar::attention_prefill(&q, &kr, &vr, dims, start, t, &mut want);
        attention_prefill(&q, &kh[..], &vh[..], dims, start, t, &mut got);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            close("attention_prefill (f16 cache)", i, *g, *w, 0.0, 0.0, 1e-5)?;
        }
    }

    // Several sequences stacked into one call give each query exactly what
    // the sequence alone gives it (same bits), with f32 and f16 caches.
    #[test]
    fn stacked_attention_equals_each_sequence_alone(
        n_kv in 1usize..4, group in 1usize..5, hd in prop_oneof![1usize..70, Just(64usize)],
        seqs in proptest::collection::vec((0usize..40, 1usize..5), 1..6), seed in any::<u64>(),
    ) {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let capacity = 45;
        let dims = AttnDims { n_heads: n_kv * group, n_kv_heads: n_kv, head_dim: hd, capacity };
        let (cache, row) = (n_kv * capacity * hd, dims.n_heads * hd);
        let mut r = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect() };
        let kv: Vec<(Vec<f32>, Vec<f32>)> = seqs.iter().map(|_| (r(cache), r(cache))).collect();
        let t: usize = seqs.iter().map(|s| s.1).sum();
        let q = r(t * row);
        let half = |x: &[f32]| -> Vec<half::f16> { x.iter().map(|&v| half::f16::from_f32(v)).collect() };
        let kvh: Vec<_> = kv.iter().map(|(k, v)| (half(k), half(v))).collect();
        for f16 in [false, true] {
            let mut alone = vec![0.0; t * row];
            let mut at = 0;
            let mut list = Vec::new();
            for (i, &(start, len)) in seqs.iter().enumerate() {
                let (k, v): (KvSlice<'_>, KvSlice<'_>) = if f16 {
                    (kvh[i].0[..].into(), kvh[i].1[..].into())
                } else {
                    (kv[i].0[..].into(), kv[i].1[..].into())
                };
                let rows = at * row..(at + len) * row;
                attention_prefill(&q[rows.clone()], k, v, dims, start, len, &mut alone[rows]);
                list.push(AttnSeq { k, v, start_pos: start, len });
                at += len;
            }
            let mut stacked = vec![0.0; t * row];
            attention_stacked((&q, row), &list, dims, &mut stacked);
            prop_assert_eq!(&stacked, &alone, "f16 cache {}", f16);
            // The same queries read in place from wider rows (as from the
            // fused QKV rows), whatever lies after each.
            let stride = row + 5;
            let wide: Vec<f32> = q
                .chunks_exact(row)
                .flat_map(|r| r.iter().copied().chain([f32::NAN; 5]))
                .collect();
            let mut strided = vec![0.0; t * row];
            attention_stacked((&wide, stride), &list, dims, &mut strided);
            prop_assert_eq!(&strided, &alone, "strided, f16 cache {}", f16);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    // top-k by partial selection equals a full sort (exact: same values).
    #[test]
    fn top_k_equals_full_sort(x in proptest::collection::vec(-3i32..3, 0..200), k in 0usize..210) {
        let x: Vec<f32> = x.into_iter().map(|v| v as f32 * 0.5).collect();
        let mut want: Vec<(usize, f32)> = x.iter().copied().enumerate().collect();
        want.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        want.truncate(k);
        prop_assert_eq!(top_k(&x, k), want);
    }

    // The vectorised RoPE rotation has the plain loop's bits at every level
    // (two products and a difference per value: nothing to reorder).
    #[test]
    fn rope_rotate_has_the_plain_bits_at_every_level(heads in 1usize..13, half in 1usize..40, pos in 0usize..5000, seed in any::<u64>()) {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let hd = 2 * half;
        let x: Vec<f32> = (0..heads * hd).map(|_| rng.gen_range(-4.0..4.0)).collect();
        let mut angles = vec![0f32; hd];
        rope_angles(hd, pos, 10000.0, &mut angles);
        let mut want = x.clone();
        scalar::rope_rotate(&mut want, heads, hd, &angles);
        for l in simd_levels() {
            let mut got = x.clone();
            simd_at!(l, avx2_neon: rope_rotate(&mut got, heads, hd, &angles));
            prop_assert_eq!(&got, &want, "rope at {}", l);
        }
    }

    // RoPE with the angles hoisted out of the head loop equals rotating each
    // pair by its own angle (1e-6 absolute on values in [-1, 1]).
    #[test]
    fn rope_rotates_each_pair(heads in 1usize..4, half in 1usize..20, pos in 0usize..5000, seed in any::<u64>()) {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let hd = 2 * half;
        let x: Vec<f32> = (0..heads * hd).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let mut got = x.clone();
        rope_inplace(&mut got, heads, hd, pos, 10000.0);
        for h in 0..heads {
            for i in 0..half {
                let ang = pos as f32 * (1.0 / 10000f32.powf((2 * i) as f32 / hd as f32));
                let (a, b) = (x[h * hd + i], x[h * hd + i + half]);
                let (s, c) = ang.sin_cos();
                close("rope", h * hd + i, got[h * hd + i], a * c - b * s, 0.0, 0.0, 1e-6)?;
                close("rope", h * hd + i + half, got[h * hd + i + half], b * c + a * s, 0.0, 0.0, 1e-6)?;
            }
        }
    }
}

#[test]
fn argmax_and_top_k() {
    let x = [1.0, 5.0, f32::NAN, 5.0, -2.0, 3.0];
    assert_eq!(argmax(&x), 1);
    assert_eq!(top_k(&x, 3), vec![(1, 5.0), (3, 5.0), (5, 3.0)]);
    assert_eq!(top_k(&x, 10).len(), 5);
    assert_eq!(argmax(&[]), 0);
}

#[test]
fn softmax_masks_minus_infinity_to_zero() {
    let mut x = vec![
        0.0,
        f32::NEG_INFINITY,
        1.0,
        f32::NEG_INFINITY,
        2.0,
        0.5,
        -1.0,
        3.0,
        0.25,
    ];
    softmax_inplace(&mut x);
    assert_eq!(x[1], 0.0);
    assert_eq!(x[3], 0.0);
    assert!((x.iter().sum::<f32>() - 1.0).abs() < 1e-6);
}

#[test]
fn matmul_uses_both_layouts() {
    // a: 2x3, b: 3x2, bt: 2x3.
    let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let b = [7.0, 8.0, 9.0, 10.0, 11.0, 12.0];
    let bt = [7.0, 9.0, 11.0, 8.0, 10.0, 12.0];
    let (mut c1, mut c2) = ([0.0; 4], [0.0; 4]);
    matmul(&a, &b, 2, 3, 2, &mut c1);
    matmul_bt(&a, &bt, 2, 3, 2, &mut c2);
    let mut want = [0.0; 4];
    scalar::matmul(&a, &b, 2, 3, 2, &mut want);
    assert_eq!(c1, want);
    assert_eq!(c2, want);
}

/// Every one of the 65,536 f16 values, at every level this CPU has, widens
/// to the f32 that `half` gives it (NaNs with the same payload), whatever
/// the slice's start and length.
#[test]
fn widen_f16_gives_every_half_its_exact_f32() {
    let all: Vec<half::f16> = (0..=u16::MAX).map(half::f16::from_bits).collect();
    let want: Vec<u32> = all.iter().map(|h| h.to_f32().to_bits()).collect();
    let mut levels = simd_levels();
    levels.push(Level::Scalar);
    for l in levels {
        for (start, end) in [(0, all.len()), (1, all.len()), (3, 200), (5, 5), (7, 70)] {
            let mut got = vec![0f32; end - start];
            widen_f16_at(l, &all[start..end], &mut got);
            for (i, g) in got.iter().enumerate() {
                let h = all[start + i].to_bits();
                assert_eq!(g.to_bits(), want[start + i], "{l}: f16 {h:#06x}");
            }
        }
    }
}

/// GELU and the residual add over a prompt's worth of values, split across
/// the pool (when it has more than one thread), give every value the bits
/// the dispatched kernel gives it over the whole slice on one thread.
#[test]
fn split_elementwise_kernels_give_the_whole_slices_bits() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    use rand::{Rng, SeedableRng};
    for n in [64 * 700 + 37, 100_003] {
        let x: Vec<f32> = (0..n).map(|_| rng.gen_range(-8.0f32..8.0)).collect();
        let y: Vec<f32> = (0..n).map(|_| rng.gen_range(-8.0f32..8.0)).collect();
        let l = level();
        let (mut split, mut whole) = (x.clone(), x.clone());
        gelu_tanh_inplace(&mut split);
        simd_at!(l, avx2_neon: gelu_tanh_inplace(&mut whole));
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&split), bits(&whole), "gelu, {n} values");
        let (mut split, mut whole) = (x.clone(), x);
        add_inplace(&mut split, &y);
        simd_at!(l, avx2_neon: add_inplace(&mut whole, &y));
        assert_eq!(bits(&split), bits(&whole), "add, {n} values");
    }
}
