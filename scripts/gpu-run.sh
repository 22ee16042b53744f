#!/usr/bin/env bash
# Run every GPU check on a machine with an NVIDIA GPU, from binaries built
# elsewhere by scripts/gpu-kit.sh (carried in target/gpu-kit). Prints what
# it finds (driver, NVRTC), then: NVRTC compiling the kernels for this GPU,
# the conformance suite on the GPU, the models on the GPU against the CPU
# and against transformers, the chapter-11 program, and `infer bench` on
# both devices. Output goes to stdout and, when $OUT is set, to $OUT/gpu-run.log.
#
#   scripts/gpu-run.sh stash   # call 1: carry target/gpu-model/part-a; kept in /tmp
#   scripts/gpu-run.sh         # call 2: carry target/gpu-model/part-b and
#                              # target/gpu-kit; puts SmolLM2 together, runs all
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
parts=/tmp/gpu-model
mkdir -p "$parts"
# Keep whatever model parts this call carried (target/gpu-model/part-*).
cp target/gpu-model/part-* "$parts/" 2>/dev/null && ls -la "$parts"
[ "${1:-}" = stash ] && exit 0
log="${OUT:-/tmp}/gpu-run.log"
exec > >(tee "$log") 2>&1
kit=target/gpu-kit
bin=/tmp/gpu-kit-bin
mkdir -p "$bin"
for f in "$kit"/*.gz; do gunzip -c "$f" > "$bin/$(basename "$f" .gz)"; chmod +x "$bin/$(basename "$f" .gz)"; done

model="$HOME/.cache/inference-from-scratch/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ -f "$parts/part-a" ] && [ -f "$parts/part-b" ] && [ -f "$kit/model.sha256" ]; then
    mkdir -p "$(dirname "$model")"
    cat "$parts"/part-* > "$model"
    if [ "$(sha256sum "$model" | cut -d' ' -f1)" = "$(cat "$kit/model.sha256")" ]; then
        echo "SmolLM2 put back together from $parts"
    else
        echo "SmolLM2 parts do not match the checksum; leaving it out"
        rm -f "$model"
    fi
fi

echo "== what this machine has"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
nvrtc=$(find / -name 'libnvrtc.so.13' -not -path '*/proc/*' 2>/dev/null | head -1)
echo "NVRTC: ${nvrtc:-none found}"
[ -n "$nvrtc" ] && export LD_LIBRARY_PATH="$(dirname "$nvrtc")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
ldconfig -p | grep -E 'libcuda.so|libnvrtc' | head -5
fails=0
step() { echo; echo "== $*"; "$@" || { echo "FAILED: $*"; fails=$((fails + 1)); }; }

step "$bin/engine_lib" --test-threads 1 --nocapture cuda:: device::
step "$bin/device_conformance" --test-threads 1 cuda::
step "$bin/device_model" --test-threads 1 --nocapture
step "$bin/infer" generate "Once upon a time" --model tests/fixtures/gpt2-tiny-a/model.gguf \
    --device cuda --max-new-tokens 16
if [ -f "$model" ]; then
    step "$bin/ch11_gpu"
    step "$bin/infer" generate "Once upon a time" --device cuda --max-new-tokens 32
    if python3 -m pip install -q --no-index --no-deps --target /tmp/site "$kit"/whl/*.whl; then
        step env PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 python3 scripts/bench_torch_gguf.py "$model"
    fi
    for dev in cuda cpu; do
        step "$bin/infer" bench --device "$dev" --prompt-tokens 128 --new-tokens 128 --reps 3 --cache-type f32
    done
fi
echo
echo "== $fails step(s) failed"
