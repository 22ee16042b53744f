#!/usr/bin/env bash
# Fixtures for the quantized path's parity with llama.cpp: logits and greedy
# continuations of SmolLM2 Q4_1 on a few prompts, computed by llama.cpp
# 0c1e570 (built by scripts/bench-vs-llama-cpp.sh --build-only) through a
# small program against its library (scripts/llama-cpp/dump_logits.cpp).
# Writes tests/fixtures/llama-cpp/smollm2_q4_1.jsonl, and the same for the
# file requantized by `llama-quantize --allow-requantize --pure Q4_K_S`
# (Q4_K where rows are whole super-blocks, Q5_0 elsewhere; `infer quantize
# --dtype q4_k` writes the same bytes) as smollm2_q4_k.jsonl; and the tiny
# random GPT-2 in GGUF form (tests/fixtures/gpt2-tiny-a/model.gguf, f32,
# written by scripts/make_gpt2_gguf.py from the same directory's
# safetensors) with every logit of its 1000-token vocabulary, as
# gpt2_tiny.jsonl. Developers only; CI uses the committed files.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${INFER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/inference-from-scratch}"
llama_dir="${LLAMA_CPP_DIR:-$cache/llama.cpp-0c1e570}"
model="$cache/SmolLM2-135M-Instruct.Q4_1.gguf"
"$root/scripts/bench-vs-llama-cpp.sh" --build-only
"$root/scripts/fetch-model.sh" >/dev/null
bin="$llama_dir/build/dump_logits"
g++ -O2 -std=c++17 -o "$bin" "$root/scripts/llama-cpp/dump_logits.cpp" \
    -I "$llama_dir/src/include" -I "$llama_dir/src/ggml/include" \
    -L "$llama_dir/build/bin" -lllama -lggml -lggml-base -Wl,-rpath,"$llama_dir/build/bin"
mkdir -p "$root/tests/fixtures/llama-cpp"
requantized="$llama_dir/build/smollm2_q4_k_s.gguf"
"$llama_dir/build/bin/llama-quantize" --allow-requantize --pure "$model" "$requantized" Q4_K_S 2 \
    >/dev/null 2>&1
prompts() {
    printf '%s\n' \
    "The capital of France is" \
    "Once upon a time, in a small village," \
    "def fibonacci(n):" \
    "The three primary colors are" \
    "Water boils at a temperature of" \
    "The largest planet in our solar system is" \
    "Here is a short poem about the sea:" \
    "To make a cup of tea, first"
}
prompts | "$bin" "$model" 32 97 2 2>/dev/null > "$root/tests/fixtures/llama-cpp/smollm2_q4_1.jsonl"
prompts | "$bin" "$requantized" 32 97 2 2>/dev/null > "$root/tests/fixtures/llama-cpp/smollm2_q4_k.jsonl"
# The tiny GPT-2 has 128 learned positions and a vocabulary of the byte
# tokens and the first 744 merges, so prompts are short and spell out in
# many tokens.
gpt2_prompts() {
    printf '%s\n' \
    "The capital of France is" \
    "Once upon a time, there was" \
    "def add(a, b): return a + b" \
    "It's 42 degrees in the shade!"
}
gpt2_prompts | "$bin" "$root/tests/fixtures/gpt2-tiny-a/model.gguf" 16 1 2 2>/dev/null \
    > "$root/tests/fixtures/llama-cpp/gpt2_tiny.jsonl"
wc -c "$root/tests/fixtures/llama-cpp/"smollm2_q4_*.jsonl "$root/tests/fixtures/llama-cpp/gpt2_tiny.jsonl"

# Perplexity as llama-perplexity scores it (context 128, so the committed
# text of about 700 tokens makes five chunks), on the shipped Q4_1 file and
# on files that `infer quantize` wrote: llama.cpp loading those is the
# evidence that it accepts them. Each written file's length and byte
# fingerprints go beside its figures, so the test can check that it writes
# the very file llama.cpp scored.
(cd "$root" && cargo build --release -q -p infer)
text="$root/tests/fixtures/llama-cpp/perplexity-text.txt"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
score() {
    "$llama_dir/build/bin/llama-perplexity" -m "$1" -f "$text" -c 128 -b 128 -t 2 2>&1 \
        | grep -E '^\[|Final estimate' | tr '\n' ' '
}
rows=("shipped_q4_1|$(score "$model")|")
for q in q8_0 q4_0 q4_k bf16; do
    "$root/target/release/infer" quantize "$model" "$scratch/$q.gguf" --dtype "$q" >/dev/null
    rows+=("$q|$(score "$scratch/$q.gguf")|$scratch/$q.gguf")
done
python3 - "$root/tests/fixtures/llama-cpp/smollm2_perplexity.json" "${rows[@]}" <<'PY'
import json, re, sys
out = {"llama_cpp": "0c1e570", "text": "perplexity-text.txt", "ctx": 128, "runs": {}}
for row in sys.argv[2:]:
    name, log, path = row.split("|")
    per_chunk = [float(x) for x in re.findall(r"\[\d+\]([0-9.]+)", log)]
    m = re.search(r"PPL = ([0-9.]+) \+/- ([0-9.]+)", log)
    if not m or not per_chunk:
        sys.exit(f"llama-perplexity did not score {name}: {log!r}")
    run = {"per_chunk": per_chunk, "ppl": float(m.group(1)), "plus_minus": float(m.group(2))}
    if path:
        data = open(path, "rb").read()
        s = w = 0
        for i, b in enumerate(data, 1):
            s = (s + b) % 2**64
            w = (w + b * i) % 2**64
        run.update(len=len(data), sum=s, weighted=w)
    out["runs"][name] = run
json.dump(out, open(sys.argv[1], "w"), indent=1)
open(sys.argv[1], "a").write("\n")
PY
echo "wrote $root/tests/fixtures/llama-cpp/smollm2_perplexity.json"
