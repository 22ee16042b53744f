#!/usr/bin/env bash
# The project's test command (README's quick start, and .ci/run, call this).
# It fetches the real model first when it is missing, because the real-model
# tests run everywhere, CI included, and then runs every test in the workspace.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/fetch-model.sh
cargo test --workspace --release "$@"
