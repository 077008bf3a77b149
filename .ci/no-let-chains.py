#!/usr/bin/env python3
"""Fails when the given Rust sources use let chains (`if let ... && ...`, `if x && let ...`),
which need Rust 1.88: the libraries declare rust-version 1.85, and clippy's incompatible_msrv
lint checks library APIs, not syntax. Usage: no-let-chains.py DIR..."""
import pathlib
import re
import sys


def conditions(text):
    """Yields (line, condition) for every `if`/`while` condition (up to its `{`)."""
    code = re.sub(r'//[^\n]*', lambda m: ' ' * len(m.group()), text)
    code = re.sub(r'"(\\.|[^"\\])*"', lambda m: re.sub(r'[^\n]', ' ', m.group()), code)
    for m in re.finditer(r'\b(if|while)\b', code):
        depth, i = 0, m.end()
        while i < len(code):
            c = code[i]
            if c in '([':
                depth += 1
            elif c in ')]':
                depth -= 1
            elif c == '{' and depth == 0:
                break
            elif c == ';' and depth == 0:
                break
            elif code.startswith('=>', i) and depth == 0:
                break
            i += 1
        yield code.count('\n', 0, m.start()) + 1, code[m.end():i]


def main():
    bad = []
    for root in sys.argv[1:]:
        for path in sorted(pathlib.Path(root).rglob('*.rs')):
            for line, cond in conditions(path.read_text()):
                top = re.sub(r'\([^()]*\)', '()', cond)
                if re.search(r'\blet\b', top) and '&&' in top:
                    bad.append(f'{path}:{line}: let chain (Rust 1.88): {" ".join(cond.split())[:90]}')
    for b in bad:
        print(b)
    if bad:
        print(f'{len(bad)} let chains in code that must build with Rust 1.85', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
