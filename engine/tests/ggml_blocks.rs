//! Q5_0, Q4_K and Q6_K against ggml itself: the bytes its reference
//! quantizers write and the floats its dequantizers read back, for eight
//! kinds of input (noise, weight-like rows, an outlier, zeros, a constant,
//! sub-blocks of very different size, positive only, values on a grid).
//! Made by `scripts/make_block_fixtures.sh` from llama.cpp 0c1e570's
//! libggml-base.

use engine::DType;
use engine::quant::act::Q8Acts;
use engine::quant::{self, dot};
use serde_json::Value;

struct Case {
    dtype: DType,
    name: String,
    x: Vec<f32>,
    bytes: Vec<u8>,
    dequantized: Vec<f32>,
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_f64().unwrap() as f32)
        .collect()
}

fn cases() -> Vec<Case> {
    include_str!("fixtures/ggml_blocks.jsonl")
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            let hex = v["bytes"].as_str().unwrap();
            Case {
                dtype: v["type"].as_str().unwrap().parse().unwrap(),
                name: format!("{} case {}", v["type"].as_str().unwrap(), v["case"]),
                x: floats(&v["x"]),
                bytes: (0..hex.len() / 2)
                    .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
                    .collect(),
                dequantized: floats(&v["dequantized"]),
            }
        })
        .collect()
}

#[test]
fn fixture_covers_every_format() {
    let all = cases();
    for dt in [DType::Q5_0, DType::Q4_K, DType::Q6_K] {
        assert_eq!(all.iter().filter(|c| c.dtype == dt).count(), 8, "{dt}");
    }
}

// ANCHOR: kquant_bytes_match_ggml
/// Our quantizers write ggml's bytes, bit for bit.
#[test]
fn quantizers_write_ggml_bytes() {
    for c in cases() {
        let ours = quant::quantize(c.dtype, &c.x).unwrap();
        assert_eq!(ours.len(), c.bytes.len(), "{}", c.name);
        if let Some(i) = ours.iter().zip(&c.bytes).position(|(a, b)| a != b) {
            panic!(
                "{}: byte {i} of {} is {:#04x}, ggml wrote {:#04x}",
                c.name,
                ours.len(),
                ours[i],
                c.bytes[i]
            );
        }
    }
}
// ANCHOR_END: kquant_bytes_match_ggml

/// Our dequantizers read ggml's bytes as ggml does, to the last bit.
#[test]
fn dequantizers_match_ggml() {
    for c in cases() {
        let mut out = vec![f32::NAN; c.x.len()];
        quant::dequantize(c.dtype, &c.bytes, &mut out).unwrap();
        for (i, (a, b)) in out.iter().zip(&c.dequantized).enumerate() {
            assert_eq!(
                a.to_bits(),
                b.to_bits(),
                "{} element {i}: {a} vs ggml {b}",
                c.name
            );
        }
    }
}

/// The integer dot product of a ggml block with quantized activations stays
/// within the activations' 8-bit rounding (at most half a step, `d_a / 2`,
/// per value) of the f32 product of ggml's dequantized values, and the SIMD
/// body equals its plain twin.
#[test]
fn dot_products_of_ggml_blocks() {
    for c in cases() {
        let n = c.x.len();
        let a: Vec<f32> = (0..n)
            .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
            .collect();
        let mut acts = Q8Acts::default();
        acts.quantize(&a, n);
        let fast = dot::dot(c.dtype, &c.bytes, acts.row(0));
        let plain = dot::dot_scalar(c.dtype, &c.bytes, acts.row(0));
        let mag: f32 = c
            .dequantized
            .iter()
            .zip(&a)
            .map(|(w, x)| (w * x).abs())
            .sum();
        let exact: f32 = c.dequantized.iter().zip(&a).map(|(w, x)| w * x).sum();
        let rounding: f32 = c
            .dequantized
            .iter()
            .enumerate()
            .map(|(i, w)| w.abs() * acts.d[i / 32] / 2.0)
            .sum();
        assert!(
            (fast - plain).abs() <= 1e-5 * mag.max(1.0),
            "{}: {fast} vs {plain}",
            c.name
        );
        assert!(
            (fast - exact).abs() <= rounding * 1.01 + 1e-5 * mag,
            "{}: {fast} vs f32 {exact}",
            c.name
        );
    }
}
