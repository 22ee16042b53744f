#!/usr/bin/env python3
"""Fingerprints of llama.cpp's requantization of SmolLM2, for the test that
`infer quantize` writes the same tensor bytes.

For each target (Q4_K, Q6_K, Q5_0, Q8_0, Q4_0) it runs llama.cpp 0c1e570's
`llama-quantize --allow-requantize --pure` on the shipped Q4_1 file (every
matrix to the one type, with llama.cpp's fallback for rows that are not
whole 256-value super-blocks), reads the result with the `gguf` package and
records, per tensor, its GGML type, byte length, the sum of its bytes and
the sum of byte × (position + 1), both mod 2**64. Writes
tests/fixtures/llama-cpp/requantize.json. Developers only (needs the
llama.cpp build of scripts/bench-vs-llama-cpp.sh --build-only, and numpy +
gguf from the reference venv); CI uses the committed file.

    $PYTHON scripts/make_requantize_fixtures.py
"""
import json
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import gguf

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("INFER_CACHE_DIR") or Path(
    os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "inference-from-scratch")
LLAMA = Path(os.environ.get("LLAMA_CPP_DIR") or CACHE / "llama.cpp-0c1e570")
MODEL = CACHE / "SmolLM2-135M-Instruct.Q4_1.gguf"
TARGETS = {"q4_k": "Q4_K_S", "q6_k": "Q6_K", "q5_0": "Q5_0", "q8_0": "Q8_0", "q4_0": "Q4_0"}


def fingerprint(data: np.ndarray) -> dict:
    x = data.reshape(-1).view(np.uint8).astype(np.uint64)
    pos = np.arange(1, x.size + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        return {"len": int(x.size), "sum": int(x.sum(dtype=np.uint64)),
                "weighted": int((x * pos).sum(dtype=np.uint64))}


def main():
    subprocess.run([ROOT / "scripts" / "bench-vs-llama-cpp.sh", "--build-only"], check=True)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, ftype in TARGETS.items():
            path = Path(tmp) / f"{name}.gguf"
            subprocess.run([LLAMA / "build" / "bin" / "llama-quantize", "--allow-requantize", "--pure",
                            MODEL, path, ftype, "2"], check=True, capture_output=True)
            r = gguf.GGUFReader(path)
            out[name] = {t.name: {"type": t.tensor_type.name, **fingerprint(t.data)} for t in r.tensors}
    dest = ROOT / "tests" / "fixtures" / "llama-cpp" / "requantize.json"
    dest.write_text(json.dumps(out, indent=0, sort_keys=True) + "\n")
    print(f"wrote {dest} ({dest.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
