#!/usr/bin/env python3
"""Prints import cycles between the crate's top-level modules (crate::X → crate::Y edges from
`use crate::…` paths and `crate::…::` expressions outside `#[cfg(test)]` modules), and exits 1
when there is one. The test modules and `fuzzing.rs`/`demo.rs` (drivers over everything) are
left out. Usage: scripts/module_cycles.py [src]"""
import os
import re
import sys

src = sys.argv[1] if len(sys.argv) > 1 else "src"
skip = {"fuzzing", "demo", "main", "lib"}
edges = {}
for root, _, files in os.walk(src):
    for f in files:
        if not f.endswith(".rs"):
            continue
        path = os.path.join(root, f)
        rel = os.path.relpath(path, src)
        top = rel.split(os.sep)[0].removesuffix(".rs")
        if top in skip:
            continue
        text = open(path, encoding="utf-8").read()
        # Cut the unit-test module (it may use anything).
        text = re.split(r"#\[cfg\(test\)\]\s*mod tests", text)[0]
        for m in re.finditer(r"crate::(\w+)", text):
            dst = m.group(1)
            if dst != top and dst not in skip:
                edges.setdefault(top, set()).add(dst)

# Strongly connected components (Tarjan).
index, low, stack, on, sccs, n = {}, {}, [], set(), [], [0]
def visit(v):
    index[v] = low[v] = n[0]; n[0] += 1; stack.append(v); on.add(v)
    for w in sorted(edges.get(v, ())):
        if w not in index:
            visit(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1: sccs.append(sorted(comp))
for v in sorted(set(edges) | {w for ws in edges.values() for w in ws}):
    if v not in index:
        visit(v)
for c in sccs:
    inner = [f"{a} → {b}" for a in c for b in sorted(edges.get(a, ())) if b in c]
    print("cycle among", ", ".join(c) + ":", "; ".join(inner))
sys.exit(1 if sccs else 0)
