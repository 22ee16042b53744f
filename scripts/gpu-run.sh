#!/usr/bin/env bash
# Run every GPU check on a machine with an NVIDIA GPU, from binaries built
# elsewhere by scripts/gpu-kit.sh (carried in target/gpu-kit). Prints what
# it finds (driver, NVRTC), then: NVRTC compiling the kernels for this GPU,
# the conformance suite on the GPU, the models on the GPU against the CPU
# and against transformers, the chapter-11 program, and `infer bench` on
# both devices. Output goes to stdout and, when $OUT is set, to
# $OUT/gpu-run-MODE.log.
#
#   scripts/gpu-run.sh stash   # call 1: carry target/gpu-model/part-a and
#                              # target/gpu-kit; keeps the part in /tmp, then
#                              # runs the checks that need no SmolLM2
#   scripts/gpu-run.sh model   # call 2, at once: carry target/gpu-model/part-b
#                              # (the warm machine kept the kit); puts SmolLM2
#                              # together and runs the checks that need it
#   scripts/gpu-run.sh         # everything in one call (the model already there)
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
parts=/tmp/gpu-model
mkdir -p "$parts"
# Keep whatever model parts this call carried (target/gpu-model/part-*).
cp target/gpu-model/part-* "$parts/" 2>/dev/null && ls -la "$parts"
mode="${1:-all}"
log="${OUT:-/tmp}/gpu-run-$mode.log"
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
# cudarc opens NVRTC and cuBLAS by name; PyTorch's CUDA wheels keep them
# outside the loader's path.
for lib in libnvrtc.so.13 libcublas.so.13; do
    found=$(find / -name "$lib" -not -path '/proc/*' 2>/dev/null | head -1)
    echo "$lib: ${found:-none found}"
    [ -n "$found" ] && export LD_LIBRARY_PATH="$(dirname "$found")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
done
ldconfig -p | grep -E 'libcuda.so|libnvrtc|libcublas' | head -5
fails=0
step() { echo; echo "== $*"; "$@" || { echo "FAILED: $*"; fails=$((fails + 1)); }; }

if [ "$mode" != model ]; then
    step "$bin/engine_lib" --test-threads 1 --nocapture cuda:: device::
    step "$bin/device_conformance" --test-threads 1 cuda::
    step "$bin/device_model" --test-threads 1 --nocapture
    step "$bin/device_graphs" --test-threads 1 --nocapture
    step "$bin/infer" generate "Once upon a time" --model tests/fixtures/gpt2-tiny-a/model.gguf \
        --device cuda --max-new-tokens 16
fi
if [ "$mode" != stash ] && [ -f "$model" ]; then
    step "$bin/device_model" --test-threads 1 --nocapture smollm2
    step "$bin/device_graphs" --test-threads 1 --nocapture smollm2
    step "$bin/ch11_gpu"
    step "$bin/infer" generate "Once upon a time" --device cuda --max-new-tokens 32
    # QUICK=1: only the GPU's own figures (no PyTorch, no CPU bench), for a
    # round that checks a change before the full one.
    if [ "${QUICK:-0}" != 1 ] && python3 -m pip install -q --no-index --no-deps --target /tmp/site "$kit"/whl/*.whl; then
        for dtype in float32 float16; do
            step env PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 python3 scripts/bench_torch_gguf.py \
                "$model" --dtype "$dtype"
        done
    fi
    devices="cuda cpu"
    [ "${QUICK:-0}" = 1 ] && devices=cuda
    for dev in $devices; do
        step "$bin/infer" bench --device "$dev" --prompt-tokens 128 --new-tokens 128 --reps 3 --cache-type f32
    done
    # The same GPU bench with every decode step launched kernel by kernel
    # (no CUDA graphs), for the A/B in one call.
    step env INFER_CUDA_GRAPHS=0 "$bin/infer" bench --device cuda --prompt-tokens 128 \
        --new-tokens 128 --reps 3 --cache-type f32
fi
# PROFILE=1: each kernel of one SmolLM2 decode step timed by Nsight Compute
# (the GPU's time per launch, clocks left alone), as CSV under $OUT.
if [ "${PROFILE:-0}" = 1 ] && [ -f "$model" ]; then
    ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
    if [ -n "$ncu" ]; then
        echo "== one decode step under $ncu"
        # The 4-token prompt's forward pass and the first decode step are
        # skipped, the second step is timed: 214 launches a forward pass
        # (the count chapter 11's program prints) and the greedy choice's one.
        step=215
        # Kernel by kernel (INFER_CUDA_GRAPHS=0): the kernels are the same
        # with graphs, and this keeps the launch count plain.
        timeout 300 env INFER_CUDA_GRAPHS=0 "$ncu" --clock-control none --metrics gpu__time_duration.sum --csv \
            --launch-skip $((2 * step)) --launch-count $step \
            "$bin/infer" generate "Once upon a time" --device cuda --max-new-tokens 4 \
            > "${OUT:-/tmp}/ncu-step.csv" 2> "${OUT:-/tmp}/ncu-step.err"
        echo "ncu: rc=$?, $(wc -l < "${OUT:-/tmp}/ncu-step.csv") lines"
    fi
fi
echo
echo "== $fails step(s) failed"
