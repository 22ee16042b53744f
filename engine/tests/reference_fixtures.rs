//! Tensor ops against PyTorch / Hugging Face outputs produced by
//! `scripts/make_engine_fixtures.py` (committed in `fixtures/engine_ops.json`).

use engine::Tensor;
use serde_json::Value;

fn cases() -> Value {
    let text = include_str!("fixtures/engine_ops.json");
    serde_json::from_str(text).unwrap()
}

fn tensor(v: &Value) -> Tensor {
    let shape: Vec<usize> = v["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    let data: Vec<f32> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_f64().unwrap() as f32)
        .collect();
    Tensor::from_vec(data, &shape).unwrap()
}

/// Assert `got` equals the reference within `|d| <= abs + rel·|want|`,
/// naming the tensor and the worst index.
fn assert_close(name: &str, got: &Tensor, want: &Tensor, abs: f32, rel: f32) {
    assert_eq!(got.shape(), want.shape(), "{name}: shape");
    let (g, w) = (got.to_vec_f32().unwrap(), want.to_vec_f32().unwrap());
    let (mut worst, mut at) = (0.0f32, 0);
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        let excess = (a - b).abs() - (abs + rel * b.abs());
        if excess > worst {
            (worst, at) = (excess, i);
        }
    }
    assert!(
        worst <= 0.0,
        "{name}[{at}]: got {} want {} (diff {} over bound abs {abs} + rel {rel})",
        g[at],
        w[at],
        (g[at] - w[at]).abs()
    );
}

#[test]
fn gelu_tanh_matches_torch() {
    let c = &cases()["gelu_tanh"];
    // Tolerance: 1e-6 absolute + 1e-5 relative (vector exp vs libm tanh).
    assert_close(
        "gelu_tanh",
        &tensor(&c["x"]).gelu().unwrap(),
        &tensor(&c["out"]),
        1e-6,
        1e-5,
    );
}

#[test]
fn softmax_and_log_softmax_match_torch() {
    let c = &cases();
    let x = tensor(&c["softmax"]["x"]);
    // Tolerance: 1e-7 absolute + 1e-5 relative.
    assert_close(
        "softmax",
        &x.softmax().unwrap(),
        &tensor(&c["softmax"]["out"]),
        1e-7,
        1e-5,
    );
    // Log-probabilities up to about -60: 1e-5 absolute + 1e-5 relative.
    assert_close(
        "log_softmax",
        &x.log_softmax().unwrap(),
        &tensor(&c["log_softmax"]["out"]),
        1e-5,
        1e-5,
    );
}

#[test]
fn layer_norm_matches_torch() {
    let c = &cases()["layer_norm"];
    let eps = c["eps"].as_f64().unwrap() as f32;
    let got = tensor(&c["x"])
        .layer_norm(&tensor(&c["w"]), &tensor(&c["b"]), eps)
        .unwrap();
    // Tolerance: 1e-5 absolute + 1e-5 relative.
    assert_close("layer_norm", &got, &tensor(&c["out"]), 1e-5, 1e-5);
}

#[test]
fn rms_norm_matches_hf_llama() {
    let c = &cases()["rms_norm"];
    let eps = c["eps"].as_f64().unwrap() as f32;
    let got = tensor(&c["x"]).rms_norm(&tensor(&c["w"]), eps).unwrap();
    // Tolerance: 1e-5 absolute + 1e-5 relative.
    assert_close("rms_norm", &got, &tensor(&c["out"]), 1e-5, 1e-5);
}

// ANCHOR: rope_reference
#[test]
fn rope_matches_hf_rotate_half() {
    let c = &cases()["rope"];
    let start = c["start_pos"].as_u64().unwrap() as usize;
    let theta = c["theta"].as_f64().unwrap() as f32;
    let got = tensor(&c["x"]).rope(start, theta).unwrap();
    // Tolerance: 1e-5 absolute + 1e-5 relative (angles up to 11 rad in f32).
    assert_close("rope", &got, &tensor(&c["out"]), 1e-5, 1e-5);
}
// ANCHOR_END: rope_reference

#[test]
fn causal_gqa_attention_matches_torch_sdpa() {
    let c = cases();
    for name in ["attention_prefill", "attention_offset", "attention_decode"] {
        let c = &c[name];
        let got =
            Tensor::causal_attention(&tensor(&c["q"]), &tensor(&c["k"]), &tensor(&c["v"])).unwrap();
        // Tolerance: 1e-5 absolute + 1e-5 relative.
        assert_close(name, &got, &tensor(&c["out"]), 1e-5, 1e-5);
    }
}
