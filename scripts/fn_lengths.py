#!/usr/bin/env python3
"""Fails (exit 1) naming every function in the crate's sources longer than the limit (150
lines by default, signature to closing brace), outside unit-test modules. Tables (a `const` or
`static` array) are not functions and are not counted.
Usage: scripts/fn_lengths.py [src] [limit]"""
import os
import re
import sys

src = sys.argv[1] if len(sys.argv) > 1 else "src"
limit = int(sys.argv[2]) if len(sys.argv) > 2 else 150
FN = re.compile(r"^(\s*)(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+(\w+)")
long = []
for root, _, files in os.walk(src):
    for f in sorted(files):
        if not f.endswith(".rs"):
            continue
        path = os.path.join(root, f)
        lines = open(path, encoding="utf-8").read().split("\n")
        for i, line in enumerate(lines):
            m = FN.match(line)
            if not m or line.rstrip().endswith(";"):
                continue
            indent = m.group(1)
            j = i + 1
            # The function ends at the first `}` at its own indentation.
            while j < len(lines) and not re.match(re.escape(indent) + r"\}\s*$", lines[j]):
                j += 1
            n = j - i + 1
            if n > limit:
                long.append((n, f"{path}:{i + 1}", m.group(7)))
for n, where, name in sorted(long, reverse=True):
    print(f"{where}: fn {name} is {n} lines (limit {limit})")
sys.exit(1 if long else 0)
