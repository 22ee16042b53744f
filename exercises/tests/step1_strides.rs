//! Step 1: strides, views and the copy of a view, then the heads of
//! PyTorch's attention fixtures split with them.

use engine::kernels::{self, AttnDims};
use engine::tensor::Layout;
use exercises::step1_strides::{contiguous_strides, gather, narrow, permute};
use exercises::support::{assert_close, engine_ops, tensor};

fn contiguous(shape: &[usize]) -> Layout {
    Layout {
        shape: shape.to_vec(),
        strides: contiguous_strides(shape),
        offset: 0,
    }
}

#[test]
fn strides_are_row_major() {
    // Expected: the engine's strides for the same shapes.
    for shape in [
        &[5][..],
        &[2, 3],
        &[2, 3, 4],
        &[6, 1, 8],
        &[1, 1],
        &[3, 4, 16, 2],
    ] {
        assert_eq!(
            contiguous_strides(shape),
            engine::Tensor::zeros(shape).unwrap().strides(),
            "strides of {shape:?}"
        );
    }
}

#[test]
fn views_read_what_the_engine_reads() {
    // Expected: the engine's own views of the same tensor, read out in order.
    let t = engine::Tensor::arange(&[3, 4, 5]).unwrap();
    let data = t.to_vec_f32().unwrap();
    let base = contiguous(&[3, 4, 5]);
    let p = permute(&base, &[2, 0, 1]);
    assert_eq!(p.shape, [5, 3, 4], "permuted shape");
    assert_eq!(
        gather(&data, &p),
        t.permute(&[2, 0, 1]).unwrap().to_vec_f32().unwrap(),
        "permute [2, 0, 1]"
    );
    let n = narrow(&p, 1, 1, 2);
    assert_eq!(
        gather(&data, &n),
        t.permute(&[2, 0, 1])
            .and_then(|v| v.narrow(1, 1, 2))
            .and_then(|v| v.to_vec_f32())
            .unwrap(),
        "narrow of a permuted view"
    );
    let n = narrow(&narrow(&base, 2, 3, 2), 0, 2, 1);
    assert_eq!(
        gather(&data, &n),
        t.narrow(2, 3, 2)
            .and_then(|v| v.narrow(0, 2, 1))
            .and_then(|v| v.to_vec_f32())
            .unwrap(),
        "narrow twice"
    );
}

#[test]
fn heads_split_with_your_views_match_torch_attention() {
    // Each case: q [t, n_heads, hd], k and v [s, n_kv, hd], and PyTorch's
    // causal scaled_dot_product_attention output [t, n_heads, hd]. For each
    // query head, cut it out of q and of the output with your views, cut
    // its KV head out of k [s, n_kv, hd] -> [n_kv, s, hd], and run the
    // engine's attention on one head.
    let c = engine_ops();
    for name in ["attention_prefill", "attention_offset", "attention_decode"] {
        let (q, q_shape) = tensor(&c[name]["q"]);
        let (k, kv_shape) = tensor(&c[name]["k"]);
        let (v, _) = tensor(&c[name]["v"]);
        let (out, _) = tensor(&c[name]["out"]);
        let (t, n_heads, hd) = (q_shape[0], q_shape[1], q_shape[2]);
        let (s, n_kv) = (kv_shape[0], kv_shape[1]);
        let kv_heads = permute(&contiguous(&kv_shape), &[1, 0, 2]);
        for h in 0..n_heads {
            let head = narrow(&contiguous(&q_shape), 1, h, 1);
            let g = h / (n_heads / n_kv);
            let kv = narrow(&kv_heads, 0, g, 1);
            let dims = AttnDims {
                n_heads: 1,
                n_kv_heads: 1,
                head_dim: hd,
                capacity: s,
            };
            let mut got = vec![0.0; t * hd];
            kernels::attention_prefill(
                &gather(&q, &head),
                &gather(&k, &kv)[..],
                &gather(&v, &kv)[..],
                dims,
                s - t,
                t,
                &mut got,
            );
            // Tolerance: 1e-5 absolute + 1e-5 relative, as the engine's own check.
            assert_close(
                &format!("{name} head {h}"),
                &got,
                &gather(&out, &head),
                1e-5,
                1e-5,
            );
        }
    }
}
