//! What the checks share: the project's fixtures, read from `tests/fixtures`
//! and `engine/tests/fixtures`, a tolerance check that names the worst
//! index, the GPT-2 forward pass around your block (step 4), and a model
//! wrapper that records what a decoding loop feeds it (steps 6 to 8).
//!
//! Nothing here is an exercise; read it if a check puzzles you. A missing or
//! malformed fixture panics with the path, as the project's own tests do.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use decode::{LanguageModel, ModelError};
use engine::kernels;
use engine::nn;
use model::gpt2::{Gpt2, Gpt2Layer, Gpt2Params, Gpt2Weights};
use model::tokenizer::bpe::Merges;
use serde_json::Value;

/// The project's fixture folder (`tests/fixtures`).
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

/// Parse a JSON file.
pub fn read_json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// The tensor-op fixtures made with PyTorch by `scripts/make_engine_fixtures.py`
/// (`engine/tests/fixtures/engine_ops.json`).
pub fn engine_ops() -> Value {
    read_json(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/tests/fixtures/engine_ops.json"),
    )
}

/// A JSON array of numbers as f32 (`null` reads as `-inf`, as the
/// processor fixtures write a removed token).
pub fn f32s(v: &Value) -> Vec<f32> {
    v.as_array()
        .expect("a JSON array")
        .iter()
        .map(|x| x.as_f64().map_or(f32::NEG_INFINITY, |f| f as f32))
        .collect()
}

/// A JSON array of numbers as token ids.
pub fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("a JSON array")
        .iter()
        .map(|x| x.as_u64().expect("a token id") as u32)
        .collect()
}

/// A fixture tensor `{"shape": [...], "data": [...]}`: its data and shape.
pub fn tensor(v: &Value) -> (Vec<f32>, Vec<usize>) {
    let shape = v["shape"]
        .as_array()
        .expect("a shape")
        .iter()
        .map(|d| d.as_u64().expect("a dimension") as usize)
        .collect();
    (f32s(&v["data"]), shape)
}

/// Assert `got` equals `want` within `|got - want| <= abs + rel·|want|`
/// (equal infinities count as equal), naming what is compared and the worst
/// index.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], abs: f32, rel: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut worst: Option<(f32, usize)> = None;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let bound = abs + rel * w.abs();
        if g == w || (g - w).abs() <= bound {
            continue;
        }
        // A NaN or a mismatched infinity counts as the worst excess.
        let excess = match (g - w).abs() - bound {
            e if e.is_nan() => f32::INFINITY,
            e => e,
        };
        if worst.is_none_or(|(e, _)| excess > e) {
            worst = Some((excess, i));
        }
    }
    if let Some((_, i)) = worst {
        panic!(
            "{what}[{i}]: got {}, want {} (diff {:e} over the bound {abs:e} + {rel:e}·|want|)",
            got[i],
            want[i],
            (got[i] - want[i]).abs()
        );
    }
}

/// GPT-2's original vocabulary files (`tests/fixtures/gpt2-tokenizer`):
/// what step 5 encodes with.
#[derive(Debug, Clone)]
pub struct Gpt2Files {
    /// `encoder.json`: vocabulary piece (in the byte-mapped spelling, where
    /// a space is `Ġ`) to token id.
    pub encoder: HashMap<String, u32>,
    /// `vocab.bpe`: merge rule `(left piece, right piece)` to its rank
    /// (0 for the first line, the merge learned first).
    pub ranks: HashMap<(String, String), u32>,
    /// The same rules as ids, the way the project's tokenizer keeps them:
    /// `(left id, right id) -> (rank, merged id)`.
    pub merges: Merges,
}

impl Gpt2Files {
    /// Read `encoder.json` and `vocab.bpe`.
    pub fn load() -> Gpt2Files {
        let dir = fixtures_dir().join("gpt2-tokenizer");
        let encoder: HashMap<String, u32> = read_json(&dir.join("encoder.json"))
            .as_object()
            .expect("encoder.json is an object")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_u64().expect("an id") as u32))
            .collect();
        let path = dir.join("vocab.bpe");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let mut ranks = HashMap::new();
        let mut merges = Merges::new();
        let rules = text
            .lines()
            .filter(|l| !l.starts_with("#version") && !l.is_empty());
        for (rank, line) in rules.enumerate() {
            let (l, r) = line.split_once(' ').expect("a merge rule is two pieces");
            let id = |p: &str| *encoder.get(p).expect("merge pieces are in the vocabulary");
            merges.insert(id(l), id(r), rank as u32, id(&format!("{l}{r}")));
            ranks.insert((l.to_string(), r.to_string()), rank as u32);
        }
        Gpt2Files {
            encoder,
            ranks,
            merges,
        }
    }
}

/// The random-weight GPT-2 fixture `name` (`gpt2-tiny-a`: f32 weights,
/// `gpt2-tiny-b`: f16), as the project loads it.
pub fn gpt2_weights(name: &str) -> Gpt2Weights {
    Gpt2Weights::from_hf_dir(fixtures_dir().join(name))
        .unwrap_or_else(|e| panic!("loading the {name} fixture: {e}"))
}

/// The same fixture wrapped with a KV cache of `slots` sequences: a
/// [`LanguageModel`] for steps 6 to 8.
pub fn gpt2_model(name: &str, slots: usize) -> Gpt2 {
    Gpt2::new(gpt2_weights(name), 128, slots)
        .unwrap_or_else(|e| panic!("building the {name} model: {e}"))
}

/// The logits of every position of `tokens` (one sequence from position 0,
/// no cache), with `block` as the transformer block: token and position
/// embeddings, `block` for each layer, the final LayerNorm and the tied
/// head. Step 4 passes its `gpt2_block`.
pub fn gpt2_logits(
    w: &Gpt2Weights,
    tokens: &[u32],
    block: fn(&mut [f32], &Gpt2Layer, &Gpt2Params),
) -> Vec<Vec<f32>> {
    let p = &w.params;
    let (t, d) = (tokens.len(), p.n_embd);
    let mut x = vec![0.0; t * d];
    nn::embed(&w.wte, tokens, &mut x).expect("token embeddings");
    let wpe = w.wpe.as_f32_slice().expect("position embeddings are f32");
    kernels::add_inplace(&mut x, &wpe[..t * d]);
    for layer in &w.layers {
        block(&mut x, layer, p);
    }
    let mut xn = vec![0.0; t * d];
    nn::layernorm(&x, &w.ln_f.0, &w.ln_f.1, p.layer_norm_epsilon, &mut xn).expect("final norm");
    let mut logits = vec![0.0; t * p.vocab_size];
    nn::linear(&xn, t, &[&w.wte], &mut logits).expect("output head");
    logits.chunks(p.vocab_size).map(<[f32]>::to_vec).collect()
}

/// A model that records how many tokens each `forward` entry fed it, so a
/// check can tell a loop that uses the KV cache (the prompt once, then one
/// token per step) from one that feeds the whole history again.
pub struct Recording<M> {
    /// The wrapped model.
    pub inner: M,
    /// One entry per `forward` call: the number of tokens of each batch entry.
    pub calls: Vec<Vec<usize>>,
}

impl<M> Recording<M> {
    /// Wrap `inner`, with no calls recorded.
    pub fn new(inner: M) -> Self {
        Recording {
            inner,
            calls: Vec::new(),
        }
    }
}

impl<M: LanguageModel> LanguageModel for Recording<M> {
    fn vocab_size(&self) -> usize {
        self.inner.vocab_size()
    }
    fn num_slots(&self) -> usize {
        self.inner.num_slots()
    }
    fn max_seq_len(&self) -> usize {
        self.inner.max_seq_len()
    }
    fn seq_len(&self, slot: usize) -> usize {
        self.inner.seq_len(slot)
    }
    fn forward(&mut self, batch: &[(usize, &[u32])]) -> Result<Vec<Vec<f32>>, ModelError> {
        self.calls
            .push(batch.iter().map(|(_, t)| t.len()).collect());
        self.inner.forward(batch)
    }
    fn truncate(&mut self, slot: usize, len: usize) -> Result<(), ModelError> {
        self.inner.truncate(slot, len)
    }
    fn reorder(&mut self, sources: &[usize]) -> Result<(), ModelError> {
        self.inner.reorder(sources)
    }
    fn clear(&mut self, slot: usize) {
        self.inner.clear(slot)
    }
}
