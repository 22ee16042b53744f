//! `infer perplexity` and `infer quantize` end to end on SmolLM2.

use integration_tests::{heavy_lock, smollm2_path, smollm2_weights, try_infer as run};
use model::kv_cache::CacheType;
use model::llama::Llama;

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("infer-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

const TEXT: &str = "The cat sat on the mat. The dog lay by the door. Birds sang in the trees \
while the sun rose over the hills, and the farmer walked out to his fields. ";

#[test]
fn perplexity_equals_the_library_and_refuses_short_texts() {
    let _g = heavy_lock();
    let model = smollm2_path();
    let file = scratch("ppl.txt");
    std::fs::write(&file, TEXT.repeat(8)).unwrap();
    let args = [
        "perplexity",
        file.to_str().unwrap(),
        "--ctx",
        "64",
        "--max-chunks",
        "2",
        "--json",
        "--model",
        model.to_str().unwrap(),
    ];
    let v: serde_json::Value = serde_json::from_str(&run(&args).unwrap()).unwrap();
    assert_eq!(v["chunks"], 2);
    assert_eq!(
        v["tokens_scored"],
        2 * 31,
        "positions 32..62 of each chunk of 64"
    );
    let ppl = v["ppl"].as_f64().unwrap();
    // The same scoring through the library, same model and cache type.
    let tok = model::tokenizer::Tokenizer::from_gguf(&model::gguf::GgufFile::open(&model).unwrap())
        .unwrap();
    let ids = tok.encode(&TEXT.repeat(8));
    let mut lm = Llama::new(smollm2_weights().clone(), 64, 1)
        .unwrap()
        .with_cache_type(CacheType::F16)
        .unwrap();
    let want = decode::perplexity::perplexity(&mut lm, &ids[..128], 64, None, |_, _| {}).unwrap();
    assert!(
        (ppl - want.ppl).abs() < 1e-9,
        "CLI {ppl} vs library {}",
        want.ppl
    );
    assert!(ppl > 1.0 && ppl < 100.0, "a repetitive English text: {ppl}");

    // llama-perplexity's rule: at least two contexts of text, however few
    // chunks are scored. Three repeats are more than one context of 64
    // tokens and fewer than two.
    for short in [TEXT.repeat(3), "Too short.".to_string()] {
        std::fs::write(&file, &short).unwrap();
        let err = run(&args).unwrap_err().to_string();
        assert!(err.contains("needs at least 128"), "{err}");
    }
    let missing = run(&[
        "perplexity",
        "/nonexistent/text.txt",
        "--model",
        model.to_str().unwrap(),
    ]);
    assert!(
        missing
            .unwrap_err()
            .to_string()
            .contains("/nonexistent/text.txt")
    );
}

#[test]
fn quantize_writes_a_file_that_loads_and_refuses_bad_requests() {
    let _g = heavy_lock();
    let model = smollm2_path();
    let out = scratch("smollm2-q8_0.gguf");
    let msg = run(&[
        "quantize",
        model.to_str().unwrap(),
        out.to_str().unwrap(),
        "--dtype",
        "q8_0",
    ])
    .unwrap();
    assert!(msg.contains("matrices as q8_0"), "{msg}");
    let g = model::gguf::GgufFile::open(&out).unwrap();
    assert_eq!(
        g.tensor_info("blk.0.ffn_up.weight").unwrap().dtype,
        model::gguf::GgmlType::Q8_0
    );
    let text = run(&[
        "generate",
        "The capital of France is",
        "--max-new-tokens",
        "3",
        "--model",
        out.to_str().unwrap(),
    ])
    .unwrap();
    assert!(text.contains("Paris"), "{text}");
    std::fs::remove_file(&out).unwrap();

    let same = run(&[
        "quantize",
        model.to_str().unwrap(),
        model.to_str().unwrap(),
        "--dtype",
        "q8_0",
    ]);
    assert!(
        same.unwrap_err()
            .to_string()
            .contains("refusing to overwrite")
    );
    let unknown = run(&[
        "quantize",
        model.to_str().unwrap(),
        out.to_str().unwrap(),
        "--dtype",
        "q5_1",
    ]);
    assert!(unknown.unwrap_err().to_string().contains("unknown dtype"));
    assert!(!out.exists(), "nothing written on error");
}

/// `infer quantize --dtype bf16` writes every matrix as GGML's BF16 (the
/// norm weights stay f32) under llama.cpp's `LLAMA_FTYPE_MOSTLY_BF16`; the
/// file reads back as the library's own conversion, and runs the same
/// greedy tokens as converting the original to bf16 at load.
#[test]
fn quantize_to_bf16_reads_back_and_runs_as_bf16_at_load() {
    use engine::DType;
    use model::gguf::{GgmlType, GgufFile, MetaValue};
    use model::llama::LlamaWeights;

    let _g = heavy_lock();
    let model = smollm2_path();
    let out = scratch("smollm2-bf16.gguf");
    let msg = run(&[
        "quantize",
        model.to_str().unwrap(),
        out.to_str().unwrap(),
        "--dtype",
        "bf16",
    ])
    .unwrap();
    assert!(msg.contains("matrices as bf16"), "{msg}");

    let g = GgufFile::open(&out).unwrap();
    assert_eq!(
        g.metadata("general.file_type"),
        Some(&MetaValue::U32(32)),
        "LLAMA_FTYPE_MOSTLY_BF16"
    );
    let src = GgufFile::open(&model).unwrap();
    assert_eq!(g.tensors().len(), src.tensors().len());
    for info in g.tensors() {
        let want = if info.shape.len() >= 2 {
            GgmlType::BF16
        } else {
            src.tensor_info(&info.name).unwrap().dtype
        };
        assert_eq!(info.dtype, want, "{}", info.name);
    }
    // Read back: every tensor is the library's own conversion, bit for bit.
    let loaded = LlamaWeights::from_gguf(&g, |_, _| {}).unwrap();
    let at_load = smollm2_weights().to_dtype(DType::BF16).unwrap();
    let pairs = |w: &LlamaWeights| {
        let mut v = vec![("tok_embd".to_string(), w.tok_embd.clone())];
        for (i, l) in w.layers.iter().enumerate() {
            v.push((format!("{i}.attn_norm"), l.attn_norm.clone()));
            v.push((format!("{i}.ffn_norm"), l.ffn_norm.clone()));
            for (name, t) in l.matrices() {
                v.push((format!("{i}.{name}"), t.clone()));
            }
        }
        v.push(("out_norm".to_string(), w.out_norm.clone()));
        v
    };
    assert!(loaded.lm_head.is_none() && at_load.lm_head.is_none());
    for ((name, a), (_, b)) in pairs(&loaded).iter().zip(&pairs(&at_load)) {
        assert_eq!(a.dtype(), b.dtype(), "{name}");
        assert_eq!(a.shape(), b.shape(), "{name}");
        assert!(a.storage() == b.storage(), "{name}: contents differ");
    }
    drop((loaded, at_load));

    let greedy = |extra: &[&str]| {
        let mut args = vec![
            "generate",
            "The capital of France is",
            "--max-new-tokens",
            "6",
            "--json",
        ];
        args.extend_from_slice(extra);
        let v: serde_json::Value = serde_json::from_str(&run(&args).unwrap()).unwrap();
        v["ids"].clone()
    };
    let from_file = greedy(&["--model", out.to_str().unwrap()]);
    let converted = greedy(&["--model", model.to_str().unwrap(), "--dtype", "bf16"]);
    assert!(
        from_file.as_array().is_some_and(|v| !v.is_empty()),
        "{from_file}"
    );
    assert_eq!(from_file, converted, "bf16 file vs --dtype bf16 at load");
    std::fs::remove_file(&out).unwrap();
}
