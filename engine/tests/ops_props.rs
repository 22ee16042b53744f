//! Properties of the tensor ops: softmax, layernorm, matmul, broadcasting,
//! concat, embedding, argmax / top-k.

use engine::Tensor;
use proptest::prelude::*;

fn values(n: usize, lim: f32) -> impl Strategy<Value = Vec<f32>> {
    proptest::collection::vec(-lim..lim, n)
}

fn naive_matmul(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            for p in 0..k {
                c[i * n + j] += a[i * k + p] * b[p * n + j];
            }
        }
    }
    c
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    // Rows sum to 1 (within 1e-5) and adding a constant changes nothing
    // (within 1e-6 absolute + 1e-5 relative).
    #[test]
    fn softmax_sums_to_one_and_is_shift_invariant(
        (rows, cols, x) in (1usize..5, 1usize..300).prop_flat_map(|(r, c)| (Just(r), Just(c), values(r * c, 20.0))),
        shift in -50.0f32..50.0,
    ) {
        let t = Tensor::from_vec(x.clone(), &[rows, cols]).unwrap();
        let p = t.softmax().unwrap().to_vec_f32().unwrap();
        for r in 0..rows {
            let s: f32 = p[r * cols..(r + 1) * cols].iter().sum();
            prop_assert!((s - 1.0).abs() <= 1e-5, "row {} sums to {}", r, s);
        }
        let shifted = Tensor::from_vec(x.iter().map(|v| v + shift).collect(), &[rows, cols]).unwrap();
        let q = shifted.softmax().unwrap().to_vec_f32().unwrap();
        for (i, (a, b)) in p.iter().zip(&q).enumerate() {
            prop_assert!((a - b).abs() <= 1e-6 + 1e-5 * a.abs().max(*b) * 10.0, "softmax[{}]: {} vs shifted {}", i, a, b);
        }
    }

    // ANCHOR: prop_softmax_large
    // Logits far beyond where `exp` overflows (about 88) still give finite
    // probabilities equal (within 1e-3: `v + shift` rounds at this size) to
    // those of the same logits near zero.
    #[test]
    fn softmax_of_large_logits_is_finite_and_shift_invariant(
        x in (1usize..64).prop_flat_map(|n| values(n, 20.0)),
        shift in prop_oneof![-1000.0f32..-100.0, 100.0f32..1000.0],
    ) {
        let p = Tensor::from_vec(x.clone(), &[x.len()]).unwrap().softmax().unwrap().to_vec_f32().unwrap();
        let big: Vec<f32> = x.iter().map(|v| v + shift).collect();
        let q = Tensor::from_vec(big, &[x.len()]).unwrap().softmax().unwrap().to_vec_f32().unwrap();
        for (i, (a, b)) in p.iter().zip(&q).enumerate() {
            prop_assert!(b.is_finite(), "softmax[{}] = {} at shift {}", i, b, shift);
            prop_assert!((a - b).abs() <= 1e-3, "softmax[{}]: {} vs shifted {}", i, a, b);
        }
    }
    // ANCHOR_END: prop_softmax_large

    // Before the affine part (w = 1, b = 0) every row has mean 0 (1e-5) and
    // variance 1 (1e-3, as eps = 1e-6 and values are O(10)).
    #[test]
    fn layer_norm_standardises_rows(
        (rows, cols, x) in (1usize..4, 2usize..200).prop_flat_map(|(r, c)| (Just(r), Just(c), values(r * c, 10.0))),
    ) {
        // Every row must vary: a constant row normalises to zeros (variance
        // 0, not 1), which `layer_norm` gets right but this property is not
        // about.
        let spread = |row: &[f32]| {
            let (lo, hi) = row.iter().fold((f32::MAX, f32::MIN), |(l, h), v| (l.min(*v), h.max(*v)));
            hi - lo
        };
        prop_assume!(x.chunks_exact(cols).all(|row| spread(row) > 0.1));
        let t = Tensor::from_vec(x, &[rows, cols]).unwrap();
        let w = Tensor::full(&[cols], 1.0).unwrap();
        let b = Tensor::zeros(&[cols]).unwrap();
        let y = t.layer_norm(&w, &b, 1e-6).unwrap().to_vec_f32().unwrap();
        for r in 0..rows {
            let row = &y[r * cols..(r + 1) * cols];
            let mean = row.iter().sum::<f32>() / cols as f32;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / cols as f32;
            prop_assert!(mean.abs() <= 1e-5, "row {} mean {}", r, mean);
            prop_assert!((var - 1.0).abs() <= 1e-3, "row {} variance {}", r, var);
        }
    }

    // matmul (plain, on a transposed view, and batched) equals the naive
    // triple loop within 1e-5·k.
    #[test]
    fn matmul_equals_naive(
        (m, k, n, a, b) in (1usize..12, 1usize..40, 1usize..12)
            .prop_flat_map(|(m, k, n)| (Just(m), Just(k), Just(n), values(2 * m * k, 1.0), values(2 * k * n, 1.0))),
    ) {
        let want0 = naive_matmul(&a[..m * k], &b[..k * n], m, k, n);
        let want1 = naive_matmul(&a[m * k..], &b[k * n..], m, k, n);
        let ta = Tensor::from_vec(a.clone(), &[2, m, k]).unwrap();
        let tb = Tensor::from_vec(b.clone(), &[2, k, n]).unwrap();
        let tol = 1e-5 * k as f32;
        let batched = ta.matmul(&tb).unwrap().to_vec_f32().unwrap();
        for (i, (g, w)) in batched.iter().zip(want0.iter().chain(&want1)).enumerate() {
            prop_assert!((g - w).abs() <= tol, "batched[{}]: {} vs {}", i, g, w);
        }
        // b stored transposed ([n, k]) and viewed back as [k, n]: no copy.
        let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
        let tbt = Tensor::from_vec(bt, &[n, k]).unwrap().transpose(0, 1).unwrap();
        let a0 = ta.narrow(0, 0, 1).unwrap().squeeze(0).unwrap();
        let two_d = a0.matmul(&tbt).unwrap().to_vec_f32().unwrap();
        for (i, (g, w)) in two_d.iter().zip(&want0).enumerate() {
            prop_assert!((g - w).abs() <= tol, "transposed[{}]: {} vs {}", i, g, w);
        }
        // Broadcast batch: [2, m, k] · [k, n].
        let b0 = tb.narrow(0, 0, 1).unwrap().squeeze(0).unwrap();
        let bc = ta.matmul(&b0).unwrap();
        prop_assert_eq!(bc.shape(), &[2, m, n]);
        // matvec agrees with matmul against a column.
        let x = Tensor::from_vec(b[..k].to_vec(), &[k]).unwrap();
        let mv = a0.matvec(&x).unwrap().to_vec_f32().unwrap();
        let mm = a0.matmul(&x.unsqueeze(1).unwrap()).unwrap().to_vec_f32().unwrap();
        for (i, (g, w)) in mv.iter().zip(&mm).enumerate() {
            prop_assert!((g - w).abs() <= tol, "matvec[{}]: {} vs {}", i, g, w);
        }
    }

    // Broadcast add equals adding the explicitly repeated tensor.
    #[test]
    fn broadcast_add_mul_equal_repeated(
        (r, c, x, y) in (1usize..6, 1usize..40).prop_flat_map(|(r, c)| (Just(r), Just(c), values(r * c, 5.0), values(c, 5.0))),
    ) {
        let t = Tensor::from_vec(x.clone(), &[r, c]).unwrap();
        let row = Tensor::from_vec(y.clone(), &[c]).unwrap();
        let rep = Tensor::from_vec((0..r * c).map(|i| y[i % c]).collect(), &[r, c]).unwrap();
        prop_assert_eq!(t.add(&row).unwrap().to_vec_f32().unwrap(), t.add(&rep).unwrap().to_vec_f32().unwrap());
        prop_assert_eq!(row.mul(&t).unwrap().to_vec_f32().unwrap(), rep.mul(&t).unwrap().to_vec_f32().unwrap());
        let col = Tensor::from_vec(x[..r].to_vec(), &[r, 1]).unwrap();
        let want: Vec<f32> = (0..r * c).map(|i| x[i] + x[i / c]).collect();
        prop_assert_eq!(t.add(&col).unwrap().to_vec_f32().unwrap(), want);
        let want: Vec<f32> = x.iter().map(|v| v * 2.5).collect();
        prop_assert_eq!(t.scale(2.5).unwrap().to_vec_f32().unwrap(), want);
    }
}

#[test]
fn concat_embedding_argmax_topk() {
    let a = Tensor::arange(&[2, 2]).unwrap();
    let b = Tensor::full(&[2, 1], 9.0).unwrap();
    let c = Tensor::concat(&[&a, &b], 1).unwrap();
    assert_eq!(c.shape(), [2, 3]);
    assert_eq!(c.to_vec_f32().unwrap(), [0.0, 1.0, 9.0, 2.0, 3.0, 9.0]);
    let d = Tensor::concat(&[&a, &a], 0).unwrap();
    assert_eq!(
        d.to_vec_f32().unwrap(),
        [0.0, 1.0, 2.0, 3.0, 0.0, 1.0, 2.0, 3.0]
    );

    let table = Tensor::arange(&[4, 3])
        .unwrap()
        .to_dtype(engine::DType::F16)
        .unwrap();
    let e = table.embedding(&[3, 0, 3]).unwrap();
    assert_eq!(
        e.to_vec_f32().unwrap(),
        [9.0, 10.0, 11.0, 0.0, 1.0, 2.0, 9.0, 10.0, 11.0]
    );

    let x = Tensor::from_vec(vec![0.5, 3.0, -1.0, 3.0, 2.0, 0.0], &[2, 3]).unwrap();
    assert_eq!(x.argmax().unwrap(), [1, 0]);
    assert_eq!(
        x.top_k(2).unwrap(),
        vec![vec![(1, 3.0), (0, 0.5)], vec![(0, 3.0), (1, 2.0)]]
    );
}

#[test]
fn f16_matvec_matches_f32_on_representable_weights() {
    let w: Vec<f32> = (0..40 * 33)
        .map(|i| ((i % 17) as f32 - 8.0) * 0.125)
        .collect();
    let x: Vec<f32> = (0..33).map(|i| (i as f32).sin()).collect();
    let t = Tensor::from_vec(w, &[40, 33]).unwrap();
    let xv = Tensor::from_vec(x, &[33]).unwrap();
    let want = t.matvec(&xv).unwrap().to_vec_f32().unwrap();
    let got = t
        .to_dtype(engine::DType::F16)
        .unwrap()
        .matvec(&xv)
        .unwrap()
        .to_vec_f32()
        .unwrap();
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        // Same weights exactly (multiples of 1/8): only summation order differs; 1e-5.
        assert!((g - w).abs() <= 1e-5, "matvec_f16[{i}]: {g} vs {w}");
    }
}

#[test]
fn large_row_ops_split_across_threads_equal_row_by_row() {
    // Big enough (> 2^18 elements) that the rows go to the thread pool.
    let (rows, cols) = (8, 49152);
    let x: Vec<f32> = (0..rows * cols)
        .map(|i| ((i * 7919) % 1000) as f32 / 100.0 - 5.0)
        .collect();
    let t = Tensor::from_vec(x.clone(), &[rows, cols]).unwrap();
    let got = t.softmax().unwrap().to_vec_f32().unwrap();
    let w = Tensor::full(&[cols], 0.5).unwrap();
    let got_rms = t.rms_norm(&w, 1e-6).unwrap().to_vec_f32().unwrap();
    for r in 0..rows {
        let row = Tensor::from_vec(x[r * cols..(r + 1) * cols].to_vec(), &[cols]).unwrap();
        // Same kernel on the same row: identical results.
        assert_eq!(
            &got[r * cols..(r + 1) * cols],
            &row.softmax().unwrap().to_vec_f32().unwrap()[..],
            "softmax row {r}"
        );
        assert_eq!(
            &got_rms[r * cols..(r + 1) * cols],
            &row.rms_norm(&w, 1e-6).unwrap().to_vec_f32().unwrap()[..],
            "rms_norm row {r}"
        );
    }
}

#[test]
fn half_matmul_is_converted_in_blocks_and_matches_f32() {
    // k = 600 spans three conversion blocks of 256 (the last one partial);
    // the values are multiples of 1/8 in a small range, exact in f16 and
    // bf16, so only the summation order differs from the f32 product.
    let (m, k, n) = (5, 600, 7);
    let a: Vec<f32> = (0..m * k)
        .map(|i| ((i % 13) as f32 - 6.0) * 0.125)
        .collect();
    let b: Vec<f32> = (0..k * n)
        .map(|i| ((i % 11) as f32 - 5.0) * 0.125)
        .collect();
    let ta = Tensor::from_vec(a, &[m, k]).unwrap();
    // b is stored as [n, k] and used through a transposed view, so the
    // blocked path reads strided halves too.
    let tb = Tensor::from_vec(b, &[n, k])
        .unwrap()
        .transpose(0, 1)
        .unwrap();
    let want = ta.matmul(&tb).unwrap().to_vec_f32().unwrap();
    for dtype in [engine::DType::F16, engine::DType::BF16] {
        for (x, y) in [
            (ta.to_dtype(dtype).unwrap(), tb.clone()),
            (ta.clone(), tb.to_dtype(dtype).unwrap()),
            (ta.to_dtype(dtype).unwrap(), tb.to_dtype(dtype).unwrap()),
        ] {
            let got = x.matmul(&y).unwrap();
            assert_eq!(got.shape(), [m, n]);
            for (i, (g, w)) in got.to_vec_f32().unwrap().iter().zip(&want).enumerate() {
                // Exact inputs; sums of up to 600 products of size <= 0.6: 1e-3 absolute.
                assert!((g - w).abs() <= 1e-3, "{dtype:?} matmul[{i}]: {g} vs {w}");
            }
        }
    }
}

#[test]
fn layer_norm_of_a_constant_row_is_its_bias() {
    let t = Tensor::from_vec(vec![3.5; 8], &[1, 8]).unwrap();
    let w = Tensor::full(&[8], 2.0).unwrap();
    let b = Tensor::full(&[8], 0.25).unwrap();
    let y = t.layer_norm(&w, &b, 1e-6).unwrap().to_vec_f32().unwrap();
    assert_eq!(y, vec![0.25; 8]);
}
