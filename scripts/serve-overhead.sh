#!/usr/bin/env bash
# What HTTP adds to continuous batching: the library's batched step
# (`infer bench-batch`, no HTTP) and the server under streaming clients
# (`scripts/load-test.py`, which starts `infer serve` on loopback), at 1, 2,
# 4, 8 and 16 clients, run back to back on this machine with the same
# generation length. Writes book/src/generated/serve_overhead.txt, which
# chapter 8b includes: a measurement with the commands that made it, not a
# chapter program, because it needs the server and several minutes.
#
#   scripts/serve-overhead.sh [SECONDS_PER_COUNT]   # default 15
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
seconds="${1:-15}"
out="book/src/generated/serve_overhead.txt"
scripts/fetch-model.sh >/dev/null
cargo build --release -q -p infer
lib=(target/release/infer bench-batch --clients 1,2,4,8,16 --prompt-tokens 32 --new-tokens 128
    --prefill-chunk 16 --prefill-budget 16)
http=(python3 scripts/load-test.py --clients 1,2,4,8,16 --seconds "$seconds" --max-tokens 128)
{
    echo "ANCHOR: sweeps"
    echo "machine: $(lscpu | sed -n 's/^Model name:[[:space:]]*//p'), $(nproc) cores"
    echo
    echo "\$ infer ${lib[*]:1}"
    "${lib[@]}" 2>/dev/null
    echo
    echo "\$ ${http[*]}"
    "${http[@]}" 2>/dev/null
    echo "ANCHOR_END: sweeps"
} > "$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out" >&2
