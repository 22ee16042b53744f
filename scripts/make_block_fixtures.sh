#!/usr/bin/env bash
# Reference blocks for Q5_0, Q4_K and Q6_K from ggml's own reference
# quantizers and dequantizers: builds scripts/llama-cpp/dump_blocks.c against
# libggml-base of llama.cpp 0c1e570 (built by scripts/bench-vs-llama-cpp.sh
# --build-only) and writes engine/tests/fixtures/ggml_blocks.jsonl.
# Developers only; CI uses the committed file.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${INFER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/inference-from-scratch}"
llama_dir="${LLAMA_CPP_DIR:-$cache/llama.cpp-0c1e570}"
"$root/scripts/bench-vs-llama-cpp.sh" --build-only
bin="$llama_dir/build/dump_blocks"
cc -O2 -o "$bin" "$root/scripts/llama-cpp/dump_blocks.c" \
    -L "$llama_dir/build/bin" -lggml-base -lm -Wl,-rpath,"$llama_dir/build/bin"
"$bin" > "$root/engine/tests/fixtures/ggml_blocks.jsonl"
wc -c "$root/engine/tests/fixtures/ggml_blocks.jsonl"
