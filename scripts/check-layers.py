#!/usr/bin/env python3
"""Checks that the library's modules import one another one way only.

Every top-level module of src/ belongs to a layer; a module may import
modules of its own layer or of layers below it, never above, and no two
modules may import each other (directly or around a longer cycle). An
import is any `crate::X` path (in `use` lines, grouped `use crate::{X, Y}`
lines, or written out inline) and any `super::` path that leaves its
top-level module. Comments and string literals are ignored. Binaries under
src/bin/ and src/main.rs are the library's clients and not checked.

Usage: scripts/check-layers.py [--graph]   (--graph prints every import)
Exit status 1 names each offending import with its file.
"""

import os
import re
import sys

# Bottom to top. Within a layer imports may go either way as long as they
# form no cycle.
LAYERS = [
    # Base: no domain knowledge of workflows.
    ("base", {"intent", "catalog", "text", "telemetry", "auth"}),
    # Domain: the workflow records (with verdicts, the hash chain and the
    # delegation graph), extraction, the drift rules, and storage, which
    # persists the records.
    ("domain", {"workflow", "extraction", "drift", "storage"}),
    # Orchestration: the service and its workflow tracker, and the AuthZEN
    # decision point that judges through the tracker.
    ("service", {"service", "pdp"}),
    # HTTP: wire types and handlers.
    ("api", {"api"}),
    # Entry points: flags, commands, `serve` (the crate root), fuzz targets,
    # and the MCP proxy (a PEP that talks to telos over HTTP).
    ("entry", {"config", "cli", "fuzz_checks", "lib", "mcp_proxy", "mcp_gateway"}),
]

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SRC = os.path.join(ROOT, "src")


def strip(text):
    """The source without comments, string and char literals."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif m := re.match(r'(?:b)?r(#*)"', text[i:]):
            end = text.find('"' + m.group(1), i + len(m.group(0)))
            out.append('""')
            i = n if end < 0 else end + 1 + len(m.group(1))
        elif c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            out.append('""')
            i += 1
        elif m := re.match(r"'(?:\\.|[^\\'\n])'", text[i:]):
            out.append("' '")
            i += len(m.group(0))
        else:
            out.append(c)
            i += 1
    return "".join(out)


def group_heads(body):
    """First path segment of every item of a `{…}` use group."""
    heads, depth, item = [], 0, ""
    for c in body + ",":
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        if c == "," and depth == 0:
            m = re.match(r"\s*(\w+)", item)
            if m:
                heads.append(m.group(1))
            item = ""
        elif depth >= 0:
            item += c
    return heads


def braced(text, start):
    """The text inside the braces opening at `start`."""
    depth = 0
    for j in range(start, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : j]
    return text[start + 1 :]


def top_modules():
    mods = set()
    for name in os.listdir(SRC):
        path = os.path.join(SRC, name)
        if name.endswith(".rs") and name != "main.rs":
            mods.add(name[:-3])
        elif os.path.isdir(path) and name != "bin":
            mods.add(name)
    return mods


def imports():
    """(importer, imported, file) for every cross-module import."""
    mods = top_modules()
    found = []
    for dirpath, dirnames, files in os.walk(SRC):
        rel_dir = os.path.relpath(dirpath, SRC)
        if rel_dir.split(os.sep)[0] == "bin":
            dirnames[:] = []
            continue
        for f in sorted(files):
            if not f.endswith(".rs"):
                continue
            rel = os.path.normpath(os.path.join(rel_dir, f)).split(os.sep)
            if rel == ["main.rs"]:
                continue
            top = rel[0][:-3] if rel[0].endswith(".rs") else rel[0]
            # How many `super::` leave the top-level module from this file.
            depth = len(rel) - 1 if rel[-1] == "mod.rs" else len(rel)
            path = os.path.join(dirpath, f)
            text = strip(open(path, encoding="utf-8").read())
            heads = []
            for m in re.finditer(r"\bcrate::(\{|\w+)", text):
                if m.group(1) == "{":
                    heads += group_heads(braced(text, m.end() - 1))
                else:
                    heads.append(m.group(1))
            if top != "lib":
                for m in re.finditer(r"\b((?:super::)+)(\{|\w+)", text):
                    if m.group(1).count("super::") < depth:
                        continue
                    if m.group(2) == "{":
                        heads += group_heads(braced(text, m.end() - 1))
                    else:
                        heads.append(m.group(2))
            for h in heads:
                if h in mods and h != top:
                    found.append((top, h, os.path.relpath(path, ROOT)))
    return mods, found


def main():
    layer_of = {}
    for rank, (_, members) in enumerate(LAYERS):
        for m in members:
            layer_of[m] = rank
    mods, found = imports()
    errors = []
    for m in sorted(mods - layer_of.keys()):
        errors.append(f"module `{m}` is in no layer: add it to LAYERS in {__file__}")
    edges = {}
    for a, b, path in found:
        edges.setdefault(a, {}).setdefault(b, path)
    for a in sorted(edges):
        for b, path in sorted(edges[a].items()):
            if a in layer_of and b in layer_of and layer_of[b] > layer_of[a]:
                errors.append(
                    f"{path}: `{a}` ({LAYERS[layer_of[a]][0]}) imports `{b}` "
                    f"({LAYERS[layer_of[b]][0]}), a layer above it"
                )
    # Cycles, found by depth-first search from every module.
    seen_cycles = set()

    def visit(node, stack):
        for nxt in sorted(edges.get(node, {})):
            if nxt in stack:
                cycle = stack[stack.index(nxt) :]
                key = frozenset(cycle)
                if key not in seen_cycles:
                    seen_cycles.add(key)
                    hops = [
                        f"{x} -> {y} ({edges[x][y]})"
                        for x, y in zip(cycle, cycle[1:] + [nxt])
                    ]
                    errors.append("import cycle: " + "; ".join(hops))
            elif len(stack) < len(mods):
                visit(nxt, stack + [nxt])

    for m in sorted(edges):
        visit(m, [m])
    if "--graph" in sys.argv:
        for a in sorted(edges):
            print(f"{a} -> {', '.join(sorted(edges[a]))}")
    if errors:
        print("\n".join(errors), file=sys.stderr)
        return 1
    print(f"check-layers: {len(mods)} modules, {len(found)} imports, all one-way")
    return 0


if __name__ == "__main__":
    sys.exit(main())
