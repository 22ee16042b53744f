//! Q5_0, Q4_K and Q6_K against ggml itself: the bytes its reference
//! quantizers write and the floats its dequantizers read back, for eight
//! kinds of input (noise, weight-like rows, an outlier, zeros, a constant,
//! sub-blocks of very different size, positive only, values on a grid);
//! and the K-quants' activation blocks (Q8_K) on the same inputs.
//! Made by `scripts/make_block_fixtures.sh` from llama.cpp 0c1e570's
//! libggml-base.

use engine::DType;
use engine::quant::act::{Q8Acts, quantize_k_block};
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

/// The fixture's lines of type `name`, or of every weight format.
fn lines(name: Option<&str>) -> Vec<(Option<DType>, Case)> {
    include_str!("fixtures/ggml_blocks.jsonl")
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|v| {
            let t = v["type"].as_str().unwrap();
            name.map_or(t != "q8_k", |n| n == t)
        })
        .map(|v| {
            let hex = v["bytes"].as_str().unwrap();
            let t = v["type"].as_str().unwrap();
            let case = Case {
                dtype: DType::F32,
                name: format!("{t} case {}", v["case"]),
                x: floats(&v["x"]),
                bytes: (0..hex.len() / 2)
                    .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
                    .collect(),
                dequantized: floats(&v["dequantized"]),
            };
            (t.parse().ok(), case)
        })
        .collect()
}

/// The weight formats' cases.
fn cases() -> Vec<Case> {
    lines(None)
        .into_iter()
        .map(|(dtype, c)| Case {
            dtype: dtype.unwrap(),
            ..c
        })
        .collect()
}

// ANCHOR: q8_k_matches_ggml
/// The K-quants' activation blocks are ggml's `block_q8_K`, bit for bit:
/// the f32 scale, the 256 codes and the sixteen sums of 16.
#[test]
fn activation_blocks_of_256_match_ggml() {
    let all = lines(Some("q8_k"));
    assert_eq!(all.len(), 8);
    for (_, c) in all {
        let (mut q, mut sums) = ([0i8; 256], [0i16; 16]);
        let d = quantize_k_block(&c.x, &mut q, &mut sums);
        assert_eq!(d.to_le_bytes(), c.bytes[..4], "{}: scale {d}", c.name);
        let codes: Vec<u8> = q.iter().map(|&v| v as u8).collect();
        assert_eq!(codes, c.bytes[4..260], "{}: codes", c.name);
        let sums: Vec<u8> = sums.iter().flat_map(|s| s.to_le_bytes()).collect();
        // An all-zero block: ggml writes the zero scale and codes and
        // leaves the sums as they were (the dumper's 0xAA filler); ours are
        // zero. Either way the scale makes their products zero.
        if d != 0.0 {
            assert_eq!(sums, c.bytes[260..292], "{}: sums of 16", c.name);
        }
    }
}
// ANCHOR_END: q8_k_matches_ggml

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
        let k_blocks = c.dtype.block_len() == 256;
        acts.quantize_blocks(&a, n, true, k_blocks);
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
            .map(|(i, w)| {
                let step = if k_blocks {
                    acts.k.d[i / 256].abs()
                } else {
                    acts.d[i / 32]
                };
                w.abs() * step / 2.0
            })
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
