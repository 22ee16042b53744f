//! End-to-end runs of the `infer` commands (in-process, through the same
//! entry point as the binary), on the real SmolLM2 and the GPT-2 fixtures.

use clap::Parser;
use integration_tests::{f32s, fixture_dir, heavy_lock, ids, read_json, smollm2_path};

fn run(args: &[&str]) -> String {
    let cli = infer::Cli::try_parse_from(std::iter::once("infer").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("parsing {args:?}: {e}"));
    let mut out = Vec::new();
    infer::run(cli, &mut out).unwrap_or_else(|e| panic!("infer {args:?}: {e:#}"));
    String::from_utf8(out).unwrap()
}

fn json(args: &[&str]) -> serde_json::Value {
    let text = run(args);
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("infer {args:?} printed non-JSON ({e}): {text}"))
}

#[test]
fn generate_smollm2_json_matches_the_reference_greedy_tokens() {
    let _g = heavy_lock();
    let model = smollm2_path();
    let r = read_json(&fixture_dir("smollm2").join("reference.json"));
    let g = &r["greedy"][0];
    let prompt = g["text"].as_str().unwrap();
    let v = json(&[
        "generate",
        prompt,
        "--max-new-tokens",
        "12",
        "--json",
        "--model",
        model.to_str().unwrap(),
    ]);
    assert_eq!(ids(&v["prompt_ids"]), ids(&g["ids"]), "prompt tokenization");
    assert_eq!(
        ids(&v["ids"]),
        ids(&g["tokens"])[..12].to_vec(),
        "generated ids"
    );
    assert!(!v["text"].as_str().unwrap().is_empty());
    assert!(v["timing"]["decode_tok_per_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn generate_streams_text_for_gpt2_ids() {
    let dir = fixture_dir("gpt2-tiny-a");
    let r = read_json(&dir.join("reference.json"));
    let g = &r["greedy"][0];
    let prompt: Vec<String> = ids(&g["ids"]).iter().map(u32::to_string).collect();
    let want = ids(&g["tokens"]);
    // Compare up to the first near-tie in the reference (margin < 1e-3).
    let k = f32s(&g["margins"])
        .iter()
        .position(|&m| m < 1e-3)
        .unwrap_or(want.len())
        .min(16);
    let n = k.to_string();
    let text = run(&[
        "generate",
        &prompt.join(","),
        "--ids",
        "--max-new-tokens",
        &n,
        "--model",
        dir.to_str().unwrap(),
    ]);
    // Without tokenizer files the stream is the ids themselves.
    let got: Vec<u32> = text
        .split_whitespace()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(got, want[..k].to_vec());
}

#[test]
fn tokenize_prints_ids_and_pieces() {
    let model = smollm2_path();
    let r = read_json(&fixture_dir("smollm2").join("reference.json"));
    let p = &r["logits"][0];
    let v = json(&[
        "tokenize",
        p["text"].as_str().unwrap(),
        "--json",
        "--model",
        model.to_str().unwrap(),
    ]);
    assert_eq!(ids(&v["ids"]), ids(&p["ids"]));
    let pieces: String = v["pieces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(pieces, p["text"].as_str().unwrap());
}

#[test]
fn inspect_describes_smollm2_and_gpt2() {
    let model = smollm2_path();
    let text = run(&["inspect", model.to_str().unwrap()]);
    for needle in [
        "architecture: llama",
        "Q4_1",
        "Q8_0",
        "30 layers",
        "KV cache",
        "per 1k tokens",
        "token_embd.weight",
    ] {
        assert!(
            text.contains(needle),
            "inspect output lacks {needle:?}:\n{text}"
        );
    }
    let dir = fixture_dir("gpt2-tiny-b");
    let text = run(&["inspect", dir.to_str().unwrap(), "--all"]);
    for needle in [
        "GPT-2: 4 layers",
        "F16",
        "transformer.h.3.mlp.c_proj.weight",
        "KV cache",
    ] {
        assert!(
            text.contains(needle),
            "inspect output lacks {needle:?}:\n{text}"
        );
    }
}

#[test]
fn bench_reports_every_phase_as_json() {
    let dir = fixture_dir("gpt2-tiny-a");
    let v = json(&[
        "bench",
        "--json",
        "--prompt-tokens",
        "16",
        "--new-tokens",
        "8",
        "--no-cache-tokens",
        "2",
        "--positions",
        "32,64",
        "--model",
        dir.to_str().unwrap(),
    ]);
    for phase in ["prefill", "decode_kv_cache", "decode_no_cache"] {
        assert!(
            v[phase]["tok_per_s"].as_f64().unwrap() > 0.0,
            "{phase} in {v}"
        );
    }
    assert_eq!(v["kv_cache_speedup"].as_array().unwrap().len(), 2);
}

#[test]
fn chat_keeps_the_conversation_in_the_cache() {
    let _g = heavy_lock();
    let model = smollm2_path();
    let cli = infer::Cli::try_parse_from([
        "infer",
        "chat",
        "--max-new-tokens",
        "8",
        "--model",
        model.to_str().unwrap(),
    ])
    .unwrap();
    let infer::Command::Chat(args) = cli.command else {
        panic!("not chat")
    };
    let mut input = std::io::Cursor::new("Hello!\nWhat did I just say?\n");
    let mut out = Vec::new();
    infer::commands::chat::run_with_input(&args, &mut input, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.lines().filter(|l| !l.trim().is_empty()).count() >= 2,
        "two replies expected:\n{text}"
    );
}
