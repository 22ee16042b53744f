//! The micro-kernel and the tile packing against their plain twins (bit
//! for bit), and the tiled product against an f64 reference, on random
//! sizes with odd tails.

use proptest::prelude::*;

use super::*;

fn values(n: usize, seed: u64) -> Vec<f32> {
    // A small xorshift: values in [-1, 1), different per seed.
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// Whether this CPU runs the AVX2 kernels (else the twin tests compare
/// nothing, and say so).
fn has_avx2() -> bool {
    let ok = cfg!(target_arch = "x86_64") && super::super::dispatch::detect() >= Level::Avx2;
    if !ok {
        eprintln!("skipped the AVX2 twin comparison: this CPU lacks AVX2");
    }
    ok
}

/// The product of `m` random tokens and an `n`-row tile, as `m × n`.
fn product(a: &[f32], w: &[f32], m: usize, n: usize, k: usize) -> Vec<f32> {
    let mut panels = Panels::default();
    panels.pack(a, m, k);
    let mut c = vec![f32::NAN; m * n];
    tile_times_panels(w, k, &panels, |i, j, v| {
        c[i * n + j..i * n + j + v.len()].copy_from_slice(v)
    });
    c
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn micro_kernel_matches_its_plain_twin_bit_for_bit(len in 0usize..300, seed in any::<u64>()) {
        let (w, x) = (values(len * NR, seed), values(len * MR, seed ^ 1));
        let init: Block =
            std::array::from_fn(|t| std::array::from_fn(|r| (t * NR + r) as f32 / 64.0));
        for fresh in [false, true] {
        let mut want = init;
        micro_scalar(&w, &x, len, &mut want, fresh);
        if has_avx2() {
            let mut got = init;
            micro(Level::Avx2, &w, &x, len, &mut got, fresh);
            for t in 0..MR {
                for r in 0..NR {
                    prop_assert_eq!(got[t][r].to_bits(), want[t][r].to_bits(), "token {} row {}", t, r);
                }
            }
        }
        }
    }

    #[test]
    fn pair_kernel_matches_its_plain_twin_bit_for_bit(len in 0usize..300, seed in any::<u64>()) {
        let (w0, w1) = (values(len * NR, seed), values(len * NR, seed ^ 2));
        let x = values(len * MR, seed ^ 1);
        let init: Block =
            std::array::from_fn(|t| std::array::from_fn(|r| (t * NR + r) as f32 / 64.0));
        let avx512 = cfg!(target_arch = "x86_64") && super::super::dispatch::detect() >= Level::Avx512;
        if !avx512 {
            eprintln!("skipped the AVX-512 twin comparison: this CPU lacks AVX-512F");
        }
        let levels: &[Level] = if avx512 { &[Level::Scalar, Level::Avx512] } else { &[Level::Scalar] };
        for fresh in [false, true] {
            let (mut want0, mut want1) = (init, init);
            micro_scalar(&w0, &x, len, &mut want0, fresh);
            micro_scalar(&w1, &x, len, &mut want1, fresh);
            for &l in levels {
                let (mut got0, mut got1) = (init, init);
                micro_pair(l, (&w0, &w1), &x, len, (&mut got0, &mut got1), fresh);
                for (got, want) in [(got0, want0), (got1, want1)] {
                    for t in 0..MR {
                        for r in 0..NR {
                            prop_assert_eq!(got[t][r].to_bits(), want[t][r].to_bits(), "{:?} token {} row {}", l, t, r);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn tile_packing_matches_its_plain_twin(n in 0usize..40, k in 1usize..70, seed in any::<u64>()) {
        let w = values(n * k, seed);
        let mut want = vec![0.0; n.div_ceil(NR) * k * NR];
        pack_tile_scalar(&w, n, k, &mut want);
        // A buffer left dirty by a bigger tile must not leak into this one.
        let mut got = vec![f32::NAN; 3 * k * NR + 5];
        pack_tile(&w, k, &mut got);
        got.truncate(want.len());
        prop_assert_eq!(got, want);
    }

    #[test]
    fn tile_product_matches_f64_reference(
        m in 1usize..50, n in 1usize..40, k in 1usize..700, seed in any::<u64>()
    ) {
        let (a, w) = (values(m * k, seed), values(n * k, seed + 1));
        let got = product(&a, &w, m, n, k);
        for (x, g) in got.iter().enumerate() {
            let (i, j) = (x / n, x % n);
            let want: f64 = (0..k)
                .map(|p| f64::from(a[i * k + p]) * f64::from(w[j * k + p]))
                .sum();
            // Each term is below 1 in size: k roundings of sums below k.
            let bound = 1e-6 * k as f64 * (k as f64).sqrt() + 1e-6;
            prop_assert!((f64::from(*g) - want).abs() <= bound, "c[{}] {} vs {}", x, g, want);
        }
    }

    #[test]
    fn a_tokens_result_does_not_depend_on_the_batch(
        m in 2usize..40, n in 1usize..40, k in 1usize..300, seed in any::<u64>()
    ) {
        let (a, w) = (values(m * k, seed), values(n * k, seed + 1));
        let all = product(&a, &w, m, n, k);
        let i = (seed as usize) % m;
        let alone = product(&a[i * k..(i + 1) * k], &w, 1, n, k);
        for j in 0..n {
            prop_assert_eq!(alone[j].to_bits(), all[i * n + j].to_bits());
        }
    }
}
