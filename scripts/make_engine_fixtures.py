#!/usr/bin/env python3
"""Reference fixtures for the `engine` crate's tensor ops.

Run with the reference virtual environment (torch, transformers), from
anywhere:

    python scripts/make_engine_fixtures.py

Writes engine/tests/fixtures/engine_ops.json (repository root found from this
file). Every case holds its inputs, the parameters, and PyTorch's (or Hugging
Face's) output, all f32, flattened row-major with their shapes:

* gelu_tanh: torch.nn.functional.gelu(approximate="tanh")
* softmax / log_softmax: torch.softmax / torch.log_softmax on the last axis
* layer_norm: torch.nn.functional.layer_norm
* rms_norm: transformers' LlamaRMSNorm
* rope: transformers' LlamaRotaryEmbedding + apply_rotary_pos_emb
  (the rotate_half, "half-rotated" layout)
* attention_*: torch.nn.functional.scaled_dot_product_attention with an
  explicit bottom-right causal mask (queries are the last t of s positions)
  and grouped-query heads expanded with repeat_interleave, as HF's repeat_kv.
"""

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import LlamaConfig
from transformers.models.llama.modeling_llama import (
    LlamaRMSNorm,
    LlamaRotaryEmbedding,
    apply_rotary_pos_emb,
)

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "engine" / "tests" / "fixtures" / "engine_ops.json"

torch.manual_seed(20241122)


def flat(t):
    return {"shape": list(t.shape), "data": [float(v) for v in t.detach().reshape(-1).tolist()]}


def main():
    cases = {}

    x = torch.linspace(-6.0, 6.0, 61)
    x = torch.cat([x, torch.randn(64) * 3])
    cases["gelu_tanh"] = {"x": flat(x), "out": flat(F.gelu(x, approximate="tanh"))}

    x = torch.randn(4, 37) * 5
    cases["softmax"] = {"x": flat(x), "out": flat(torch.softmax(x, -1))}
    cases["log_softmax"] = {"x": flat(x), "out": flat(torch.log_softmax(x, -1))}

    x = torch.randn(3, 48) * 2 + 0.5
    w = torch.randn(48)
    b = torch.randn(48)
    cases["layer_norm"] = {
        "x": flat(x),
        "w": flat(w),
        "b": flat(b),
        "eps": 1e-5,
        "out": flat(F.layer_norm(x, (48,), w, b, 1e-5)),
    }

    norm = LlamaRMSNorm(48, eps=1e-6)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(48))
    cases["rms_norm"] = {"x": flat(x), "w": flat(norm.weight), "eps": 1e-6, "out": flat(norm(x))}

    seq, heads, hd, start, theta = 5, 3, 16, 7, 10000.0
    cfg = LlamaConfig(
        hidden_size=heads * hd,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        head_dim=hd,
        rope_theta=theta,
        max_position_embeddings=64,
    )
    rotary = LlamaRotaryEmbedding(cfg)
    q = torch.randn(1, heads, seq, hd)  # HF layout [batch, heads, seq, hd]
    pos = torch.arange(start, start + seq).unsqueeze(0)
    cos, sin = rotary(q, pos)
    q_rot, _ = apply_rotary_pos_emb(q, q, cos, sin)
    # The engine's layout is [seq, heads, hd].
    cases["rope"] = {
        "x": flat(q[0].transpose(0, 1)),
        "start_pos": start,
        "theta": theta,
        "out": flat(q_rot[0].transpose(0, 1)),
    }

    for name, (t, s, nh, nkv, d) in {
        "attention_prefill": (6, 6, 6, 2, 8),
        "attention_offset": (3, 9, 4, 4, 16),
        "attention_decode": (1, 20, 9, 3, 64),
    }.items():
        q = torch.randn(t, nh, d)
        k = torch.randn(s, nkv, d)
        v = torch.randn(s, nkv, d)
        # Query i sits at position s - t + i and sees keys 0..=s-t+i.
        mask = torch.arange(s)[None, :] <= (s - t + torch.arange(t))[:, None]
        rep = nh // nkv
        qh = q.transpose(0, 1)  # [nh, t, d]
        kh = k.transpose(0, 1).repeat_interleave(rep, dim=0)
        vh = v.transpose(0, 1).repeat_interleave(rep, dim=0)
        out = F.scaled_dot_product_attention(qh, kh, vh, attn_mask=mask)
        cases[name] = {"q": flat(q), "k": flat(k), "v": flat(v), "out": flat(out.transpose(0, 1))}

    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(cases, indent=None, separators=(",", ":")) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
