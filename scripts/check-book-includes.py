#!/usr/bin/env python3
"""Check how the book's chapters include files.

Usage: scripts/check-book-includes.py [book/src]

1. Every {{#include FILE:...}} names an anchor, never a line range
   (`:10:20`, `:10:`, `:10`): a range silently shows the wrong lines as soon as
   the file changes; an anchor fails the build when it goes missing.
2. Every code listing included from the repository's sources
   (`{{#include ../../PATH:anchor}}` as the first line of a fenced block) names
   its file: the block's first line is a comment with PATH, e.g.
   `// engine/src/tensor/layout.rs`.

Exits 1 and lists the offending lines if there are any.
"""
import os
import re
import sys

INCLUDE = re.compile(r"\{\{#(include|rustdoc_include)\s+([^:}\s]+)((?::[^}]*)?)\}\}")
FENCE = re.compile(r"^(\s*)```(\S*)")
COMMENT = {"rust": "//", "python": "#", "toml": "#", "bash": "#", "sh": "#", "c": "//", "cuda": "//"}
# Chapters still being written elsewhere; caption their listings, then remove them here.
CAPTION_EXEMPT = {"ch08b-batching.md"}


def check(path, name):
    problems = []
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for i, line in enumerate(lines):
        for m in INCLUDE.finditer(line):
            sel = m.group(3)
            if re.fullmatch(r":\d*(:\d*)?", sel) and sel not in ("", ":"):
                problems.append(f"{path}:{i + 1}: include by line range: {m.group(0)}")
    if name in CAPTION_EXEMPT:
        return problems
    for i, line in enumerate(lines[:-1]):
        fence = FENCE.match(line)
        if not fence:
            continue
        nxt = lines[i + 1].strip()
        m = INCLUDE.fullmatch(nxt)
        if not m or not m.group(2).startswith("../../"):
            continue
        source = m.group(2)[len("../../"):]
        lang = fence.group(2).split(",")[0]
        comment = COMMENT.get(lang, "//")
        problems.append(
            f"{path}:{i + 2}: listing of {source} does not name its file "
            f"(first line of the block should be `{comment} {source}`)")
    # A captioned block has the comment first and the include second: look again.
    for i, line in enumerate(lines[:-2]):
        fence = FENCE.match(line)
        if not fence:
            continue
        m = INCLUDE.fullmatch(lines[i + 2].strip())
        if not m or not m.group(2).startswith("../../") or INCLUDE.search(lines[i + 1]):
            continue
        source = m.group(2)[len("../../"):]
        lang = fence.group(2).split(",")[0]
        comment = COMMENT.get(lang, "//")
        if lines[i + 1].strip() != f"{comment} {source}":
            problems.append(
                f"{path}:{i + 3}: listing of {source} is captioned "
                f"{lines[i + 1].strip()!r}, not `{comment} {source}`")
    return problems


def main(src):
    problems = []
    chapters = 0
    for name in sorted(os.listdir(src)):
        if name.endswith(".md"):
            chapters += 1
            problems += check(os.path.join(src, name), name)
    for p in problems:
        print(p)
    print(f"include check: {chapters} chapters, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "book/src"))
