#!/usr/bin/env bash
# Runs `infer serve` on a free loopback port and drives it with the official
# `openai` Python client (installed here into a venv under target/).
# scripts/test.sh calls it after the Rust tests; it needs the release build.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
pin="openai==3.57.0"
venv=target/openai-venv
py="$venv/bin/python"
if [ ! -x "$py" ] || ! "$py" -c "import openai" 2>/dev/null; then
    if python3 -m venv "$venv" 2>/dev/null; then
        "$py" -m pip install --quiet --disable-pip-version-check "$pin"
    else
        # No venv module (Debian without python3-venv): a private target dir.
        python3 -m pip install --quiet --disable-pip-version-check --target target/openai-pylib "$pin"
        py=python3
        export PYTHONPATH="$root/target/openai-pylib"
    fi
fi
cargo build --release --quiet -p infer
log=$(mktemp)
# A key of its own for this run (through the environment, out of the
# process list); the check also tries a wrong one.
key="sk-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
INFER_API_KEY="$key" target/release/infer serve --port 0 --ctx 512 >"$log" 2>/dev/null &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 600); do
    grep -q "listening on" "$log" && break
    kill -0 $pid 2>/dev/null || { echo "infer serve exited" >&2; exit 1; }
    sleep 0.1
done
addr=$(sed -n 's/^listening on //p' "$log")
[ -n "$addr" ] || { echo "infer serve did not start" >&2; exit 1; }
"$py" scripts/openai_client_check.py "$addr/v1" "$key"
