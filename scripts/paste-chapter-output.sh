#!/usr/bin/env bash
# Run chapter programs and paste their output into the book.
#
#   scripts/paste-chapter-output.sh              # every chapter program
#   scripts/paste-chapter-output.sh ch01_tensors # just one (or several)
#
# Each program's standard output goes to book/src/generated/<name>.txt, which
# the chapter includes by anchor, {{#include generated/<name>.txt:SECTION}}
# (the program prints `ANCHOR: SECTION` / `ANCHOR_END: SECTION` lines around
# each section; never include by line range). Numbers in the
# book therefore always come from running the code, never from typing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="book/src/generated"
mkdir -p "$out"

if [ "$#" -eq 0 ]; then
    set -- $(ls book/examples/*.rs | xargs -n1 basename | sed 's/\.rs$//' | sort)
fi

for name in "$@"; do
    echo "running $name ..." >&2
    cargo run --quiet --release --example "$name" > "$out/$name.txt.tmp"
    mv "$out/$name.txt.tmp" "$out/$name.txt"
    echo "  wrote $out/$name.txt ($(wc -l < "$out/$name.txt") lines)" >&2
done
