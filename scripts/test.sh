#!/usr/bin/env bash
# The project's test command (README's quick start, and .ci/run, call this).
# It fetches the real model first when it is missing, because the real-model
# tests run everywhere, CI included, then runs every test in the workspace,
# then drives `infer serve` with the official OpenAI Python client.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/fetch-model.sh
cargo test --workspace --release "$@"
# The server against the official OpenAI Python client.
scripts/openai-client-test.sh
