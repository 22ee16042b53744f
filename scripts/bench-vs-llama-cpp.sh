#!/usr/bin/env bash
# Side-by-side decode/prefill figures: llama.cpp's llama-bench and this
# project's `infer bench`, run back to back on the same GGUF file, the same
# machine and the same thread counts, with the ratios printed at the end.
#
#   scripts/bench-vs-llama-cpp.sh [--build-only] [--reps N] [--rounds N] [--gpt2] [--q4-k-m] [--depth N]
#   scripts/bench-vs-llama-cpp.sh --batching [--rounds N] [--seconds S]
#
# --rounds N runs the pair (llama-bench, then `infer bench`) N times in turn
# for each thread count and prints every round's ratios and their median:
# on a shared virtual machine the same binary moves 10-20 % between runs
# minutes apart, and alternating rounds lets such drifts hit both programs.
#
# Prefill is a 128-token prompt from an empty context (llama-bench -p 128);
# decode is 128 tokens after those 128 positions, on both sides
# (llama-bench -n 128 -d 128, and `infer bench`, which decodes after its
# prompt), so both attend over the same keys. (Decoding from an empty
# context, as plain `llama-bench -n 128` does, reads fewer keys per token:
# GPT-2 124M in f32 on one Xeon ran 5% faster there.)
#
# After each file's rounds it compares peak resident memory: a 24-token
# greedy run of `infer generate` and of `llama-completion` on the same file
# and context, each under /usr/bin/time -v.
#
# --depth N compares decoding with N positions already in the context
# (llama-bench -d N against `infer bench --prompt-tokens N`), where
# attention reads N keys and values per layer and token; only the decode
# ratios are printed then.
#
# --batching compares serving many sequences at once instead, on two
# threads, each round both programs in turn:
#   - the library: llama.cpp's llama-batched-bench (64-token prompts, then
#     128 new tokens for 1 and for 8 sequences: -npp 64 -ntg 128 -npl 1,8)
#     against `infer bench-batch --clients 1,8 --prompt-tokens 64
#     --new-tokens 128` (every prompt read at the start, as there);
#     compared: the decode rate over all sequences (llama.cpp's S_TG);
#   - HTTP: llama-server (-np 8, 512 positions a slot, its defaults
#     otherwise: continuous batching, prompt cache) against `infer serve
#     --max-batch 8 --ctx 512`, each driven by scripts/load-test.py (1, then
#     8 streaming chat clients for --seconds S each, default 15).
# Both print each program's 8 ÷ 1 speed-up beside the absolute rates.
# llama-batched-bench and llama-server are built into the same llama.cpp
# folder the first time they are needed.
#
# Default model: the cached SmolLM2-135M-Instruct Q4_1 (or $MODEL). With
# --gpt2: GPT-2 124M with random weights (scripts/make_gpt2_gguf.py --random,
# seed 0; no GPT-2 weights can be fetched here, and speed does not depend on
# their values) written once as an f32 GGUF into the cache folder, plus f16,
# q8_0 and q4_0 files made from it by `llama-quantize --pure` (every matrix
# in that type; llama.cpp keeps the position table and the vectors f32), each
# file benchmarked in turn. The script makes a virtual environment with
# numpy and gguf for the converter in the cache folder.
#
# --q4-k-m: SmolLM2 in llama-quantize's default mix, the kind of file people
# download (Q4_K and Q6_K where rows are whole 256-value super-blocks, Q5_0
# and Q8_0 fallbacks elsewhere: for SmolLM2's 576 columns, mostly Q5_0),
# made once into the cache folder from the Q4_1 file with
# `llama-quantize --allow-requantize ... Q4_K_M`. Its speed does not depend
# on the weights' values; its quality is the Q4_1 file's rounded again.
#
# llama.cpp comes from the PyPI source distribution llama-cpp-python==0.3.36
# (it vendors llama.cpp commit 0c1e570). It is built once, with cmake, into
# $LLAMA_CPP_DIR (default: the model cache folder), never inside the repo.
# Needs cmake (apt-get install cmake) and about 8 minutes on two cores.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${INFER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/inference-from-scratch}"
llama_dir="${LLAMA_CPP_DIR:-$cache/llama.cpp-0c1e570}"
model="${MODEL:-$cache/SmolLM2-135M-Instruct.Q4_1.gguf}"
reps=3
rounds=1
build_only=0
gpt2=0
q4km=0
depth=0
batching=0
seconds=15
while [ $# -gt 0 ]; do
    case "$1" in
        --build-only) build_only=1 ;;
        --reps) reps="$2"; shift ;;
        --rounds) rounds="$2"; shift ;;
        --gpt2) gpt2=1 ;;
        --q4-k-m) q4km=1 ;;
        --depth) depth="$2"; shift ;;
        --batching) batching=1 ;;
        --seconds) seconds="$2"; shift ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done

build_llama_cpp() {
    if [ -x "$llama_dir/build/bin/llama-bench" ]; then
        return
    fi
    command -v cmake >/dev/null || { echo "cmake is needed: apt-get install cmake" >&2; exit 1; }
    mkdir -p "$llama_dir"
    local tmp
    tmp="$(mktemp -d)"
    python3 -m pip download --quiet --no-deps --no-binary :all: --dest "$tmp" "llama-cpp-python==0.3.36"
    tar -xzf "$tmp"/llama_cpp_python-0.3.36.tar.gz -C "$tmp"
    rm -rf "$llama_dir/src"
    mv "$tmp/llama_cpp_python-0.3.36/vendor/llama.cpp" "$llama_dir/src"
    rm -rf "$tmp"
    configure_and_build -DGGML_NATIVE=ON
    # Some virtual machines advertise AMX, so a native build uses ggml's AMX
    # kernels, and then fault on the first tile instruction (seen on a
    # 2-core KVM guest of a Xeon with AMX: SIGILL in tileloadd). Such a
    # build cannot run at all, so it is rebuilt for the same instruction
    # sets without AMX, and the script says so.
    if ! "$llama_dir/build/bin/llama-bench" -m "$model" -p 16 -n 2 -r 1 -t 2 >/dev/null 2>&1; then
        local flags=() f
        for f in AVX AVX2 BMI2 FMA F16C AVX_VNNI AVX512 AVX512_VBMI AVX512_VNNI AVX512_BF16; do
            local cpu
            cpu="$(echo "$f" | tr A-Z a-z | sed 's/^avx512$/avx512f/; s/^avx512_vbmi$/avx512vbmi/')"
            if grep -q -w "$cpu" /proc/cpuinfo; then flags+=("-DGGML_$f=ON"); else flags+=("-DGGML_$f=OFF"); fi
        done
        echo "note: the native llama.cpp build does not run here; rebuilding with GGML_NATIVE=OFF ${flags[*]} (no AMX)" >&2
        rm -rf "$llama_dir/build"
        configure_and_build -DGGML_NATIVE=OFF "${flags[@]}"
    fi
}

configure_and_build() {
    cmake -S "$llama_dir/src" -B "$llama_dir/build" -DCMAKE_BUILD_TYPE=Release \
        "$@" -DGGML_OPENMP=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_CURL=OFF >/dev/null
    cmake --build "$llama_dir/build" -j "$(nproc)" \
        --target llama-bench llama-perplexity llama-completion llama-quantize
}

"$root/scripts/fetch-model.sh" >/dev/null
build_llama_cpp
[ "$build_only" = 1 ] && exit 0

# GPT-2 124M (random weights) as f32, then f16, q8_0 and q4_0 copies, made
# once into $gpt2_dir.
gpt2_dir="$cache/gpt2-124m-random"
make_gpt2_files() {
    local venv="$cache/gpt2-venv" q
    mkdir -p "$gpt2_dir"
    if [ ! -f "$gpt2_dir/gpt2-124m-f32.gguf" ]; then
        if [ ! -x "$venv/bin/python" ]; then
            python3 -m venv "$venv"
            "$venv/bin/pip" install --quiet numpy "gguf==0.19.0"
        fi
        "$venv/bin/python" "$root/scripts/make_gpt2_gguf.py" --random --seed 0 \
            "$gpt2_dir/gpt2-124m-f32.partial"
        mv "$gpt2_dir/gpt2-124m-f32.partial" "$gpt2_dir/gpt2-124m-f32.gguf"
    fi
    for q in f16 q8_0 q4_0; do
        if [ ! -f "$gpt2_dir/gpt2-124m-$q.gguf" ]; then
            echo "llama-quantize --pure: $q (log in $gpt2_dir/quantize-$q.log)"
            "$llama_dir/build/bin/llama-quantize" --pure "$gpt2_dir/gpt2-124m-f32.gguf" \
                "$gpt2_dir/gpt2-124m-$q.partial" "$(echo "$q" | tr a-z A-Z)" "$(nproc)" \
                >"$gpt2_dir/quantize-$q.log" 2>&1
            mv "$gpt2_dir/gpt2-124m-$q.partial" "$gpt2_dir/gpt2-124m-$q.gguf"
        fi
    done
}

# llama-bench and `infer bench` on one file at 2 and 1 threads, `rounds`
# times in turn, with each round's ratios and, over several rounds, their
# median.
bench_model() {
    local model="$1" t r lj ij rows
    echo "model:   $model"
    for t in 2 1; do
        rows=()
        for ((r = 1; r <= rounds; r++)); do
            if [ "$depth" -gt 0 ]; then
                lj="$("$llama_dir/build/bin/llama-bench" -m "$model" -p 0 -n 128 -d "$depth" -r "$reps" -t "$t" -o json 2>/dev/null)"
                ij="$("$infer" bench --model "$model" --threads "$t" --prompt-tokens "$depth" --new-tokens 128 --reps "$reps" --quick --json 2>/dev/null)"
            else
                # Prefill from an empty context; decode after the 128
                # positions the prompt left, as `infer bench` decodes.
                lj="$(python3 -c 'import json, sys; print(json.dumps(json.loads(sys.argv[1]) + json.loads(sys.argv[2])))' \
                    "$("$llama_dir/build/bin/llama-bench" -m "$model" -p 128 -n 0 -r "$reps" -t "$t" -o json 2>/dev/null)" \
                    "$("$llama_dir/build/bin/llama-bench" -m "$model" -p 0 -n 128 -d 128 -r "$reps" -t "$t" -o json 2>/dev/null)")"
                ij="$("$infer" bench --model "$model" --threads "$t" --prompt-tokens 128 --new-tokens 128 --reps "$reps" --quick --json 2>/dev/null)"
            fi
            rows+=("$(python3 - "$lj" "$ij" <<'PY'
import json, sys
lj, ij = json.loads(sys.argv[1]), json.loads(sys.argv[2])
# At a depth, llama-bench runs no prompt-only test: 0 stands for "none".
pp = next((r["avg_ts"] for r in lj if r["n_prompt"] > 0 and r["n_gen"] == 0), 0.0)
tg = next(r["avg_ts"] for r in lj if r["n_gen"] > 0 and r["n_prompt"] == 0)
print(pp, tg, ij["prefill"]["tok_per_s"], ij["decode_kv_cache"]["tok_per_s"])
PY
)")
        done
        python3 - "$t" "$depth" "${rows[@]}" <<'PY'
import statistics, sys
t, depth = sys.argv[1], int(sys.argv[2])
rounds = [list(map(float, r.split())) for r in sys.argv[3:]]
what = f"decode after {depth} positions" if depth else "decode "
for k, (pp, tg, ipp, itg) in enumerate(rounds):
    tag = f"{t} thread(s)" + (f", round {k + 1}" if len(rounds) > 1 else "")
    if not depth:
        print(f"{tag}: prefill llama.cpp {pp:7.1f} tok/s  infer {ipp:7.1f} tok/s  ratio {ipp/pp:5.2f}x")
    print(f"{tag}: {what} llama.cpp {tg:7.1f} tok/s  infer {itg:7.1f} tok/s  ratio {itg/tg:5.2f}x")
if len(rounds) > 1:
    kinds = (("prefill", 0, 2), ("decode ", 1, 3)) if not depth else (("decode ", 1, 3),)
    for name, a, b in kinds:
        ratios = sorted(r[b] / r[a] for r in rounds)
        print(f"{t} thread(s): {name} median ratio {statistics.median(ratios):5.2f}x "
              f"over {len(rounds)} rounds (range {ratios[0]:.2f}-{ratios[-1]:.2f})")
PY
    done
}

# Build llama.cpp's programs named, those not built yet.
build_llama_targets() {
    local missing=() t
    for t in "$@"; do
        [ -x "$llama_dir/build/bin/$t" ] || missing+=("$t")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "building ${missing[*]} (once)"
        cmake --build "$llama_dir/build" -j "$(nproc)" --target "${missing[@]}" >/dev/null
    fi
}

# A free TCP port on the loopback address.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# llama-batched-bench against `infer bench-batch`, then llama-server against
# `infer serve` under the load test, `rounds` times in turn.
bench_batching() {
    local r lj ij port lhttp ihttp up
    local tmp
    tmp="$(mktemp -d)"
    build_llama_targets llama-batched-bench llama-server
    echo "model:   $model"
    echo "library: 64-token prompts, 128 new tokens each, 2 threads; decode tok/s over all sequences"
    for ((r = 1; r <= rounds; r++)); do
        lj="$("$llama_dir/build/bin/llama-batched-bench" -m "$model" -c 4096 -b 2048 -ub 512 \
            -npp 64 -ntg 128 -npl 1,8 -t 2 --output-format jsonl 2>/dev/null | grep '^{')"
        ij="$("$infer" bench-batch --model "$model" --threads 2 --clients 1,8 \
            --prompt-tokens 64 --new-tokens 128 --json 2>/dev/null)"
        python3 - "$r" "$lj" "$ij" <<'PY'
import json, sys
r, lj, ij = sys.argv[1], [json.loads(l) for l in sys.argv[2].splitlines()], json.loads(sys.argv[3])
l = {x["pl"]: x["speed_tg"] for x in lj}
i = {x["clients"]: x["decode_tok_per_s"] for x in ij["rows"]}
for n in (1, 8):
    print(f"round {r}, {n} sequence(s): llama.cpp {l[n]:7.1f} tok/s  infer {i[n]:7.1f} tok/s  ratio {i[n]/l[n]:5.2f}x")
print(f"round {r}, 8 ÷ 1: llama.cpp {l[8]/l[1]:.2f}x  infer {i[8]/i[1]:.2f}x")
PY
    done
    echo "HTTP: streaming chat clients (scripts/load-test.py), ${seconds} s per count; generated tok/s over all clients"
    for ((r = 1; r <= rounds; r++)); do
        port="$(free_port)"
        "$llama_dir/build/bin/llama-server" -m "$model" -np 8 -c 4096 -t 2 \
            --host 127.0.0.1 --port "$port" >"$tmp/llama-server.log" 2>&1 &
        pid=$!
        # Stopped however the script ends.
        trap 'kill "$pid" 2>/dev/null || true' EXIT
        up=0
        for _ in $(seq 1 120); do
            if python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
                "http://127.0.0.1:$port/health" 2>/dev/null; then
                up=1
                break
            fi
            sleep 0.5
        done
        if [ "$up" = 0 ]; then
            echo "llama-server did not answer on port $port within a minute; its log ends:" >&2
            tail -n 20 "$tmp/llama-server.log" >&2
            exit 1
        fi
        lhttp="$tmp/llama.json"
        python3 "$root/scripts/load-test.py" --url "http://127.0.0.1:$port" --clients 1,8 \
            --seconds "$seconds" --json "$lhttp" >/dev/null || true
        kill "$pid"
        wait "$pid" 2>/dev/null || true
        trap - EXIT
        ihttp="$tmp/infer.json"
        python3 "$root/scripts/load-test.py" --clients 1,8 --seconds "$seconds" \
            --serve-args "--model $model --max-batch 8 --ctx 512 --threads 2" --json "$ihttp" >/dev/null
        python3 - "$r" "$lhttp" "$ihttp" <<'PY'
import json, sys
r = sys.argv[1]
def rates(path):
    levels = json.load(open(path))["levels"]
    return {x["clients"]: x for x in levels}
l, i = rates(sys.argv[2]), rates(sys.argv[3])
for n in (1, 8):
    print(f"round {r}, {n} client(s): llama-server {l[n]['tok_per_s']:7.1f} tok/s (ITL p99 {l[n]['itl_ms_p99']:5.1f} ms)"
          f"  infer serve {i[n]['tok_per_s']:7.1f} tok/s (ITL p99 {i[n]['itl_ms_p99']:5.1f} ms)"
          f"  ratio {i[n]['tok_per_s']/l[n]['tok_per_s']:5.2f}x")
print(f"round {r}, 8 ÷ 1: llama-server {l[8]['tok_per_s']/l[1]['tok_per_s']:.2f}x"
      f" (ITL p99 {l[8]['itl_ms_p99']/l[1]['itl_ms_p99']:.2f}x)"
      f"  infer serve {i[8]['tok_per_s']/i[1]['tok_per_s']:.2f}x"
      f" (ITL p99 {i[8]['itl_ms_p99']/i[1]['itl_ms_p99']:.2f}x)")
PY
    done
    rm -rf "$tmp"
}

if [ "$gpt2" = 1 ]; then
    make_gpt2_files
    models=("$gpt2_dir"/gpt2-124m-{f32,f16,q8_0,q4_0}.gguf)
else
    models=("$model")
    if [ "$q4km" = 1 ]; then
        q4km_file="$cache/SmolLM2-135M-Instruct.Q4_K_M-from-Q4_1.gguf"
        if [ ! -f "$q4km_file" ]; then
            echo "llama-quantize Q4_K_M (log in $cache/quantize-q4_k_m.log)"
            "$llama_dir/build/bin/llama-quantize" --allow-requantize "$model" \
                "$q4km_file.partial" Q4_K_M "$(nproc)" >"$cache/quantize-q4_k_m.log" 2>&1
            mv "$q4km_file.partial" "$q4km_file"
        fi
        models=("$q4km_file")
    fi
fi
(cd "$root" && cargo build --release -q -p infer)
infer="$root/target/release/infer"

echo "machine: $(lscpu | sed -n 's/^Model name:[[:space:]]*//p'), $(nproc) cores, $(grep -o -w -E 'avx512f|avx512_vnni|avx2' /proc/cpuinfo | sort -u | tr '\n' ' ')"
if [ "$batching" = 1 ]; then
    bench_batching
    exit 0
fi
if [ "$depth" -gt 0 ]; then
    echo "note: both decode 128 tokens after $depth positions (llama-bench -d $depth; infer bench --prompt-tokens $depth)"
else
    echo "note: both decode 128 tokens after the 128-token prompt's positions (llama-bench -d 128; infer bench after its prompt)"
fi
# Peak resident memory of a 24-token greedy run of each program on the
# same file and context (2048 positions; GPT-2's own 1024), measured by
# /usr/bin/time -v, one after the other.
peak_rss() {
    local model="$1" ctx=2048 i l
    if [ ! -x /usr/bin/time ]; then
        echo "peak RSS: skipped (no /usr/bin/time; it comes with the 'time' package)"
        return
    fi
    case "$model" in *gpt2*) ctx=1024 ;; esac
    i="$(/usr/bin/time -v "$infer" generate "Once upon a time" --model "$model" \
        --max-new-tokens 24 --ctx "$ctx" 2>&1 >/dev/null | awk '/Maximum resident/ {print $NF}')"
    l="$(/usr/bin/time -v "$llama_dir/build/bin/llama-completion" -m "$model" -p "Once upon a time" \
        -n 24 -c "$ctx" -no-cnv 2>&1 >/dev/null | awk '/Maximum resident/ {print $NF}')"
    python3 -c 'import sys; i, l = int(sys.argv[1]), int(sys.argv[2]); print(f"peak RSS, 24 tokens, context {sys.argv[3]}: llama.cpp {l} KB  infer {i} KB  ratio {i/l:.2f}")' \
        "$i" "$l" "$ctx"
}

for m in "${models[@]}"; do
    bench_model "$m"
    peak_rss "$m"
done
