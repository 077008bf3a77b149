#!/usr/bin/env python3
"""Fails when a dependency of the libraries declares a rust-version above theirs (1.85).
Reads `cargo metadata` (stdin) and `cargo tree --prefix none` lines (the file argument)."""
import json
import sys

MSRV = (1, 85)


def version(text):
    return tuple(int(x) for x in (text or "0").split(".")[:2])


def main():
    meta = json.load(sys.stdin)
    wanted = set()
    for line in open(sys.argv[1]):
        parts = line.split()
        if len(parts) >= 2:
            wanted.add((parts[0], parts[1].lstrip("v")))
    bad = [
        f"{p['name']} {p['version']} needs Rust {p['rust_version']}"
        for p in meta["packages"]
        if (p["name"], p["version"]) in wanted and version(p.get("rust_version")) > MSRV
    ]
    for b in bad:
        print(b)
    print(f"{len(wanted)} crates checked against Rust {MSRV[0]}.{MSRV[1]}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
