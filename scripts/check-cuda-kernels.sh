#!/usr/bin/env bash
# Checks the CUDA backend on a machine without a GPU (CI has none):
#  1. the workspace builds and passes clippy with the `cuda` feature (cudarc
#     loads the driver at run time, so no toolkit is needed to build);
#  2. NVIDIA's NVRTC (from PyPI, into a venv under target/) compiles every
#     kernel in engine/src/cuda/kernels/ as the engine does at run time;
#  3. ptxas (also from PyPI) assembles that PTX for sm_80 and sm_90, so
#     the PTX is valid for the GPUs this project is lent (A100, H100/H200).
# Running the kernels needs a GPU: tests/device_model.rs and the `cuda`
# half of engine/tests/device_conformance.rs do that where there is one.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# CUDA 13.0, as the cudarc feature (Cargo.toml) and the GPU machines this
# project is lent (driver 580, PyTorch built for CUDA 13.0) have it.
ver=13.0.88
venv=target/cuda-tools-venv
py="$venv/bin/python"
[ -x "$py" ] || python3 -m venv "$venv"
site=$("$py" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
nvrtc_lib="$site/nvidia/cu13/lib"
ptxas="$site/nvidia/cu13/bin/ptxas"
if [ ! -f "$nvrtc_lib/libnvrtc.so.13" ] || [ ! -x "$ptxas" ]; then
    "$py" -m pip install --quiet --disable-pip-version-check \
        "nvidia-cuda-nvrtc==$ver" "nvidia-cuda-nvcc==$ver"
fi
[ -d "$nvrtc_lib" ] && [ -x "$ptxas" ] || { echo "NVRTC or ptxas missing under $site" >&2; exit 1; }

echo "== clippy with --features cuda"
cargo clippy --workspace --all-targets --features infer/cuda,integration-tests/cuda -- -D warnings

echo "== NVRTC compiles every kernel"
ptx="$(mktemp -d)/engine_kernels.ptx"
LD_LIBRARY_PATH="$nvrtc_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" INFER_PTX_OUT="$ptx" \
    cargo test --release --quiet -p engine --features cuda --lib cuda::source -- --nocapture
[ -s "$ptx" ] || { echo "the NVRTC test wrote no PTX (was NVRTC found?)" >&2; exit 1; }

echo "== ptxas assembles the PTX"
for arch in sm_80 sm_90; do
    "$ptxas" -arch="$arch" "$ptx" -o /dev/null
    echo "$arch: $(grep -c '^.visible .entry' "$ptx") kernels assembled"
done
