#!/usr/bin/env bash
# Check the build-it-yourself track (exercises/, the book's "Build it
# yourself" page): every step's check passes with the project's solution
# switched in, and fails, on the todo!() of its stub, without it.
#
#   scripts/check-exercises.sh
#
# exercises/ is its own workspace (the root Cargo.toml excludes it). Its
# Cargo.lock is not committed: this script seeds it from the root one, so the
# dependencies resolve to the versions the project is tested with, and it
# builds into the workspace's target folder, so the crates the tests already
# built are reused.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root/exercises"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
cp "$root/Cargo.lock" Cargo.lock

steps=()
for f in tests/step*.rs; do
    steps+=("$(basename "$f" .rs)")
done

echo "exercises: format and clippy (stubs and solution)" >&2
cargo fmt --check
cargo clippy --quiet --all-targets --features solution -- -D warnings
cargo clippy --quiet --all-targets -- -D warnings

echo "exercises: every step passes with the solution" >&2
cargo test --quiet --release --features solution

echo "exercises: every test of every step fails on the stub" >&2
cargo test --quiet --release --no-run
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
bad=()
for s in "${steps[@]}"; do
    n="${s%%_*}"
    n="${n#step}"
    if cargo test --quiet --release --test "$s" >"$log" 2>&1; then
        echo "$s passes without the solution: its check cannot fail" >&2
        bad+=("$s")
    elif ! grep -q "not yet implemented: step $n" "$log"; then
        echo "$s fails, but not on its todo!() stub:" >&2
        tail -20 "$log" >&2
        bad+=("$s")
    elif ! grep -q "test result: FAILED. 0 passed" "$log"; then
        echo "$s: some of its tests pass on the stub (they check nothing of it):" >&2
        grep "^test .* ok$" "$log" >&2 || true
        bad+=("$s")
    fi
done
if [ "${#bad[@]}" -gt 0 ]; then
    echo "exercises: wrong on the stubs: ${bad[*]}" >&2
    exit 1
fi
echo "exercises: ${#steps[@]} steps pass with the solution and fail on their stubs"
