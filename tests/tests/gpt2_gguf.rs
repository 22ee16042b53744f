//! GPT-2 from a GGUF file in llama.cpp's layout: the tiny random fixture
//! `gpt2-tiny-a` converted by `scripts/make_gpt2_gguf.py` (committed as
//! `tests/fixtures/gpt2-tiny-a/model.gguf`, f32) against `transformers`
//! (the same directory's `reference.json`), against the same model loaded
//! from its Hugging Face files, and against llama.cpp 0c1e570 running that
//! very file (`tests/fixtures/llama-cpp/gpt2_tiny.jsonl`, made by
//! `scripts/make_llama_cpp_fixtures.sh`: every logit of the last prompt
//! position, the prompt's token ids and 16 greedy tokens).

use integration_tests::{assert_close, f32s, fixture_dir, ids, read_json, smollm2_path};
use model::batch::LogitsFor;
use model::gguf::GgufFile;
use model::gguf::write::write_gguf;
use model::gpt2::{Gpt2, Gpt2Weights};
use model::kv_cache::CacheType;
use model::tokenizer::Tokenizer;

/// Logits tolerance against `transformers`, as for the Hugging Face files
/// (tests/tests/gpt2_reference.rs): both compute in f32 on identical
/// weights and differ only in summation order.
const TOL: f32 = 1e-4;

/// Logits tolerance against llama.cpp on the same f32 file, both with an
/// f32 KV cache. The matrix products are f32 on both sides, but llama.cpp's
/// CPU GELU rounds its input to f16 and looks the result up in an f16
/// table (ggml-cpu/vec.h, GGML_GELU_FP16): a relative error up to about
/// 2⁻¹¹ on every MLP activation, where ours is computed in f32. Measured on
/// these prompts (logits of size ~5–12): at most 5e-3 to 6.4e-3 apart; a
/// numpy forward pass that rounds GELU as ggml does lands within 1e-4 of
/// llama.cpp's logits, so the gap is that rounding. A wrong bias, a
/// transposed matrix or a swapped Q/K/V moves logits by whole units.
const LLAMA_CPP_TOL: f32 = 1.5e-2;

fn gguf_path() -> std::path::PathBuf {
    fixture_dir("gpt2-tiny-a").join("model.gguf")
}

fn gguf_model(ctx: usize) -> Gpt2 {
    let g = GgufFile::open(gguf_path()).unwrap();
    Gpt2::new(Gpt2Weights::from_gguf(&g).unwrap(), ctx, 1).unwrap()
}

fn last_logits(m: &mut Gpt2, toks: &[u32]) -> Vec<f32> {
    m.cache_mut().clear(0);
    m.forward(&[(0, toks)], LogitsFor::Last).unwrap().remove(0)
}

#[test]
fn gguf_gpt2_gives_the_transformers_logits_and_the_hf_files_logits() {
    let dir = fixture_dir("gpt2-tiny-a");
    let r = read_json(&dir.join("reference.json"));
    let mut from_gguf = gguf_model(128);
    let mut from_hf = Gpt2::new(Gpt2Weights::from_hf_dir(&dir).unwrap(), 128, 1).unwrap();
    for (i, p) in r["prompts"].as_array().unwrap().iter().enumerate() {
        let toks = ids(&p["ids"]);
        let got = last_logits(&mut from_gguf, &toks);
        assert_close(
            &format!("GGUF prompt {i} last logits"),
            &got,
            &f32s(&p["last_logits"]),
            TOL,
        );
        // The same f32 weights through the same code: bit for bit.
        assert_eq!(got, last_logits(&mut from_hf, &toks), "prompt {i}");
    }
    let all = &r["all_positions"];
    from_gguf.cache_mut().clear(0);
    let got = from_gguf
        .forward(&[(0, &ids(&all["ids"]))], LogitsFor::All)
        .unwrap()
        .remove(0);
    let want: Vec<f32> = all["logits"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(f32s)
        .collect();
    assert_close("GGUF per-position logits", &got, &want, TOL);
}

fn llama_cpp_cases() -> Vec<serde_json::Value> {
    let path = fixture_dir("llama-cpp").join("gpt2_tiny.jsonl");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).expect("fixture line"))
        .collect()
}

/// The prompts of the llama.cpp fixture (scripts/make_llama_cpp_fixtures.sh).
const PROMPTS: [&str; 4] = [
    "The capital of France is",
    "Once upon a time, there was",
    "def add(a, b): return a + b",
    "It's 42 degrees in the shade!",
];

#[test]
fn gguf_tokenizer_encodes_like_llama_cpp() {
    let tok = Tokenizer::from_gguf(&GgufFile::open(gguf_path()).unwrap()).unwrap();
    let cases = llama_cpp_cases();
    assert_eq!(cases.len(), PROMPTS.len());
    for (text, case) in PROMPTS.iter().zip(&cases) {
        assert_eq!(tok.encode(text), ids(&case["ids"]), "{text:?}");
    }
}

#[test]
fn gguf_gpt2_logits_match_llama_cpp() {
    let mut m = gguf_model(128).with_cache_type(CacheType::F32).unwrap();
    for (n, case) in llama_cpp_cases().iter().enumerate() {
        let got = last_logits(&mut m, &ids(&case["ids"]));
        let mut want = vec![f32::NAN; got.len()];
        for p in case["sampled"].as_array().unwrap() {
            want[p[0].as_u64().unwrap() as usize] = p[1].as_f64().unwrap() as f32;
        }
        assert!(
            want.iter().all(|x| x.is_finite()),
            "prompt {n}: the fixture lacks some logits"
        );
        assert_close(
            &format!("prompt {n} against llama.cpp"),
            &got,
            &want,
            LLAMA_CPP_TOL,
        );
    }
}

#[test]
fn gguf_gpt2_greedy_ids_match_llama_cpp() {
    let mut m = gguf_model(128).with_cache_type(CacheType::F32).unwrap();
    for (n, case) in llama_cpp_cases().iter().enumerate() {
        let want = ids(&case["greedy"]);
        let mut logits = last_logits(&mut m, &ids(&case["ids"]));
        let mut got = Vec::new();
        for _ in 0..want.len() {
            let t = engine::kernels::argmax(&logits) as u32;
            got.push(t);
            logits = m.forward(&[(0, &[t])], LogitsFor::Last).unwrap().remove(0);
        }
        assert_eq!(got, want, "prompt {n}");
    }
}

#[test]
fn a_llama_gguf_is_refused_by_the_gpt2_loader() {
    let g = GgufFile::open(smollm2_path()).unwrap();
    let err = Gpt2Weights::from_gguf(&g).unwrap_err().to_string();
    assert!(
        err.contains("\"llama\"") && err.contains("expected \"gpt2\""),
        "{err}"
    );
}

#[test]
fn a_gpt2_gguf_without_a_tensor_is_refused_by_name() {
    let g = GgufFile::open(gguf_path()).unwrap();
    let meta = g.metadata_entries().to_vec();
    let keep = |missing: &str| -> Vec<(String, engine::Tensor)> {
        g.tensors()
            .iter()
            .filter(|t| t.name != missing)
            .map(|t| (t.name.clone(), g.tensor(&t.name).unwrap()))
            .collect()
    };
    // The file rewritten whole loads (the writer is not the problem)...
    let mut bytes = Vec::new();
    write_gguf(&mut bytes, &meta, &keep("")).unwrap();
    assert!(Gpt2Weights::from_gguf(&GgufFile::from_bytes(bytes).unwrap()).is_ok());
    // ... and without one tensor it names it.
    for missing in [
        "blk.1.attn_output.bias",
        "position_embd.weight",
        "token_embd.weight",
    ] {
        let mut bytes = Vec::new();
        write_gguf(&mut bytes, &meta, &keep(missing)).unwrap();
        let err = Gpt2Weights::from_gguf(&GgufFile::from_bytes(bytes).unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains(missing), "without {missing}: {err}");
    }
}
