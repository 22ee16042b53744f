//! Views, copies, dtypes, display and errors of `Tensor`.

use engine::{DType, EngineError, Tensor};
use proptest::prelude::*;

/// A random shape of rank 1..=4 with dims 1..=5, and a matching tensor of
/// distinct values.
fn shaped() -> impl Strategy<Value = Tensor> {
    proptest::collection::vec(1usize..=5, 1..=4).prop_map(|s| Tensor::arange(&s).unwrap())
}

/// All multi-indices of `shape` in row-major order.
fn all_indices(shape: &[usize]) -> Vec<Vec<usize>> {
    let mut out = vec![vec![]];
    for &d in shape {
        out = out
            .into_iter()
            .flat_map(|p| (0..d).map(move |i| [p.clone(), vec![i]].concat()))
            .collect();
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    // permute is a view, and reading it equals indexing the original with
    // the permuted coordinates; contiguous() of it equals that gather.
    #[test]
    fn permute_equals_gather(t in shaped(), seed in any::<u64>()) {
        let mut dims: Vec<usize> = (0..t.rank()).collect();
        let mut s = seed;
        for i in (1..dims.len()).rev() {
            dims.swap(i, (s % (i as u64 + 1)) as usize);
            s /= i as u64 + 1;
        }
        let p = t.permute(&dims).unwrap();
        prop_assert!(p.shares_storage(&t));
        let want: Vec<f32> = all_indices(p.shape()).iter().map(|idx| {
            let mut orig = vec![0; t.rank()];
            for (k, &d) in dims.iter().enumerate() { orig[d] = idx[k]; }
            t.get(&orig).unwrap()
        }).collect();
        prop_assert_eq!(p.to_vec_f32().unwrap(), want.clone());
        let c = p.contiguous().unwrap();
        prop_assert!(c.is_contiguous());
        prop_assert_eq!(c.to_vec_f32().unwrap(), want);
    }

    // ANCHOR: prop_narrow
    // narrow is a view equal to the copied sub-block.
    #[test]
    fn narrow_equals_copy(t in shaped(), axis_seed in any::<usize>(), a in any::<usize>(), b in any::<usize>()) {
        let axis = axis_seed % t.rank();
        let d = t.shape()[axis];
        let (start, len) = (a % d, b % (d - a % d + 1));
        let v = t.narrow(axis, start, len).unwrap();
        prop_assert!(v.shares_storage(&t));
        let want: Vec<f32> = all_indices(v.shape()).iter().map(|idx| {
            let mut orig = idx.clone();
            orig[axis] += start;
            t.get(&orig).unwrap()
        }).collect();
        prop_assert_eq!(v.to_vec_f32().unwrap(), want);
    }
    // ANCHOR_END: prop_narrow

    // broadcast_to reads the original at coordinate 0 of repeated dims.
    #[test]
    fn broadcast_equals_repeat(t in shaped(), extra in 1usize..3, rep in 2usize..4) {
        // Make dim 0 of size 1 by narrowing, then broadcast it and add a leading dim.
        let base = t.narrow(0, 0, 1).unwrap();
        let mut shape = vec![extra];
        shape.extend_from_slice(base.shape());
        shape[1] = rep;
        let v = base.broadcast_to(&shape).unwrap();
        prop_assert!(v.shares_storage(&t));
        for idx in all_indices(&shape) {
            let mut orig = idx[1..].to_vec();
            orig[0] = 0;
            prop_assert_eq!(v.get(&idx).unwrap(), base.get(&orig).unwrap());
        }
    }

    // reshape of a contiguous tensor is a view; of a transposed one, a copy
    // with the same logical order.
    #[test]
    fn reshape_views_and_copies(t in shaped()) {
        let n = t.numel();
        let flat = t.reshape(&[n]).unwrap();
        prop_assert!(flat.shares_storage(&t));
        prop_assert_eq!(flat.to_vec_f32().unwrap(), t.to_vec_f32().unwrap());
        if t.rank() >= 2 && t.shape()[0] > 1 && t.shape()[1] > 1 {
            let tt = t.transpose(0, 1).unwrap();
            prop_assert!(!tt.is_contiguous());
            let r = tt.reshape(&[n]).unwrap();
            prop_assert!(!r.shares_storage(&t));
            prop_assert_eq!(r.to_vec_f32().unwrap(), tt.to_vec_f32().unwrap());
        }
    }

    // squeeze(unsqueeze(x)) is x, both views.
    #[test]
    fn unsqueeze_squeeze_roundtrip(t in shaped(), a in any::<usize>()) {
        let axis = a % (t.rank() + 1);
        let u = t.unsqueeze(axis).unwrap();
        prop_assert_eq!(u.shape()[axis], 1);
        prop_assert!(u.is_contiguous() && u.shares_storage(&t));
        let s = u.squeeze(axis).unwrap();
        prop_assert_eq!(s.shape(), t.shape());
        prop_assert_eq!(s.to_vec_f32().unwrap(), t.to_vec_f32().unwrap());
    }
}

#[test]
fn transpose_is_free_and_contiguous_copies_only_when_needed() {
    let t = Tensor::arange(&[2, 3]).unwrap();
    let tt = t.transpose(0, 1).unwrap();
    assert!(tt.shares_storage(&t));
    assert_eq!(tt.strides(), [1, 3]);
    assert!(t.contiguous().unwrap().shares_storage(&t));
    assert!(!tt.contiguous().unwrap().shares_storage(&t));
    // A narrowed row block is still one contiguous run: no copy.
    let rows = Tensor::arange(&[4, 3]).unwrap().narrow(0, 1, 2).unwrap();
    assert!(rows.is_contiguous());
    assert_eq!(rows.as_f32_slice().unwrap(), [3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
}

#[test]
fn dtype_conversions_roundtrip_representable_values() {
    let vals: Vec<f32> = (-8..8).map(|i| i as f32 * 0.25).collect();
    let t = Tensor::from_vec(vals.clone(), &[4, 4]).unwrap();
    for dt in [DType::F16, DType::BF16] {
        let h = t.to_dtype(dt).unwrap();
        assert_eq!(h.dtype(), dt);
        assert_eq!(h.to_dtype(DType::F32).unwrap().to_vec_f32().unwrap(), vals);
        // Views work on half storage too.
        assert_eq!(
            h.transpose(0, 1).unwrap().get(&[1, 0]).unwrap(),
            t.get(&[0, 1]).unwrap()
        );
    }
}

#[test]
fn quantized_tensors_are_blocks_and_ops_reject_them() {
    let q = Tensor::from_quantized(DType::Q8_0, vec![0u8; 2 * 34], &[2, 32]).unwrap();
    assert_eq!(q.dtype(), DType::Q8_0);
    assert_eq!(q.storage().len(), 2);
    assert!(matches!(
        q.softmax(),
        Err(EngineError::UnsupportedDType {
            op: "softmax",
            dtype: DType::Q8_0
        })
    ));
    assert!(matches!(
        q.transpose(0, 1),
        Err(EngineError::UnsupportedDType { .. })
    ));
    assert!(Tensor::from_quantized(DType::Q4_0, vec![0u8; 18], &[1, 31]).is_err());
    assert!(Tensor::from_quantized(DType::Q4_0, vec![0u8; 17], &[1, 32]).is_err());
    assert!(Tensor::from_quantized(DType::F16, vec![0u8; 4], &[2]).is_err());
}

#[test]
fn errors_name_the_op_and_shapes() {
    let a = Tensor::zeros(&[2, 3]).unwrap();
    let b = Tensor::zeros(&[4]).unwrap();
    let e = a.add(&b).unwrap_err();
    assert_eq!(e.to_string(), "add: shape mismatch between [2, 3] and [4]");
    let e = a.matmul(&a).unwrap_err();
    assert_eq!(
        e.to_string(),
        "matmul: shape mismatch between [2, 3] and [2, 3]"
    );
    let e = a.narrow(1, 2, 2).unwrap_err();
    assert_eq!(
        e.to_string(),
        "narrow: index 4 out of range for dimension of size 3"
    );
    assert!(matches!(
        a.permute(&[0, 0]),
        Err(EngineError::BadShape { op: "permute", .. })
    ));
    assert!(matches!(
        Tensor::from_vec(vec![1.0; 5], &[2, 3]),
        Err(EngineError::LengthMismatch { .. })
    ));
    assert!(matches!(
        a.embedding(&[2]),
        Err(EngineError::OutOfRange {
            op: "embedding",
            index: 2,
            size: 2
        })
    ));
    assert!(a.get(&[2, 0]).is_err());
    assert!(a.rope(0, 1e4).is_err());
    assert!(Tensor::concat(&[], 0).is_err());
}

#[test]
fn display_prints_small_tensors_and_elides_long_dims() {
    let t = Tensor::arange(&[2, 3]).unwrap();
    assert_eq!(
        t.to_string(),
        "tensor([[0.0000, 1.0000, 2.0000],\n        [3.0000, 4.0000, 5.0000]], shape=[2, 3], dtype=f32)"
    );
    let long = Tensor::arange(&[10]).unwrap();
    assert_eq!(
        long.to_string(),
        "tensor([0.0000, 1.0000, 2.0000, ..., 7.0000, 8.0000, 9.0000], shape=[10], dtype=f32)"
    );
}
