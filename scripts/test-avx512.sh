#!/usr/bin/env bash
# Run the engine's kernel tests on an emulated AVX-512 CPU, so that the
# AVX-512F and AVX-512 VNNI kernels are tested on a machine without them.
#
# Bochs emulates an Intel Tiger Lake (AVX-512F, BW, VL, VNNI); the tests
# are built as static binaries and each boots a small Linux guest in it
# (scripts/avx512/run.sh; the first run installs Bochs and fetches a
# Debian kernel with apt, see scripts/avx512/setup.sh). The dispatcher
# there picks the AVX-512 and VNNI kernels, and the property tests hold
# them to their plain twins (and VNNI's to AVX2's bits).
#
# Not part of CI: it takes about ten minutes on two cores (five to build,
# five to emulate at some 40 million instructions a second).
#
# usage: scripts/test-avx512.sh [TEST-FILTER]
set -euo pipefail
cd "$(dirname "$0")/.."
filter=${1:-}
bash scripts/avx512/setup.sh > /dev/null
target=x86_64-unknown-linux-gnu
# The test binaries, static so the guest needs no libraries; their own
# target directory, so the normal build is untouched.
bins=$(CARGO_TARGET_DIR=target/static RUSTFLAGS="-C target-feature=+crt-static" \
    cargo test --release -p engine --lib --test quant_props --test ops_props \
    --no-run --target "$target" --message-format=json 2> /dev/null |
    python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["executable"])
')
status=0
for bin in $bins; do
    echo "== $(basename "$bin") on an emulated Tiger Lake"
    if ! bash scripts/avx512/run.sh -t 1800 "$bin" --test-threads 1 $filter; then
        status=1
    fi
done
exit $status
