#!/usr/bin/env bash
# The engine's tests on aarch64, on an x86 machine, under QEMU's user-mode
# emulator: every SIMD kernel against its plain twin where the NEON bodies
# are the ones dispatched.
#  1. clippy on the engine for aarch64 (the NEON code and the cfg'd x86
#     code leave no warnings);
#  2. every engine test on an emulated CPU with the dot-product
#     instructions (`-cpu max`: the `sdot` kernels);
#  3. the engine's unit tests (the kernels' twin tests) on an emulated
#     Cortex-A53 (NEON without `sdot`: the widening-multiply kernels).
# Installs what it needs when missing: the aarch64 standard library
# (rustup), a cross linker and qemu-user (apt). About 6 minutes on 2 cores.
#
#   scripts/test-aarch64.sh                 # fails if the tools cannot be had
#   scripts/test-aarch64.sh --if-available  # says so and stops (CI)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
target=aarch64-unknown-linux-gnu

optional=false
[ "${1:-}" = "--if-available" ] && optional=true
unavailable() {
    if $optional; then
        echo "SKIPPED: the aarch64 tests need $1, which could not be installed here" >&2
        exit 0
    fi
    echo "the aarch64 tests need $1" >&2
    exit 1
}

rustup target list --installed | grep -qx "$target" ||
    rustup target add "$target" || unavailable "the $target standard library (rustup)"
missing=()
command -v qemu-aarch64 >/dev/null 2>&1 || missing+=(qemu-user)
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || missing+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing ${missing[*]} ..." >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    { $sudo apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null; } ||
        unavailable "${missing[*]} (apt)"
fi

export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
runner() { echo "qemu-aarch64 -cpu $1 -L /usr/aarch64-linux-gnu"; }

echo "== clippy, engine, $target"
cargo clippy -p engine --all-targets --target "$target" -- -D warnings

echo "== engine tests, $target, a CPU with sdot (qemu -cpu max)"
CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="$(runner max)" \
    cargo test -p engine --target "$target"

echo "== engine unit tests, $target, NEON without sdot (qemu -cpu cortex-a53)"
CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="$(runner cortex-a53)" \
    cargo test -p engine --lib --target "$target"
