#!/usr/bin/env python3
"""Write a GPT-2 GGUF file in llama.cpp's layout, without torch.

    make_gpt2_gguf.py --hf DIR OUT.gguf [--outtype f32|f16]
    make_gpt2_gguf.py --random OUT.gguf [--seed N] [--outtype f32|f16]

--hf DIR reads a Hugging Face GPT-2 directory (config.json +
model.safetensors, f32/f16/bf16; the safetensors file is parsed here with
numpy). --random draws GPT-2 124M's configuration (n_embd 768, 12 layers, 12
heads, 1024 positions, vocabulary 50257, LayerNorm epsilon 1e-5) from a
seeded numpy generator, as GPT-2 initialises its weights: matrices and
embeddings N(0, 0.02), the two output projections of each block (attn.c_proj,
mlp.c_proj) N(0, 0.02 / sqrt(2 * n_layer)), biases 0, LayerNorm weight 1 and
bias 0. No GPT-2 weights can be fetched here; random ones run at the real
model's size, which is what a speed comparison needs.

The layout is what llama.cpp's converter (convert_hf_to_gguf.py, class
GPT2Model) writes: `gpt2.*` hyper-parameters; tensors token_embd,
position_embd, output_norm.{weight,bias} and per block attn_norm, attn_qkv,
attn_output, ffn_norm, ffn_up, ffn_down (weights and biases); the Conv1D
weights transposed to [out][in]; no output.weight (the head is tied to
token_embd, which llama.cpp reads when output.weight is absent). With
--outtype f16 the matrices and embeddings are f16, vectors stay f32, as the
converter does.

Tokenizer metadata comes from GPT-2's own files committed at
tests/fixtures/gpt2-tokenizer (encoder.json + vocab.bpe), or --tokenizer DIR:
tokenizer.ggml.model "gpt2", pre "gpt-2", the tokens in id order, their
types (CONTROL for <|endoftext|>, NORMAL otherwise), the merges, and
bos/eos 50256 (<|endoftext|>); add_bos_token false, as GPT-2 adds none.
GPT-2's vocabulary is the 256 byte tokens followed by one token per merge,
in merge order, so a smaller model (the tiny test fixtures have a
vocabulary of 1000) gets the first `vocab` tokens and the first `vocab - 256`
merges: a consistent tokenizer. A vocabulary that stops before
<|endoftext|> has no bos/eos ids, and the file names none.

The committed test file tests/fixtures/gpt2-tiny-a/model.gguf is
    make_gpt2_gguf.py --hf tests/fixtures/gpt2-tiny-a tests/fixtures/gpt2-tiny-a/model.gguf
and scripts/bench-vs-llama-cpp.sh --gpt2 makes the random 124M file.

Needs numpy and gguf (PyPI), e.g. in a throwaway virtual environment:
    python3 -m venv /tmp/gv && /tmp/gv/bin/pip install numpy gguf
"""
import argparse
import json
import struct
import sys
from pathlib import Path

import numpy as np
import gguf

ROOT = Path(__file__).resolve().parent.parent
TOKENIZER = ROOT / "tests" / "fixtures" / "gpt2-tokenizer"
ENDOFTEXT = 50256

GPT2_124M = {
    "n_embd": 768,
    "n_layer": 12,
    "n_head": 12,
    "n_positions": 1024,
    "vocab_size": 50257,
    "layer_norm_epsilon": 1e-5,
}

# Hugging Face name (after `transformer.`) -> llama.cpp name.
TOP = {
    "wte.weight": "token_embd.weight",
    "wpe.weight": "position_embd.weight",
    "ln_f.weight": "output_norm.weight",
    "ln_f.bias": "output_norm.bias",
}
BLOCK = {
    "ln_1.weight": "attn_norm.weight",
    "ln_1.bias": "attn_norm.bias",
    "attn.c_attn.weight": "attn_qkv.weight",
    "attn.c_attn.bias": "attn_qkv.bias",
    "attn.c_proj.weight": "attn_output.weight",
    "attn.c_proj.bias": "attn_output.bias",
    "ln_2.weight": "ffn_norm.weight",
    "ln_2.bias": "ffn_norm.bias",
    "mlp.c_fc.weight": "ffn_up.weight",
    "mlp.c_fc.bias": "ffn_up.bias",
    "mlp.c_proj.weight": "ffn_down.weight",
    "mlp.c_proj.bias": "ffn_down.bias",
}
CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


def read_safetensors(path):
    """{name: float32 array} from a safetensors file (F32, F16 or BF16)."""
    data = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        raw = data[base + start : base + end]
        dtype = info["dtype"]
        if dtype == "F32":
            a = np.frombuffer(raw, dtype="<f4")
        elif dtype == "F16":
            a = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        elif dtype == "BF16":
            a = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            sys.exit(f"{path}: tensor {name} has dtype {dtype}; only F32, F16, BF16 are read")
        out[name] = a.reshape(info["shape"]).astype(np.float32)
    return out


def from_hf_dir(d):
    """(config, {hf name without prefix: float32 array}) of a Hugging Face directory."""
    d = Path(d)
    config = json.loads((d / "config.json").read_text())
    n_inner = config.get("n_inner") or 4 * config["n_embd"]
    if n_inner != 4 * config["n_embd"]:
        sys.exit(f"n_inner {n_inner} is not 4 x n_embd; llama.cpp's GPT-2 assumes it is")
    tensors = {}
    for name, a in read_safetensors(d / "model.safetensors").items():
        name = name.removeprefix("transformer.")
        if name.endswith((".attn.bias", ".attn.masked_bias")):
            continue  # causal-mask buffers, not weights
        tensors[name] = a
    head = tensors.pop("lm_head.weight", None)
    if head is not None and not np.array_equal(head, tensors["wte.weight"]):
        sys.exit("lm_head.weight differs from wte.weight: an untied head is not written here")
    return config, tensors


def random_model(seed):
    """(config, tensors) of GPT-2 124M with GPT-2's initialisation."""
    c = dict(GPT2_124M)
    rng = np.random.default_rng(seed)
    d, n_layer = c["n_embd"], c["n_layer"]

    def normal(shape, std=0.02):
        return (rng.standard_normal(shape, dtype=np.float32) * np.float32(std)).astype(np.float32)

    t = {
        "wte.weight": normal((c["vocab_size"], d)),
        "wpe.weight": normal((c["n_positions"], d)),
        "ln_f.weight": np.ones(d, np.float32),
        "ln_f.bias": np.zeros(d, np.float32),
    }
    proj_std = 0.02 / np.sqrt(2 * n_layer)
    for i in range(n_layer):
        p = f"h.{i}."
        for ln in ("ln_1", "ln_2"):
            t[p + ln + ".weight"] = np.ones(d, np.float32)
            t[p + ln + ".bias"] = np.zeros(d, np.float32)
        # Conv1D weights are [in][out] in the Hugging Face layout.
        for name, inp, out, std in (
            ("attn.c_attn", d, 3 * d, 0.02),
            ("attn.c_proj", d, d, proj_std),
            ("mlp.c_fc", d, 4 * d, 0.02),
            ("mlp.c_proj", 4 * d, d, proj_std),
        ):
            t[p + name + ".weight"] = normal((inp, out), std)
            t[p + name + ".bias"] = np.zeros(out, np.float32)
    return c, t


def gguf_name(hf):
    """llama.cpp's name for a Hugging Face tensor name (without `transformer.`)."""
    if hf in TOP:
        return TOP[hf]
    parts = hf.split(".", 2)
    if len(parts) == 3 and parts[0] == "h" and parts[2] in BLOCK:
        return f"blk.{parts[1]}.{BLOCK[parts[2]]}"
    sys.exit(f"unexpected tensor {hf}")


def tokenizer(tok_dir, vocab):
    """(tokens, token types, merges, special id or None) for the first `vocab` ids."""
    tok_dir = Path(tok_dir)
    encoder = json.loads((tok_dir / "encoder.json").read_text(encoding="utf-8"))
    by_id = sorted(encoder.items(), key=lambda kv: kv[1])
    if [i for _, i in by_id] != list(range(len(by_id))):
        sys.exit("encoder.json ids are not 0..n")
    lines = (tok_dir / "vocab.bpe").read_text(encoding="utf-8").split("\n")
    merges = [l for l in lines if l and not l.startswith("#version")]
    if vocab > len(by_id):
        sys.exit(f"the model's vocabulary {vocab} is larger than the tokenizer's {len(by_id)}")
    tokens = [piece for piece, _ in by_id[:vocab]]
    n_merges = min(len(merges), max(vocab - 256, 0))
    merges = merges[:n_merges]
    # Token 256 + i is merge i's result: check, so a truncated vocabulary
    # is a consistent tokenizer.
    for i, m in enumerate(merges):
        if 256 + i < vocab and m.replace(" ", "") != tokens[256 + i]:
            sys.exit(f"merge {i} ({m!r}) does not make token {256 + i} ({tokens[256 + i]!r})")
    special = ENDOFTEXT if vocab > ENDOFTEXT and tokens[ENDOFTEXT] == "<|endoftext|>" else None
    types = [
        gguf.TokenType.CONTROL if i == special else gguf.TokenType.NORMAL
        for i in range(vocab)
    ]
    return tokens, types, merges, special


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--hf", metavar="DIR", help="Hugging Face GPT-2 directory")
    src.add_argument("--random", action="store_true", help="random GPT-2 124M")
    ap.add_argument("out", help="GGUF file to write")
    ap.add_argument("--seed", type=int, default=0, help="seed of --random (default 0)")
    ap.add_argument("--outtype", choices=["f32", "f16"], default="f32")
    ap.add_argument("--tokenizer", default=str(TOKENIZER), help="directory with encoder.json + vocab.bpe")
    a = ap.parse_args()

    if a.random:
        config, tensors = random_model(a.seed)
        name = f"GPT-2 124M, random weights (seed {a.seed})"
    else:
        config, tensors = from_hf_dir(a.hf)
        name = f"GPT-2 ({Path(a.hf).resolve().name})"
    d = config["n_embd"]
    vocab = tensors["wte.weight"].shape[0]
    if vocab != config["vocab_size"]:
        sys.exit(f"wte has {vocab} rows, config.json says vocab_size {config['vocab_size']}")

    w = gguf.GGUFWriter(a.out, "gpt2")
    w.add_name(name)
    w.add_block_count(config["n_layer"])
    w.add_context_length(config["n_positions"])
    w.add_embedding_length(d)
    w.add_feed_forward_length(4 * d)
    w.add_head_count(config["n_head"])
    w.add_layer_norm_eps(config["layer_norm_epsilon"])
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if a.outtype == "f16" else gguf.LlamaFileType.ALL_F32)

    tokens, types, merges, special = tokenizer(a.tokenizer, vocab)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    if special is not None:
        w.add_bos_token_id(special)
        w.add_eos_token_id(special)
    w.add_add_bos_token(False)

    order = (
        ["wte.weight", "wpe.weight"]
        + [f"h.{i}.{b}" for i in range(config["n_layer"]) for b in BLOCK]
        + ["ln_f.weight", "ln_f.bias"]
    )
    missing = [n for n in order if n not in tensors]
    unknown = sorted(set(tensors) - set(order))
    if missing or unknown:
        sys.exit(f"missing tensors: {missing}; unexpected tensors: {unknown}")
    for hf in order:
        t = tensors[hf]
        if hf.endswith(CONV1D):
            t = t.T  # Conv1D [in][out] -> [out][in], as llama.cpp's converter does
        if a.outtype == "f16" and t.ndim >= 2:
            t = t.astype(np.float16)
        w.add_tensor(gguf_name(hf), np.ascontiguousarray(t))

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"wrote {a.out}: {name}, {config['n_layer']} layers, n_embd {d}, vocab {vocab}, {a.outtype}")


if __name__ == "__main__":
    main()
