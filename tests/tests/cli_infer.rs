//! End-to-end runs of the `infer` commands (in-process, through the same
//! entry point as the binary), on the real SmolLM2 and the GPT-2 fixtures.

use clap::Parser;
use decode::{GenerateParams, generate};
use integration_tests::{
    f32s, fixture_dir, heavy_lock, ids, infer as run, infer_json as json, read_json, smollm2_path,
    smollm2_weights,
};
use model::gguf::GgufFile;
use model::llama::Llama;
use model::tokenizer::Tokenizer;

/// Run a command that must fail; return its error message.
fn run_err(args: &[&str]) -> String {
    let cli = infer::Cli::try_parse_from(std::iter::once("infer").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("parsing {args:?}: {e}"));
    let mut out = Vec::new();
    match infer::run(cli, &mut out) {
        Ok(()) => panic!(
            "infer {args:?} succeeded but should fail; it printed:\n{}",
            String::from_utf8_lossy(&out)
        ),
        Err(e) => format!("{e:#}"),
    }
}

/// `infer generate PROMPT --model SMOLLM2 ARGS...`
fn gen_args<'a>(prompt: &'a str, model: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["generate", prompt, "--model", model];
    v.extend_from_slice(args);
    v
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
    let _g = heavy_lock();
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
fn generate_runs_a_gpt2_gguf_from_text_like_llama_cpp() {
    let _g = heavy_lock();
    // The tiny GPT-2 converted to GGUF (scripts/make_gpt2_gguf.py), with its
    // tokenizer in the file; llama.cpp's prompt ids and greedy tokens for
    // the same text and file (scripts/make_llama_cpp_fixtures.sh).
    let model = fixture_dir("gpt2-tiny-a").join("model.gguf");
    let path = fixture_dir("llama-cpp").join("gpt2_tiny.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let case: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let want = ids(&case["greedy"]);
    let n = want.len().to_string();
    let v = json(&[
        "generate",
        "The capital of France is",
        "--model",
        model.to_str().unwrap(),
        "--max-new-tokens",
        &n,
        "--cache-type",
        "f32",
        "--json",
    ]);
    assert_eq!(ids(&v["prompt_ids"]), ids(&case["ids"]));
    assert_eq!(ids(&v["ids"]), want);
    assert!(!v["text"].as_str().unwrap().is_empty());
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
    let _g = heavy_lock();
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

/// `bench --roofline`: the weight bytes per token are every tensor of the
/// file but the position embeddings (one row of those is read per token),
/// counted here from the file's own tensor table; the ceiling is the
/// stream's rate over them, and the fraction is decode's rate over that.
#[test]
fn bench_roofline_counts_the_file_weights_read_per_token() {
    let _g = heavy_lock();
    let file = fixture_dir("gpt2-tiny-a").join("model.gguf");
    let g = GgufFile::open(&file).unwrap();
    let want: usize = g
        .tensors()
        .iter()
        .filter(|t| t.name != "position_embd.weight")
        .map(|t| g.tensor_bytes(&t.name).unwrap().len())
        .sum();
    let v = json(&[
        "bench",
        "--json",
        "--quick",
        "--roofline",
        "--prompt-tokens",
        "8",
        "--new-tokens",
        "4",
        "--model",
        file.to_str().unwrap(),
    ]);
    let r = &v["roofline"];
    let bytes = r["weight_bytes_per_token"].as_f64().unwrap();
    assert_eq!(bytes as usize, want, "{r}");
    let bw = r["stream_bytes_per_s"].as_f64().unwrap();
    assert!(bw > 1e8, "a streaming read of {bw} bytes/s");
    let ceiling = r["ceiling_tok_per_s"].as_f64().unwrap();
    assert!((ceiling - bw / bytes).abs() <= 1e-9 * ceiling, "{r}");
    let decode = v["decode_kv_cache"]["tok_per_s"].as_f64().unwrap();
    let fraction = r["fraction"].as_f64().unwrap();
    assert!(
        (fraction - decode / ceiling).abs() <= 1e-9 * fraction,
        "{r}"
    );
}

#[test]
fn bench_profile_splits_decode_time_into_parallel_and_one_thread() {
    let _g = heavy_lock();
    let dir = fixture_dir("gpt2-tiny-a");
    let v = json(&[
        "bench",
        "--json",
        "--profile",
        "--prompt-tokens",
        "8",
        "--new-tokens",
        "4",
        "--no-cache-tokens",
        "0",
        "--positions",
        "32",
        "--model",
        dir.to_str().unwrap(),
    ]);
    let p = &v["profile"];
    let (parallel, secs) = (
        p["parallel_seconds"].as_f64().unwrap(),
        p["decode_seconds"].as_f64().unwrap(),
    );
    assert!(parallel >= 0.0 && parallel <= secs, "{p}");
    assert_eq!(
        parallel > 0.0,
        p["hand_offs_per_token"].as_f64().unwrap() > 0.0,
        "{p}"
    );
    // The decode's products by weight: GPT-2's four layer matrices (Q, K
    // and V stacked) and the head, inside the time of all products.
    let products = p["products"].as_array().unwrap();
    assert_eq!(products.len(), 5, "{p}");
    let by_weight: f64 = products
        .iter()
        .map(|w| w["seconds"].as_f64().unwrap())
        .sum();
    let linear = p["ops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["op"] == "linear (matvec/matmul)")
        .unwrap()["seconds"]
        .as_f64()
        .unwrap();
    assert!(by_weight > 0.0 && by_weight <= linear, "{p}");
}

#[test]
fn bench_batch_sweeps_client_counts_in_block_sums_by_default() {
    let _g = heavy_lock();
    let path = smollm2_path();
    let model = path.to_str().unwrap();
    let args = |extra: &'static [&'static str]| {
        let mut v = vec![
            "bench-batch",
            "--json",
            "--clients",
            "1,3",
            "--prompt-tokens",
            "4",
            "--new-tokens",
            "3",
            "--model",
            model,
        ];
        v.extend_from_slice(extra);
        v
    };
    for (extra, order) in [(&[][..], "block"), (&["--sum-order", "ggml"][..], "ggml")] {
        let v = json(&args(extra));
        assert_eq!(v["sum_order"], order, "{v}");
        let rows = v["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1]["clients"], 3);
        for r in rows {
            assert!(r["tok_per_s"].as_f64().unwrap() > 0.0, "{r}");
            // One step reads every prompt and gives each request its first
            // token, two more give the rest, together: three steps for one
            // client or three.
            assert_eq!(r["steps"], 3, "{r}");
            // The pool's empty hand-off just before the count: a time with
            // two threads or more, none with one.
            let hand = &r["hand_off_us"];
            if engine::threads::num_threads() > 1 {
                assert!(hand.as_f64().is_some_and(|h| h > 0.0), "{r}");
            } else {
                assert!(hand.is_null(), "{r}");
            }
        }
    }
    // --profile: each count's time per step by kind, and its hand-offs.
    let v = json(&args(&["--profile"]));
    let profiles = v["profiles"].as_array().unwrap();
    assert_eq!(profiles.len(), 2, "{v}");
    for p in profiles {
        assert_eq!(p["steps"], 3.0, "{p}");
        // (None with one thread: there is no pool to hand off to.)
        assert!(p["hand_offs_per_step"].as_f64().unwrap() >= 0.0, "{p}");
        let by_op = p["ms_per_step_by_op"].as_object().unwrap();
        assert!(
            by_op["linear (matvec/matmul)"].as_f64().unwrap() > 0.0,
            "{p}"
        );
        let timed: f64 = by_op.values().map(|x| x.as_f64().unwrap()).sum();
        assert!(timed <= p["ms_per_step"].as_f64().unwrap(), "{p}");
        // The time in parallel regions is part of the step, and there is
        // some whenever work was handed off.
        let parallel = p["parallel_ms_per_step"].as_f64().unwrap();
        assert!(parallel <= p["ms_per_step"].as_f64().unwrap(), "{p}");
        assert_eq!(
            parallel > 0.0,
            p["hand_offs_per_step"].as_f64().unwrap() > 0.0,
            "{p}"
        );
        // The matrix products split by weight: every one named, each
        // inside the products' total.
        let products = p["products"].as_array().unwrap();
        assert!(!products.is_empty(), "{p}");
        let by_weight: f64 = products
            .iter()
            .map(|w| {
                assert!(w["weight"].as_str().unwrap().contains(" × "), "{w}");
                assert!(w["calls"].as_u64().unwrap() > 0, "{w}");
                w["ms_per_step"].as_f64().unwrap()
            })
            .sum();
        let linear = by_op["linear (matvec/matmul)"].as_f64().unwrap();
        assert!(by_weight > 0.0 && by_weight <= linear, "{p}");
    }
}

#[test]
fn chat_keeps_the_conversation_in_the_cache() {
    let _g = heavy_lock();
    let model = smollm2_path();
    let cli = infer::Cli::try_parse_from([
        "infer",
        "chat",
        "--seed",
        "1",
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

const PROMPT: &str = "The capital of France is";

#[test]
fn generate_greedy_equals_the_library_greedy() {
    let _g = heavy_lock();
    let path = smollm2_path();
    let model = path.to_str().unwrap();
    let tok = Tokenizer::from_gguf(&GgufFile::open(&path).unwrap()).unwrap();
    // The CLI's default KV cache is f16.
    let mut lm = Llama::new(smollm2_weights().clone(), 64, 1)
        .unwrap()
        .with_cache_type(model::kv_cache::CacheType::F16)
        .unwrap();
    let params = GenerateParams {
        max_new_tokens: 10,
        eos_ids: tok.eos_id().into_iter().collect(),
        ..Default::default()
    };
    let want = generate(&mut lm, &tok, &tok.encode(PROMPT), &params).unwrap();
    let want_ids: Vec<u32> = want.tokens.iter().map(|t| t.id).collect();
    let v = json(&gen_args(
        PROMPT,
        model,
        &["--max-new-tokens", "10", "--json"],
    ));
    assert_eq!(v["strategy"], "greedy", "generate defaults to greedy");
    assert_eq!(
        ids(&v["ids"]),
        want_ids,
        "CLI greedy ids vs decode::generate"
    );
    assert_eq!(v["text"].as_str().unwrap(), want.text);
    // The streamed text is the same text, then a newline.
    let streamed = run(&gen_args(PROMPT, model, &["--max-new-tokens", "10"]));
    assert_eq!(streamed, format!("{}\n", want.text));
    // `--sum-order block` runs the model in the server's order; over 24
    // tokens its continuation of this prompt parts from llama.cpp's order.
    let long = GenerateParams {
        max_new_tokens: 24,
        ..params
    };
    let greedy_ids = |lm: &mut Llama| -> Vec<u32> {
        lm.cache_mut().clear_all();
        let g = generate(lm, &tok, &tok.encode(PROMPT), &long).unwrap();
        g.tokens.iter().map(|t| t.id).collect()
    };
    let ggml_ids = greedy_ids(&mut lm);
    let mut lm = lm.with_sum_order(engine::quant::SumOrder::Block);
    let block_ids = greedy_ids(&mut lm);
    assert_ne!(block_ids, ggml_ids, "the two orders part on this prompt");
    let v = json(&gen_args(
        PROMPT,
        model,
        &["--max-new-tokens", "24", "--json", "--sum-order", "block"],
    ));
    assert_eq!(ids(&v["ids"]), block_ids, "block sums: CLI vs library");
    let bad = ["infer", "generate", PROMPT, "--sum-order", "fast"];
    let Err(e) = infer::Cli::try_parse_from(bad) else {
        panic!("an unknown order is refused");
    };
    assert!(e.to_string().contains("ggml or block"), "{e}");
}

#[test]
fn generate_sampling_with_a_seed_is_reproducible() {
    let _g = heavy_lock();
    let path = smollm2_path();
    let model = path.to_str().unwrap();
    let args = gen_args(
        PROMPT,
        model,
        &[
            "--strategy",
            "sample",
            "--seed",
            "7",
            "--temperature",
            "1.2",
            "--max-new-tokens",
            "8",
            "--json",
            "--logprobs",
            "3",
        ],
    );
    let a = json(&args);
    let b = json(&args);
    assert_eq!(a["strategy"], "sample");
    assert_eq!(a["ids"], b["ids"], "same seed, same tokens");
    assert_eq!(a["text"], b["text"], "same seed, same text");
    let tokens = a["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), ids(&a["ids"]).len());
    for t in tokens {
        let lp = t["logprob"].as_f64().unwrap();
        assert!(lp <= 0.0, "a log-prob above 0 in {t}");
        let top = t["top"].as_array().unwrap();
        assert!(
            !top.is_empty() && top.len() <= 3,
            "1..=3 alternatives in {t}"
        );
        let tops: Vec<f64> = top.iter().map(|x| x["logprob"].as_f64().unwrap()).collect();
        assert!(
            tops.windows(2).all(|w| w[0] >= w[1]),
            "alternatives not sorted: {t}"
        );
        assert!(
            tops[0] >= lp,
            "the best alternative is below the chosen token: {t}"
        );
    }
    // The readable form lists every token with its log-prob.
    let text = run(&gen_args(
        PROMPT,
        model,
        &["--seed", "7", "--max-new-tokens", "4", "--logprobs", "2"],
    ));
    assert!(
        text.contains("log-probs (top 2"),
        "no log-prob listing:\n{text}"
    );
    assert_eq!(
        text.lines()
            .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
            .count(),
        4,
        "one line with alternatives per token:\n{text}"
    );
}

#[test]
fn generate_beam_returns_sorted_hypotheses() {
    let _g = heavy_lock();
    let path = smollm2_path();
    let model = path.to_str().unwrap();
    let v = json(&gen_args(
        PROMPT,
        model,
        &[
            "--strategy",
            "beam",
            "--num-beams",
            "3",
            "--num-return-sequences",
            "2",
            "--max-new-tokens",
            "6",
            "--json",
        ],
    ));
    let seqs = v["sequences"].as_array().unwrap();
    assert_eq!(seqs.len(), 2, "two hypotheses in {v}");
    let scores: Vec<f64> = seqs.iter().map(|s| s["score"].as_f64().unwrap()).collect();
    assert!(scores[0] >= scores[1], "hypotheses not sorted: {scores:?}");
    assert_ne!(seqs[0]["ids"], seqs[1]["ids"], "two distinct hypotheses");
    assert_eq!(v["ids"], seqs[0]["ids"], "the best one is the main answer");
    // The readable form prints both with their scores.
    let text = run(&gen_args(
        PROMPT,
        model,
        &[
            "--strategy",
            "beam",
            "--num-beams",
            "3",
            "--num-return-sequences",
            "2",
            "--max-new-tokens",
            "6",
        ],
    ));
    assert!(
        text.contains("[1] score") && text.contains("[2] score"),
        "{text}"
    );
}

#[test]
fn generate_stop_strings_are_not_printed() {
    let _g = heavy_lock();
    let path = smollm2_path();
    let model = path.to_str().unwrap();
    let full = json(&gen_args(
        PROMPT,
        model,
        &["--max-new-tokens", "12", "--json"],
    ));
    let full = full["text"].as_str().unwrap().to_string();
    // Stop on the second word of the greedy continuation.
    let word = full.split_whitespace().nth(1).expect("two words of output");
    let cut = full.find(word).unwrap();
    let stopped = run(&gen_args(
        PROMPT,
        model,
        &["--max-new-tokens", "12", "--stop", word],
    ));
    assert!(
        !stopped.contains(word),
        "stop string {word:?} was printed: {stopped:?}"
    );
    assert_eq!(
        stopped,
        format!("{}\n", &full[..cut]),
        "text before the stop string"
    );
    for strategy in ["beam", "sample"] {
        let v = json(&gen_args(
            PROMPT,
            model,
            &[
                "--strategy",
                strategy,
                "--num-beams",
                "2",
                "--max-new-tokens",
                "12",
                "--stop",
                " the",
                "--stop",
                ".",
                "--json",
            ],
        ));
        let text = v["text"].as_str().unwrap();
        assert!(
            !text.contains(" the") && !text.contains('.'),
            "{strategy}: a stop string in {text:?}"
        );
    }
}

#[test]
fn generate_explain_prints_a_table_per_step() {
    let _g = heavy_lock();
    let path = smollm2_path();
    let model = path.to_str().unwrap();
    let text = run(&gen_args(
        PROMPT,
        model,
        &[
            "--explain",
            "--seed",
            "3",
            "--top-k",
            "5",
            "--max-new-tokens",
            "3",
        ],
    ));
    for needle in [
        "step 0",
        "step 2",
        "raw",
        "penalized",
        "kept?",
        "<- chosen",
        "cut by top_k",
    ] {
        assert!(
            text.contains(needle),
            "explain output lacks {needle:?}:\n{text}"
        );
    }
    assert_eq!(
        text.matches("<- chosen").count(),
        3,
        "one chosen row per step:\n{text}"
    );
}

#[test]
fn generate_rejects_bad_options_with_a_clear_error() {
    let _g = heavy_lock();
    let path = smollm2_path();
    let model = path.to_str().unwrap();
    let cases: [(&[&str], &str); 7] = [
        (&["--top-p", "1.5"], "top_p"),
        (&["--temperature", "-1"], "temperature"),
        (&["--repetition-penalty", "-2"], "repetition"),
        (
            &[
                "--strategy",
                "beam",
                "--num-beams",
                "2",
                "--num-return-sequences",
                "3",
            ],
            "num_return_sequences",
        ),
        (&["--ctx", "4"], "context"),
        (&["--ctx", "0"], "--ctx must be at least 1"),
        // A cache no machine holds (about 2.3 TB of keys and values): an
        // error that names the option, where allocating it aborted.
        (
            &["--ctx", "100000000"],
            "a KV cache of --ctx 100000000 positions",
        ),
    ];
    for (extra, needle) in cases {
        let mut args = extra.to_vec();
        args.extend(["--max-new-tokens", "2"]);
        let e = run_err(&gen_args(PROMPT, model, &args));
        assert!(
            e.contains(needle),
            "infer generate {extra:?}: error {e:?} lacks {needle:?}"
        );
    }
}

/// A model path that is not there, or a directory without a model: the
/// error names the file and gives the system's reason once (each layer of
/// the report used to repeat the one below it).
#[test]
fn a_missing_model_file_is_one_clear_error() {
    let dir = std::env::temp_dir();
    let missing = dir.join("infer-no-such-model.gguf");
    for path in [missing.to_str().unwrap(), dir.to_str().unwrap()] {
        let e = run_err(&["generate", "Hi", "--model", path]);
        let os = e.matches("os error").count();
        assert!(
            os == 1,
            "{path}: {e:?} gives the system's reason {os} times"
        );
    }
}

/// `--device` names a device; one this machine lacks (any GPU in CI, which
/// has none; a GPU past the last elsewhere) is a clear error, never a panic.
#[test]
fn generate_on_a_missing_device_is_a_clear_error() {
    let path = smollm2_path();
    let model = path.to_str().unwrap();
    let e = run_err(&gen_args(PROMPT, model, &["--device", "gpu"]));
    assert!(e.contains("unknown device \"gpu\""), "{e}");
    let e = run_err(&gen_args(PROMPT, model, &["--device", "cuda:4096"]));
    assert!(e.starts_with("no CUDA device found: "), "{e}");
    if engine::Device::cuda(0).is_err() {
        let e = run_err(&gen_args(PROMPT, model, &["--device", "cuda"]));
        assert!(e.starts_with("no CUDA device found: "), "{e}");
    }
}

#[test]
fn generate_ban_and_logit_bias_move_greedy_off_its_token() {
    let _g = heavy_lock();
    // The tiny GPT-2 without tokenizer files: ids in, ids out.
    let dir = fixture_dir("gpt2-tiny-a");
    let model = dir.to_str().unwrap();
    let r = read_json(&dir.join("reference.json"));
    let prompt: Vec<String> = ids(&r["greedy"][0]["ids"])
        .iter()
        .map(u32::to_string)
        .collect();
    let prompt = prompt.join(",");
    let greedy = |extra: &[&str]| -> Vec<u32> {
        let mut args = vec![
            "generate",
            &prompt,
            "--ids",
            "--max-new-tokens",
            "4",
            "--model",
            model,
        ];
        args.extend_from_slice(extra);
        run(&args)
            .split_whitespace()
            .map(|s| s.parse().unwrap())
            .collect()
    };
    let plain = greedy(&[]);
    assert_eq!(plain.len(), 4, "{plain:?}");
    let first = plain[0].to_string();
    let banned = greedy(&["--ban", &first]);
    assert_ne!(banned[0], plain[0], "--ban {first} still chose it");
    assert!(!banned.contains(&plain[0]), "{banned:?}");
    let bias = format!("{first}=-100");
    let biased = greedy(&["--logit-bias", &bias]);
    assert_ne!(biased[0], plain[0], "--logit-bias {bias} still chose it");
}
