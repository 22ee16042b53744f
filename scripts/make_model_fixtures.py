#!/usr/bin/env python3
"""Reference fixtures for the model forward passes, made with Hugging Face `transformers`.

Run with the reference virtual environment (torch, transformers, gguf, numpy):

    python scripts/make_model_fixtures.py            # GPT-2 tiny configs and SmolLM2
    python scripts/make_model_fixtures.py --skip-smollm2

Writes, relative to the repository root:

* tests/fixtures/gpt2-tiny-a/ and gpt2-tiny-b/: random-weight GPT-2 models
  (fixed seed; biases and LayerNorm weights randomised too, because the default
  initialisation zeroes biases and makes LayerNorm the identity, which would
  hide bugs there) as config.json + model.safetensors, and reference.json with
  last-position logits for several token-id prompts, all-position logits for
  one prompt, and greedy continuations of 32 tokens with the top-1/top-2
  margin of every step.
* tests/fixtures/smollm2/reference.json: SmolLM2-135M-Instruct loaded by
  transformers from the same GGUF (dequantized to f32): for several prompts a
  compact summary of the last-position logits (argmax, top-20, and 256 fixed
  sampled vocabulary indices), and greedy continuations of 40 tokens for five
  prompts with their margins.

The model file is looked up like scripts/fetch-model.sh does: $INFER_CACHE_DIR,
else $XDG_CACHE_HOME/inference-from-scratch, else ~/.cache/inference-from-scratch.
"""

import argparse
import json
import os
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def r7(x):
    """Round floats to 7 significant digits (f32 precision) to keep JSON small."""
    return [float(f"{v:.7g}") for v in x]


def cache_dir() -> Path:
    if os.environ.get("INFER_CACHE_DIR"):
        return Path(os.environ["INFER_CACHE_DIR"])
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "inference-from-scratch"


def greedy_with_margins(model, ids, steps):
    """Greedy decoding by full recompute; returns tokens and top1-top2 margins."""
    ids = list(ids)
    tokens, margins = [], []
    with torch.no_grad():
        for _ in range(steps):
            logits = model(torch.tensor([ids])).logits[0, -1].double()
            top2 = torch.topk(logits, 2)
            tok = int(top2.indices[0])
            tokens.append(tok)
            margins.append(float(top2.values[0] - top2.values[1]))
            ids.append(tok)
    return tokens, margins


# ---------------------------------------------------------------- GPT-2 ----

GPT2_CONFIGS = {
    # name: (n_layer, n_embd, n_head, vocab, n_positions, dtype, seed)
    "gpt2-tiny-a": (2, 64, 4, 1000, 128, torch.float32, 1234),
    "gpt2-tiny-b": (4, 80, 5, 1500, 160, torch.float16, 5678),
}


def make_gpt2(name, n_layer, n_embd, n_head, vocab, n_positions, dtype, seed):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=vocab,
        n_positions=n_positions,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        activation_function="gelu_new",
        layer_norm_epsilon=1e-5,
        bos_token_id=0,
        eos_token_id=0,
        tie_word_embeddings=True,
    )
    model = GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if pname.endswith("wte.weight"):
                p.normal_(0.0, 0.5)
            elif pname.endswith("wpe.weight"):
                p.normal_(0.0, 0.2)
            elif "ln_" in pname and pname.endswith(".weight"):
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif pname.endswith(".bias"):
                p.normal_(0.0, 0.1)
            else:
                p.normal_(0.0, 0.15)
            # Round through the stored dtype so the reference sees exactly
            # the weights the Rust side will load.
            p.copy_(p.to(dtype).to(torch.float32))

    out = FIXTURES / name
    out.mkdir(parents=True, exist_ok=True)
    model.config.to_json_file(out / "config.json")
    from safetensors.torch import save_file

    # The tied head is not stored (it is wte); Conv1D weights keep their
    # [in, out] layout as in the published GPT-2 checkpoints.
    state = {
        k: v.to(dtype).contiguous()
        for k, v in model.state_dict().items()
        if k != "lm_head.weight" and not k.endswith(".attn.bias") and not k.endswith(".masked_bias")
    }
    save_file(state, out / "model.safetensors", metadata={"format": "pt"})

    gen = torch.Generator().manual_seed(seed + 1)
    prompts = [
        torch.randint(0, vocab, (n,), generator=gen).tolist() for n in (1, 5, 17, 40)
    ]
    ref = {"seed": seed, "dtype": str(dtype).replace("torch.", ""), "prompts": []}
    with torch.no_grad():
        for p in prompts:
            logits = model(torch.tensor([p])).logits[0]
            ref["prompts"].append({"ids": p, "last_logits": r7(logits[-1].tolist())})
        full = prompts[2]
        logits = model(torch.tensor([full])).logits[0]
        ref["all_positions"] = {
            "ids": full,
            "logits": [r7(row.tolist()) for row in logits],
        }
    ref["greedy"] = []
    for p in prompts[:3]:
        toks, margins = greedy_with_margins(model, p, 32)
        ref["greedy"].append({"ids": p, "tokens": toks, "margins": r7(margins)})
    (out / "reference.json").write_text(json.dumps(ref) + "\n")
    print(f"{name}: {sum(p.numel() for p in model.parameters())} parameters -> {out}")


# -------------------------------------------------------------- SmolLM2 ----

SMOL_LOGIT_PROMPTS = [
    "Once upon a time",
    "The capital of France is",
    "def fibonacci(n):",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "Les chats sont des animaux",
    "1, 2, 3, 4, 5,",
]
SMOL_GREEDY_PROMPTS = [
    "Once upon a time",
    "The capital of France is",
    "<|im_start|>user\nWrite a haiku about the sea.<|im_end|>\n<|im_start|>assistant\n",
    "def fibonacci(n):",
    "<|im_start|>user\nList three colors.<|im_end|>\n<|im_start|>assistant\n",
]


def make_smollm2():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = cache_dir()
    if not (path / GGUF_NAME).exists():
        raise SystemExit(f"{path / GGUF_NAME} missing: run scripts/fetch-model.sh first")
    tok = AutoTokenizer.from_pretrained(path, gguf_file=GGUF_NAME)
    model = AutoModelForCausalLM.from_pretrained(path, gguf_file=GGUF_NAME, dtype=torch.float32).eval()
    vocab = model.config.vocab_size
    rng = np.random.default_rng(42)
    sample_idx = sorted(rng.choice(vocab, size=256, replace=False).tolist())
    ref = {"vocab_size": vocab, "sample_indices": sample_idx, "logits": [], "greedy": []}
    with torch.no_grad():
        for text in SMOL_LOGIT_PROMPTS:
            ids = tok(text).input_ids
            logits = model(torch.tensor([ids])).logits[0, -1]
            top = torch.topk(logits, 20)
            ref["logits"].append(
                {
                    "text": text,
                    "ids": ids,
                    "argmax": int(torch.argmax(logits)),
                    "top_ids": top.indices.tolist(),
                    "top_logits": r7(top.values.tolist()),
                    "sample_logits": r7(logits[sample_idx].tolist()),
                }
            )
    for text in SMOL_GREEDY_PROMPTS:
        ids = tok(text).input_ids
        toks, margins = greedy_with_margins(model, ids, 40)
        ref["greedy"].append(
            {"text": text, "ids": ids, "tokens": toks, "margins": r7(margins), "completion": tok.decode(toks)}
        )
        print(repr(text), "->", repr(tok.decode(toks)))
    out = FIXTURES / "smollm2"
    out.mkdir(parents=True, exist_ok=True)
    (out / "reference.json").write_text(json.dumps(ref, indent=1) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-smollm2", action="store_true")
    ap.add_argument("--skip-gpt2", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(2)
    if not args.skip_gpt2:
        for name, cfg in GPT2_CONFIGS.items():
            make_gpt2(name, *cfg)
    if not args.skip_smollm2:
        make_smollm2()


if __name__ == "__main__":
    main()
