//! `--dtype` on the commands that run a model (in-process, through the
//! same entry point as the binary): `generate` and `bench` on the tiny
//! GPT-2 fixture, `perplexity` on SmolLM2. Each accepts every dtype name,
//! runs the converted weights, and refuses an unknown name before loading
//! anything, with the error and exit status the binary prints.

use clap::Parser;
use decode::{GenerateParams, generate};
use engine::DType;
use integration_tests::{
    fixture_dir, heavy_lock, ids, infer as run, infer_json as json, smollm2_path,
};
use model::gguf::GgufFile;
use model::gpt2::{Gpt2, Gpt2Weights};
use model::kv_cache::CacheType;
use model::tokenizer::Tokenizer;

const PROMPT: &str = "The capital of France is";

/// Greedy ids from `infer generate --dtype D` on the tiny GPT-2 GGUF are
/// the library's greedy ids on the weights converted to `D`, for every
/// dtype (the 64-wide rows are not whole K-quant super-blocks, so
/// `q4_k` / `q6_k` take llama.cpp's fallbacks).
#[test]
fn generate_runs_the_weights_converted_to_each_dtype() {
    let _g = heavy_lock();
    let path = fixture_dir("gpt2-tiny-a").join("model.gguf");
    let model = path.to_str().unwrap();
    let g = GgufFile::open(&path).unwrap();
    let tok = Tokenizer::from_gguf(&g).unwrap();
    let weights = Gpt2Weights::from_gguf(&g).unwrap();
    let generate_json = |dtype: &str, new_tokens: &str| {
        json(&[
            "generate",
            PROMPT,
            "--model",
            model,
            "--dtype",
            dtype,
            "--max-new-tokens",
            new_tokens,
            "--json",
        ])
    };
    for dt in DType::ALL {
        let v = generate_json(&dt.to_string(), "8");
        let got = ids(&v["ids"]);
        assert!(!got.is_empty(), "{dt}: {v}");
        // The CLI's defaults: an f16 KV cache, stop at the end-of-text id.
        let mut lm = Gpt2::new(weights.to_dtype(dt).unwrap(), 128, 1)
            .unwrap()
            .with_cache_type(CacheType::F16)
            .unwrap();
        let params = GenerateParams {
            max_new_tokens: 8,
            eos_ids: tok.eos_id().into_iter().collect(),
            ..Default::default()
        };
        let want = generate(&mut lm, &tok, &ids(&v["prompt_ids"]), &params).unwrap();
        let want: Vec<u32> = want.tokens.iter().map(|t| t.id).collect();
        assert_eq!(got, want, "{dt}: CLI vs library greedy ids");
    }
    // Names are read without regard to case, as `DType`'s parser does.
    let v = generate_json("Q8_0", "2");
    assert!(!ids(&v["ids"]).is_empty(), "{v}");
}

/// `infer bench --dtype q8_0` (a quick run with tiny sizes) measures the
/// converted weights: every product its profile names is a q8_0 matrix,
/// where the fixture's safetensors store f32.
#[test]
fn bench_measures_the_converted_weights() {
    let _g = heavy_lock();
    let dir = fixture_dir("gpt2-tiny-a");
    let bench = |extra: &[&str]| {
        let mut args = vec![
            "bench",
            "--json",
            "--quick",
            "--profile",
            "--prompt-tokens",
            "8",
            "--new-tokens",
            "4",
            "--model",
            dir.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        json(&args)
    };
    for (extra, dtype) in [(&[][..], "f32"), (&["--dtype", "q8_0"][..], "q8_0")] {
        let v = bench(extra);
        for phase in ["prefill", "decode_kv_cache"] {
            assert!(
                v[phase]["tok_per_s"].as_f64().unwrap() > 0.0,
                "{phase} in {v}"
            );
        }
        let products = v["profile"]["products"].as_array().unwrap();
        assert!(!products.is_empty(), "{v}");
        for p in products {
            let w = p["weight"].as_str().unwrap();
            assert!(w.ends_with(&format!(" {dtype}")), "{extra:?}: {w}");
        }
    }
}

/// About 1,500 tokens of simple English sentences, varied by a fixed
/// pseudo-random choice of words (a text the model cannot just recall, so
/// that the weights' rounding shows in its perplexity).
fn sentences() -> String {
    let adj = [
        "old", "quiet", "red", "small", "busy", "cold", "bright", "tired",
    ];
    let noun = [
        "farmer", "river", "teacher", "city", "garden", "train", "child", "market",
    ];
    let verb = [
        "watched", "crossed", "followed", "painted", "found", "left", "visited", "passed",
    ];
    let when = [
        "in the morning",
        "after dinner",
        "before the rain",
        "at night",
        "last week",
    ];
    let mut s = 0x2545_f491_4f6c_dd1du64;
    let mut pick = |n: usize| {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s % n as u64) as usize
    };
    (0..140)
        .map(|_| {
            format!(
                "The {} {} {} the {} {} {}. ",
                adj[pick(adj.len())],
                noun[pick(noun.len())],
                verb[pick(verb.len())],
                adj[pick(adj.len())],
                noun[pick(noun.len())],
                when[pick(when.len())]
            )
        })
        .collect()
}

/// `infer perplexity FILE --model M --dtype q8_0`, with the default chunk
/// settings, scores SmolLM2 with its matrices in q8_0: a finite perplexity,
/// near but not equal to the one of the file's own q4_1.
#[test]
fn perplexity_scores_with_the_converted_weights() {
    let _g = heavy_lock();
    let model = smollm2_path();
    let file = std::env::temp_dir().join(format!("infer-dtype-ppl-{}.txt", std::process::id()));
    std::fs::write(&file, sentences()).unwrap();
    let ppl = |extra: &[&str]| {
        let mut args = vec![
            "perplexity",
            file.to_str().unwrap(),
            "--model",
            model.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let out = run(&args);
        let at = out
            .find("PPL = ")
            .unwrap_or_else(|| panic!("no \"PPL = \" in {out}"));
        let n = out[at + 6..].split_whitespace().next().unwrap_or("");
        n.parse::<f64>()
            .unwrap_or_else(|e| panic!("{n:?} in {out}: {e}"))
    };
    let q8 = ppl(&["--dtype", "q8_0"]);
    let stored = ppl(&[]);
    std::fs::remove_file(&file).unwrap();
    eprintln!("perplexity: q8_0 {q8}, the file's q4_1 {stored}");
    assert!(q8.is_finite() && q8 > 1.0 && q8 < 1000.0, "{q8}");
    assert!(q8 != stored, "q8_0 {q8} vs the file's q4_1 {stored}");
    // The same weights, rounded twice or once: close.
    assert!(
        (q8 / stored - 1.0).abs() < 0.1,
        "q8_0 {q8} vs q4_1 {stored}"
    );
}

/// An unknown `--dtype` is a usage error on every command that takes one:
/// the message names the value and lists the dtypes, and the binary would
/// exit non-zero (clap's usage status, 2) before loading a model.
#[test]
fn an_unknown_dtype_is_a_clear_error() {
    let commands: [&[&str]; 4] = [
        &["generate", PROMPT],
        &["bench", "--quick"],
        &["perplexity", "text.txt"],
        &["quantize", "in.gguf", "out.gguf"],
    ];
    for cmd in commands {
        let mut args = vec!["infer"];
        args.extend_from_slice(cmd);
        args.extend(["--dtype", "foo"]);
        let Err(e) = infer::Cli::try_parse_from(&args) else {
            panic!("{args:?} was accepted");
        };
        assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation, "{e}");
        assert_ne!(e.exit_code(), 0, "{args:?}");
        let msg = e.to_string();
        for needle in ["'foo'", "--dtype", "unknown dtype \"foo\"", "bf16", "q8_0"] {
            assert!(msg.contains(needle), "{args:?}: {msg:?} lacks {needle:?}");
        }
    }
}
