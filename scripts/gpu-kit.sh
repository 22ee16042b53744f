#!/usr/bin/env bash
# Build what the GPU checks run, for a machine that has a GPU but no Rust
# (the project's lent GPU machines): `infer`, the GPU test binaries and the
# chapter-11 program, built with the `cuda` feature, stripped and
# compressed into target/gpu-kit/ (about 6 MB; a lent machine takes at
# most 64 MiB with each call, working tree included). Then, on the GPU machine, from
# the repository root with target/gpu-kit carried along:
#
#   scripts/gpu-run.sh          # everything, about 2 minutes; logs to $OUT
#
# SmolLM2 (98 MB) does not fit in one call, so the kit also splits it into
# target/gpu-model/part-a and part-b (45 MB and 53 MB). The first call
# carries target/gpu-kit and part-a and runs `scripts/gpu-run.sh stash`,
# which keeps the part in /tmp and runs the checks that need no SmolLM2.
# The second, started at once (an idle machine is given back after about
# 30 s, and a warm one keeps the kit from the first call), carries only
# part-b and runs `scripts/gpu-run.sh model`, which puts the model back
# together (checking its SHA-256) and runs the checks that need it. Without
# the parts the SmolLM2 checks say they are skipped, and a random-weights
# Llama test covers that path.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
kit=target/gpu-kit
rm -rf "$kit"
mkdir -p "$kit"
cargo build --release --features cuda -p infer
cp target/release/infer "$kit/infer"
cargo build --release --features engine/cuda -p book --example ch11_gpu
cp target/release/examples/ch11_gpu "$kit/ch11_gpu"

# The test binaries: cargo names them with a hash; ask it which.
cargo test --release --no-run --features engine/cuda,integration-tests/cuda -p engine -p integration-tests \
    --message-format=json 2>/dev/null |
    python3 -c '
import json, shutil, sys
want = {("engine", "lib"): "engine_lib", ("device_conformance", "test"): "device_conformance",
        ("device_model", "test"): "device_model", ("device_graphs", "test"): "device_graphs"}
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") != "compiler-artifact" or not m.get("executable"):
        continue
    key = (m["target"]["name"], m["target"]["kind"][0])
    if key in want:
        shutil.copy(m["executable"], sys.argv[1] + "/" + want[key])
' "$kit"
for f in infer ch11_gpu engine_lib device_conformance device_model device_graphs; do
    [ -f "$kit/$f" ] || { echo "missing $kit/$f" >&2; exit 1; }
    strip "$kit/$f"
    gzip -9 "$kit/$f"
done
model="${HOME}/.cache/inference-from-scratch/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ -f "$model" ]; then
    rm -rf target/gpu-model
    mkdir -p target/gpu-model
    head -c 45000000 "$model" > target/gpu-model/part-a
    tail -c +45000001 "$model" > target/gpu-model/part-b
    sha256sum "$model" | cut -d' ' -f1 > "$kit/model.sha256"
    ls -la target/gpu-model
fi
# transformers reads GGUF through the `gguf` package, which the GPU
# machine lacks and cannot fetch: it travels as a wheel (pure Python).
python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$kit/whl" gguf==0.17.1
du -sh "$kit"
ls -la "$kit"
