//! Step 3: one causal attention head against PyTorch's
//! `scaled_dot_product_attention(is_causal)` with grouped-query heads
//! (`engine/tests/fixtures/engine_ops.json`).

use engine::Tensor;
use exercises::step3_attention::attention_head;
use exercises::support::{assert_close, engine_ops, tensor};

/// Head `h` of a `[positions, heads, head_dim]` fixture tensor, as
/// `positions × head_dim` rows.
fn head(v: &serde_json::Value, h: usize) -> Vec<f32> {
    let (data, shape) = tensor(v);
    Tensor::from_vec(data, &shape)
        .and_then(|t| t.narrow(1, h, 1))
        .and_then(|t| t.to_vec_f32())
        .unwrap()
}

fn check(name: &str) {
    let c = &engine_ops()[name];
    let (_, q_shape) = tensor(&c["q"]);
    let (_, kv_shape) = tensor(&c["k"]);
    let (t, n_heads, hd) = (q_shape[0], q_shape[1], q_shape[2]);
    // Query head h reads KV head h / (n_heads / n_kv_heads).
    let group = n_heads / kv_shape[1];
    for h in 0..n_heads {
        let mut got = vec![0.0; t * hd];
        attention_head(
            &head(&c["q"], h),
            &head(&c["k"], h / group),
            &head(&c["v"], h / group),
            hd,
            &mut got,
        );
        // Tolerance: 1e-5 absolute + 1e-5 relative, as the engine's own check.
        assert_close(
            &format!("{name} head {h}"),
            &got,
            &head(&c["out"], h),
            1e-5,
            1e-5,
        );
    }
}

#[test]
fn prefill_matches_torch() {
    // 6 queries over their own 6 positions.
    check("attention_prefill");
}

#[test]
fn prefill_after_cached_positions_matches_torch() {
    // 3 new queries at positions 6..9 over 9 keys: query i sees 7 + i keys.
    check("attention_offset");
}

#[test]
fn decode_step_matches_torch() {
    // 1 query over 20 keys.
    check("attention_decode");
}
