#!/usr/bin/env python3
"""The core crate (`core/`, the sans-IO cores) must not reach for I/O, the clock or the global
RNG: fails (exit 1) naming each `tokio`, `sqlx`, `axum`, `reqwest`, `Instant::now`,
`SystemTime::now`, `Utc::now`, `rand::thread_rng`/`rand::rng()`/`rand::random`, file, process,
socket or environment access (`std::fs`, `std::process`, `File::open`, `std::net` sockets,
`std::env::var`) in its non-test code (unit-test modules may use them). The compiler keeps the rest: the core crate does not
depend on tokio, sqlx, axum or reqwest at all. Usage: scripts/core_purity.py [core/src]"""
import os
import re
import sys

src = sys.argv[1] if len(sys.argv) > 1 else "core/src"
FORBIDDEN = re.compile(
    r"\btokio\b|\bsqlx\b|\baxum\b|\breqwest\b|Instant::now\(|SystemTime::now\(|Utc::now\(|"
    r"thread_rng\(|rand::rng\(|rand::random|std::fs\b|std::process\b|File::open|"
    r"std::net::(UdpSocket|TcpStream|TcpListener)|std::env::var"
)


def strip_test_modules(text):
    """The text with every `#[cfg(test)] mod name { … }` blanked (lines kept for numbering)."""
    out = text
    for m in reversed(list(re.finditer(r"#\[cfg\(test\)\]\s*mod \w+\s*\{", text))):
        depth, i = 0, m.end() - 1
        while i < len(text):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    break
            i += 1
        block = out[m.start():i + 1]
        out = out[:m.start()] + re.sub(r"[^\n]", " ", block) + out[i + 1:]
    return out


bad = []
for root, _, files in os.walk(src):
    for f in sorted(files):
        if not f.endswith(".rs"):
            continue
        path = os.path.join(root, f)
        rel = os.path.relpath(path, src).replace(os.sep, "/")
        code = strip_test_modules(open(path, encoding="utf-8").read())
        for n, line in enumerate(code.split("\n"), 1):
            stripped = line.strip()
            if stripped.startswith("//"):
                continue
            m = FORBIDDEN.search(line)
            if m:
                bad.append(f"{src}/{rel}:{n}: {m.group(0)} in a sans-IO core: {stripped}")
for b in bad:
    print(b)
sys.exit(1 if bad else 0)
