"""PyTorch `transformers` on the GPU, on the same SmolLM2 GGUF `infer` reads:
prefill and greedy decode tokens per second, eager mode, the baseline of
issue 8's goal (decode at least 3x PyTorch eager). transformers dequantizes
the GGUF's blocks to float32 at load. Run by scripts/gpu-run.sh on a GPU
machine (the `gguf` package travels as a wheel in target/gpu-kit).

    python3 scripts/bench_torch_gguf.py MODEL.gguf [--prompt 128] [--new 128] [--reps 3]
        [--dtype float32|float16|bfloat16]
"""

import argparse
import os
import time

import torch
from transformers import AutoModelForCausalLM


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--new", type=int, default=128)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    a = ap.parse_args()
    folder, name = os.path.split(os.path.abspath(a.model))
    dtype = getattr(torch, a.dtype)
    m = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=dtype)
    m = m.to("cuda").eval()
    ids = torch.arange(100, 100 + a.prompt, device="cuda").unsqueeze(0)
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name()}, {a.dtype}, eager")
    for rep in range(a.reps + 1):
        with torch.no_grad():
            torch.cuda.synchronize()
            t = time.perf_counter()
            out = m(ids, use_cache=True)
            torch.cuda.synchronize()
            prefill = time.perf_counter() - t
            past, nxt = out.past_key_values, out.logits[:, -1:].argmax(-1)
            t = time.perf_counter()
            for _ in range(a.new):
                out = m(nxt, past_key_values=past, use_cache=True)
                past, nxt = out.past_key_values, out.logits[:, -1:].argmax(-1)
            torch.cuda.synchronize()
            decode = time.perf_counter() - t
        if rep > 0:  # the first is a warm-up
            print(
                f"rep {rep}: prefill {a.prompt / prefill:.0f} tok/s, "
                f"decode {a.new / decode:.0f} tok/s"
            )


if __name__ == "__main__":
    main()
