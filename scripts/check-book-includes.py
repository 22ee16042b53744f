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
3. No anchored region the book includes (`{{#include PATH:anchor}}`) holds a
   line with `feature = "mutant-`: the mutant twins (one-line bugs behind a
   `#[cfg(feature = "mutant-...")]`) live outside the anchors, so readers see
   only the correct code. A file or anchor that is missing is left to
   `mdbook build`, which reports it.

Exits 1 and lists the offending lines if there are any.
"""
import os
import re
import sys

INCLUDE = re.compile(r"\{\{#(include|rustdoc_include)\s+([^:}\s]+)((?::[^}]*)?)\}\}")
FENCE = re.compile(r"^(\s*)```(\S*)")
COMMENT = {"rust": "//", "python": "#", "toml": "#", "bash": "#", "sh": "#", "c": "//", "cuda": "//"}
MUTANT = 'feature = "mutant-'
ANCHOR_START = re.compile(r"ANCHOR:\s*([\w_-]+)")
ANCHOR_END = re.compile(r"ANCHOR_END:\s*([\w_-]+)")
# Chapters still being written elsewhere; caption their listings, then remove them here.
CAPTION_EXEMPT = set()


def anchored(path, anchor):
    """The lines mdBook shows for `{{#include path:anchor}}` (as
    (line number, text) pairs), or None if the file or the anchor is missing."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
    except (OSError, UnicodeDecodeError):
        return None
    region = None
    for n, line in enumerate(lines, 1):
        if region is None:
            m = ANCHOR_START.search(line)
            if m and m.group(1) == anchor and not ANCHOR_END.search(line):
                region = []
            continue
        m = ANCHOR_END.search(line)
        if m and m.group(1) == anchor:
            return region
        region.append((n, line))
    return region


def check(path, name):
    problems = []
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for i, line in enumerate(lines):
        for m in INCLUDE.finditer(line):
            sel = m.group(3)
            if re.fullmatch(r":\d*(:\d*)?", sel) and sel not in ("", ":"):
                problems.append(f"{path}:{i + 1}: include by line range: {m.group(0)}")
            anchor = sel[1:]
            if not re.fullmatch(r"[\w_-]+", anchor) or anchor.isdigit():
                continue
            target = os.path.normpath(os.path.join(os.path.dirname(path), m.group(2)))
            for n, text in anchored(target, anchor) or []:
                if MUTANT in text:
                    problems.append(
                        f"{path}:{i + 1}: anchor {anchor} of {target} shows a mutant "
                        f"line ({target}:{n}: {text.strip()}); move the mutant "
                        f"outside the anchor")
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
