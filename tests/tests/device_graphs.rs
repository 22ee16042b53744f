//! Decode steps replayed as CUDA graphs give the same bits as the same
//! steps launched kernel by kernel: the graph holds the very kernels the
//! eager step launches, reading the token, its position and the cache
//! length from device memory instead of their arguments. Each test needs a
//! GPU; without one it prints why and passes (CI has none).

use engine::device::GraphStats;
use integration_tests::{gpu, random_llama, smollm2_path, smollm2_weights};
use model::batch::LogitsFor;
use model::gguf::GgufFile;
use model::gpt2::{Gpt2, Gpt2Weights};
use model::kv_cache::CacheType;
use model::llama::Llama;
use model::tokenizer::Tokenizer;

/// A model's forward pass, last logits of each entry.
type Forward<'a> = dyn FnMut(&[(usize, &[u32])]) -> Vec<Vec<f32>> + 'a;

/// `n` greedy steps after `prompt` in slot `slot`, by logits: every step's
/// logits.
fn steps(forward: &mut Forward<'_>, slot: usize, prompt: &[u32], n: usize) -> Vec<Vec<f32>> {
    let mut all = vec![forward(&[(slot, prompt)]).remove(0)];
    for _ in 0..n {
        let next = engine::kernels::argmax(all.last().unwrap()) as u32;
        all.push(forward(&[(slot, &[next])]).remove(0));
    }
    all
}

/// Bit for bit, step by step.
fn assert_same_bits(what: &str, graphed: &[Vec<f32>], eager: &[Vec<f32>]) {
    assert_eq!(graphed.len(), eager.len(), "{what}: steps");
    for (i, (g, e)) in graphed.iter().zip(eager).enumerate() {
        let same = g.len() == e.len() && g.iter().zip(e).all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "{what}: step {i} differs with a CUDA graph");
    }
}

/// `w` on `dev` with an f32 cache of `slots` sequences of `capacity`
/// positions, its decode steps graphed or not.
fn on_gpu(
    w: model::llama::LlamaWeights,
    capacity: usize,
    slots: usize,
    dev: &engine::Device,
    graphs: bool,
) -> Llama {
    Llama::new(w, capacity, slots)
        .unwrap()
        .with_cache_type(CacheType::F32)
        .unwrap()
        .to_device(dev)
        .unwrap()
        .with_graphs(graphs)
}

/// A run of `n` decode steps of one sequence: the first eager, the second
/// captured, the rest replayed, and none sent back.
fn assert_graphed(what: &str, s: GraphStats, replays: u64) {
    assert_eq!(s.fallbacks, 0, "{what}: {s:?}");
    assert!(s.captured >= 1, "{what}: no graph captured: {s:?}");
    assert!(s.replayed >= replays, "{what}: too few replays: {s:?}");
}

/// A random Llama (f32 and Q8_0): prefill and 24 greedy steps in slot 0,
/// then a prompt in slot 1 (which grows the activation buffers: the graph
/// of slot 0 no longer fits them and a new one is captured) and 12 more
/// steps in each slot, alternating. The logits equal the eager model's bit
/// for bit; greedy choices made on the GPU too.
#[test]
fn random_llama_graphs_give_the_eager_bits() {
    let Some(dev) = gpu() else { return };
    for dtype in [engine::DType::F32, engine::DType::Q8_0] {
        let make = |graphs: bool| on_gpu(random_llama(dtype), 128, 2, &dev, graphs);
        let (mut g, mut e) = (make(true), make(false));
        let a: Vec<u32> = (1..20).collect();
        let b: Vec<u32> = (40..90).collect();
        let run = |m: &mut Llama| {
            let mut f = |batch: &[(usize, &[u32])]| m.forward(batch, LogitsFor::Last).unwrap();
            let mut out = steps(&mut f, 0, &a, 24);
            out.append(&mut steps(&mut f, 1, &b, 0));
            let mut last = [out[24].clone(), out[25].clone()];
            for _ in 0..12 {
                for (slot, l) in last.iter_mut().enumerate() {
                    let next = engine::kernels::argmax(l) as u32;
                    *l = f(&[(slot, &[next])]).remove(0);
                    out.push(l.clone());
                }
            }
            out
        };
        let (got, want) = (run(&mut g), run(&mut e));
        assert_same_bits(&format!("random {dtype} Llama"), &got, &want);
        assert_graphed(&format!("random {dtype} Llama"), g.graph_stats(), 40);
        assert_eq!(e.graph_stats().captured + e.graph_stats().replayed, 0);
        // Greedy on the device, replayed, against the eager logits' argmax.
        g.cache_mut().clear_all();
        let mut next = g.forward_greedy(&[(0, &a)]).unwrap()[0].0;
        let mut ids = Vec::new();
        for _ in 0..16 {
            ids.push(next);
            next = g.forward_greedy(&[(0, &[next])]).unwrap()[0].0;
        }
        let want_ids: Vec<u32> = want[..16]
            .iter()
            .map(|l| engine::kernels::argmax(l) as u32)
            .collect();
        assert_eq!(ids, want_ids, "{dtype}: greedy on the GPU with graphs");
    }
}

/// SmolLM2: 40 greedy steps after a prompt, with and without graphs: the
/// same logits, bit for bit.
#[test]
fn smollm2_graphs_give_the_eager_bits() {
    let Some(dev) = gpu() else { return };
    if let Err(e) = model::model_path::find_default_model() {
        eprintln!("skipped: SmolLM2 is not on this machine ({e})");
        return;
    }
    let tok = Tokenizer::from_gguf(&GgufFile::open(smollm2_path()).unwrap()).unwrap();
    let prompt = tok.encode("Once upon a time");
    let make = |graphs: bool| on_gpu(smollm2_weights().clone(), 256, 1, &dev, graphs);
    let mut out = Vec::new();
    for graphs in [true, false] {
        let mut m = make(graphs);
        let mut f = |batch: &[(usize, &[u32])]| m.forward(batch, LogitsFor::Last).unwrap();
        out.push(steps(&mut f, 0, &prompt, 40));
        if graphs {
            assert_graphed("SmolLM2", m.graph_stats(), 38);
        }
    }
    assert_same_bits("SmolLM2", &out[0], &out[1]);
}

/// GPT-2 tiny: 20 greedy steps, with and without graphs, the same bits.
#[test]
fn gpt2_graphs_give_the_eager_bits() {
    let Some(dev) = gpu() else { return };
    let dir = integration_tests::fixture_dir("gpt2-tiny-a");
    let g = GgufFile::open(dir.join("model.gguf")).unwrap();
    let mut out = Vec::new();
    for graphs in [true, false] {
        let mut m = Gpt2::new(Gpt2Weights::from_gguf(&g).unwrap(), 64, 1)
            .unwrap()
            .with_cache_type(CacheType::F32)
            .unwrap()
            .to_device(&dev)
            .unwrap()
            .with_graphs(graphs);
        let mut f = |batch: &[(usize, &[u32])]| m.forward(batch, LogitsFor::Last).unwrap();
        out.push(steps(&mut f, 0, &[1, 2, 3], 20));
        if graphs {
            assert_graphed("GPT-2", m.graph_stats(), 18);
        }
    }
    assert_same_bits("GPT-2", &out[0], &out[1]);
}
