#!/usr/bin/env python3
"""Find import circles between sibling modules of each crate.

Every `crate::a::b` and `super::…` path in a module's source is an edge
from that module to the one it names. Two paths meet at the module that
holds both; the edge then joins the two children of that module that lead
to them (a module naming its own parent or child is not a circle: that is
how a module uses its helpers). A cycle among siblings, such as
`generate` naming `sequence` while `sequence` names `generate`, is printed
and makes the exit status 1.

Usage: scripts/check-import-cycles.py [CRATE_SRC_DIR ...]
(default: the workspace crates' src folders)
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ["engine/src", "model/src", "decode/src", "cli/src"]
PATH = re.compile(r"\b(crate|super)((?:::\w+)+)")
GROUP = re.compile(r"\b(crate|super)::\{([^}]*)\}")


def module_of(src: Path, file: Path) -> tuple:
    """The module path of `file` inside the crate rooted at `src`."""
    parts = list(file.relative_to(src).with_suffix("").parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts.pop()
    return tuple(parts)


def strip_comments(text: str) -> str:
    """Source without `//` comments (doc links name modules, not imports)."""
    return "\n".join(line.split("//", 1)[0] for line in text.splitlines())


def targets(module: tuple, text: str, modules: set) -> set:
    """The modules that `text` (the source of `module`) names."""
    found = set()
    paths = [(m.group(1), m.group(2).split("::")[1:]) for m in PATH.finditer(text)]
    for m in GROUP.finditer(text):
        for item in m.group(2).split(","):
            head = item.strip().split("::")[0].strip()
            if head:
                paths.append((m.group(1), [head]))
    for root, segs in paths:
        base = list(module)
        if root == "super":
            # `super::super::x` arrives as segments starting with "super".
            base = base[:-1]
            while segs and segs[0] == "super":
                base = base[:-1]
                segs = segs[1:]
        else:
            base = []
        # The longest prefix of the named path that is a module.
        full = base + segs
        for k in range(len(full), -1, -1):
            if tuple(full[:k]) in modules:
                found.add(tuple(full[:k]))
                break
    return found


def sibling_edges(src: Path) -> dict:
    """Edges between sibling modules, keyed by their parent."""
    files = sorted(src.rglob("*.rs"))
    modules = {module_of(src, f) for f in files}
    edges = {}
    for f in files:
        a = module_of(src, f)
        for b in targets(a, strip_comments(f.read_text()), modules):
            k = 0
            while k < min(len(a), len(b)) and a[k] == b[k]:
                k += 1
            if k == len(a) or k == len(b):
                continue  # the same module, an ancestor or a descendant
            parent = a[:k]
            edges.setdefault(parent, {}).setdefault(a[k], set()).add(b[k])
    return edges


def cycles(graph: dict) -> list:
    """Strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main() -> int:
    dirs = [Path(d) for d in sys.argv[1:]] or [ROOT / d for d in DEFAULT]
    bad = 0
    for src in dirs:
        for parent, graph in sorted(sibling_edges(src).items()):
            for comp in cycles(graph):
                bad += 1
                where = "::".join(parent) or "crate root"
                print(f"{src}: import circle under {where}: {' <-> '.join(comp)}")
                for v in comp:
                    names = sorted(w for w in graph[v] if w in comp)
                    print(f"    {v} names {', '.join(names)}")
    if bad:
        return 1
    print(f"no import circles between sibling modules in {len(dirs)} crate(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
