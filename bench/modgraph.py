#!/usr/bin/env python3
"""Prints the module dependency graph of src/ (edges from `crate::` paths,
tests excluded) and fails if it has a cycle, or if a function outside the
wording tables is longer than 80 lines.

    python3 bench/modgraph.py
"""
import glob
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
# Pure tables of wording, exempt from the length rule.
WORDING = {"findings"}


def module_of(path):
    rel = os.path.relpath(path, ROOT)
    parts = rel[:-3].split(os.sep)
    return parts[0] if parts[0] not in ("lib", "main") else None


def strip_tests(text):
    i = text.find("#[cfg(test)]\nmod tests")
    return text if i < 0 else text[:i]


def main():
    edges = {}
    long_fns = []
    for path in sorted(glob.glob(os.path.join(ROOT, "**", "*.rs"), recursive=True)):
        mod = module_of(path)
        if mod is None:
            continue
        text = strip_tests(open(path).read())
        deps = edges.setdefault(mod, set())
        for m in re.finditer(r"crate::(\w+)", text):
            if m.group(1) != mod:
                deps.add(m.group(1))
        for m in re.finditer(r"^use crate::\{([^}]*)\}", text, re.M):
            for name in re.findall(r"(?:^|,)\s*(\w+)", m.group(1)):
                if name != mod:
                    deps.add(name)
        lines = text.split("\n")
        for i, line in enumerate(lines):
            f = re.match(r"^(\s*)(pub(\([a-z]+\))? )?(async )?fn (\w+)", line)
            if not f or mod in WORDING:
                continue
            indent = f.group(1)
            for j in range(i, len(lines)):
                if lines[j] == indent + "}":
                    if j - i + 1 > 80:
                        long_fns.append(f"{os.path.relpath(path, ROOT)}:{i + 1} {f.group(5)} {j - i + 1} lines")
                    break
    for mod in sorted(edges):
        print(f"{mod} -> {', '.join(sorted(edges[mod])) or '(nothing)'}")
    # Cycle search (DFS).
    state, stack, cycles = {}, [], []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in sorted(edges.get(m, ())):
            if state.get(d) == 1:
                cycles.append(stack[stack.index(d):] + [d])
            elif d in edges and not state.get(d):
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if not state.get(m):
            visit(m)
    ok = True
    for c in cycles:
        print("cycle: " + " -> ".join(c))
        ok = False
    for f in long_fns:
        print("long function: " + f)
        ok = False
    print("no cycles, no long functions" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
