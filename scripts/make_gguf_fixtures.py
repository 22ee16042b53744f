#!/usr/bin/env python3
"""Reference values for the GGUF reader, from the `gguf` Python package.

Writes two fixtures under tests/fixtures/gguf/:

* small.gguf + small.json: a tiny GGUF built here with gguf.GGUFWriter holding
  one tensor of each supported type (F32, F16, Q8_0, Q4_0, Q4_1), quantized by
  gguf.quants; the JSON holds gguf's own dequantization of every element.
* bf16.gguf: an F32 tensor `source` of awkward values (rounding ties, values
  just off a tie, subnormals, NaNs with payloads, infinities, the largest
  floats) and random ones, and `bf16`, the same values rounded to BF16 by
  gguf.quants (the rule of ggml's ggml_compute_fp32_to_bf16).
* small.safetensors + small_safetensors.json: F32, F16 and BF16 tensors written
  by the `safetensors` package from torch, with their values as f32.
* smollm2.json: for a few tensors of each type in the real
  SmolLM2-135M-Instruct.Q4_1.gguf, the shape, type, byte size, offset and
  sampled dequantized values plus sums (float64), from gguf's dequantizer.

Run with the reference venv (needs numpy and gguf):
    $PYTHON scripts/make_gguf_fixtures.py [path/to/SmolLM2-135M-Instruct.Q4_1.gguf]
"""
import json
import os
import sys
from pathlib import Path

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize, quantize

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "gguf"


def default_model():
    cache = os.environ.get("INFER_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "inference-from-scratch"
    )
    return os.path.join(cache, "SmolLM2-135M-Instruct.Q4_1.gguf")


def sample_indices(n, k=24):
    idx = sorted(set([0, 1, n - 1] + [int(i) for i in np.linspace(0, n - 1, k)]))
    return idx


def small_file():
    rng = np.random.default_rng(1234)
    path = OUT / "small.gguf"
    w = gguf.GGUFWriter(str(path), "test")
    w.add_uint32("test.u32", 7)
    w.add_float32("test.f32", 0.5)
    w.add_string("test.str", "héllo")
    w.add_bool("test.bool", True)
    w.add_array("test.strs", ["a", "bb", ""])
    w.add_array("test.ints", [1, -2, 3])
    expected = {}
    specs = [("f32", T.F32, (3, 64)), ("f16", T.F16, (2, 64)), ("q8_0", T.Q8_0, (4, 64)),
             ("q4_0", T.Q4_0, (2, 96)), ("q4_1", T.Q4_1, (3, 32))]
    for name, qt, shape in specs:
        x = rng.normal(0, 1.5, size=shape).astype(np.float32)
        if qt == T.F32:
            w.add_tensor(name, x)
            deq = x
        elif qt == T.F16:
            w.add_tensor(name, x.astype(np.float16))
            deq = x.astype(np.float16).astype(np.float32)
        else:
            q = quantize(x, qt)
            w.add_tensor(name, q, raw_shape=q.shape, raw_dtype=qt)
            deq = dequantize(q, qt)
        expected[name] = {"type": qt.name, "shape": list(shape), "values": [float(v) for v in deq.reshape(-1)]}
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    (OUT / "small.json").write_text(json.dumps({"tensors": expected}, indent=1) + "\n")


def bf16_bits_ggml(u):
    """ggml_compute_fp32_to_bf16 on one f32 bit pattern (for a self-check)."""
    if (u & 0x7FFFFFFF) > 0x7F800000:
        return (u >> 16) | 64
    return ((u + (0x7FFF + ((u >> 16) & 1))) & 0xFFFFFFFF) >> 16


def bf16_file():
    awkward = [
        0x3F800000, 0x3F808000, 0x3F818000, 0x3F808001, 0x3F817FFF, 0xBF808000,  # 1.0 and ties
        0x00000000, 0x80000000, 0x00000001, 0x00008000, 0x00018000, 0x00008001,  # zeros, subnormals
        0x007FFFFF, 0x807FFFFF, 0x00800000, 0x80018000,
        0x7F800000, 0xFF800000, 0x7F7FFFFF, 0xFF7FFFFF, 0x7F7F8000, 0x7F7F7FFF,  # inf, largest
        0x7FC00000, 0xFFC00000, 0x7F800001, 0xFF800001, 0x7FA12345, 0x7FBFFFFF,  # NaNs
        0x7FFFFFFF, 0xFFFF8000,
    ]
    rng = np.random.default_rng(4321)
    rand = rng.normal(0, 1, size=256 - len(awkward)) * np.exp2(rng.integers(-140, 127, size=256 - len(awkward)))
    bits = np.concatenate([np.array(awkward, dtype=np.uint32),
                           rand.astype(np.float32).view(np.uint32)]).reshape(4, 64)
    x = bits.view(np.float32)
    with np.errstate(all="ignore"):
        q = quantize(x, T.BF16)
    want = np.array([bf16_bits_ggml(int(u)) for u in bits.reshape(-1)], dtype=np.uint16)
    assert (q.view(np.uint16).reshape(-1) == want).all(), "gguf.quants disagrees with ggml's rule"
    path = OUT / "bf16.gguf"
    w = gguf.GGUFWriter(str(path), "test")
    w.add_tensor("source", x)
    w.add_tensor("bf16", q, raw_shape=q.shape, raw_dtype=T.BF16)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def small_safetensors():
    import torch
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(99)
    tensors = {
        "w32": torch.randn(3, 5, generator=g),
        "w16": torch.randn(4, 3, generator=g).to(torch.float16),
        "wbf": torch.randn(2, 7, generator=g).to(torch.bfloat16),
        "scalarish": torch.randn(1, generator=g),
    }
    save_file(tensors, str(OUT / "small.safetensors"), metadata={"format": "pt"})
    expected = {
        name: {"dtype": str(t.dtype), "shape": list(t.shape), "values": [float(v) for v in t.float().reshape(-1)]}
        for name, t in tensors.items()
    }
    (OUT / "small_safetensors.json").write_text(json.dumps({"tensors": expected}, indent=1) + "\n")


def real_file(model):
    r = gguf.GGUFReader(model)
    picked = {}
    for t in r.tensors:
        picked.setdefault(t.tensor_type.name, [])
        if len(picked[t.tensor_type.name]) < 3:
            picked[t.tensor_type.name].append(t)
    out = {"data_offset": int(r.data_offset), "tensor_count": len(r.tensors), "tensors": []}
    for ts in picked.values():
        for t in ts:
            deq = dequantize(t.data, t.tensor_type).astype(np.float64).reshape(-1)
            idx = sample_indices(deq.size)
            out["tensors"].append({
                "name": t.name,
                "type": t.tensor_type.name,
                "dims": [int(d) for d in t.shape],
                "n_bytes": int(t.n_bytes),
                "offset": int(t.data_offset) - int(r.data_offset),
                "sum": float(deq.sum()),
                "abs_sum": float(np.abs(deq).sum()),
                "samples": [[int(i), float(deq[i])] for i in idx],
            })
    (OUT / "smollm2.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    small_file()
    bf16_file()
    small_safetensors()
    real_file(sys.argv[1] if len(sys.argv) > 1 else default_model())
    print("wrote", OUT)
