#!/usr/bin/env python3
"""The size budget of src/ (issue 36): no file over MAX_FILE_LINES lines, no function over
MAX_FN_LINES lines, as tinygrad keeps a line budget, so that a newcomer reads the code a screen
at a time and a growing function is split while it is still easy.

Code that was over the budget when the budget came is listed in tools/size_budget_debt.txt
with its size then: it may shrink or leave the list, never grow, and nothing new may join it.

Usage:
  tools/size_budget.py           print every file and function over the budget
  tools/size_budget.py --check   exit 1 on a new offender or a listed one that grew (CI)
  tools/size_budget.py --write   rewrite the debt list from what is over the budget now

A function's length is counted from its `fn` line to the line of its closing brace, by brace
depth (strings and comments holding braces are rare in this code; the count is a budget, not a
parser).
"""
import os
import re
import sys

MAX_FILE_LINES = 700
MAX_FN_LINES = 120
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
DEBT = os.path.join(ROOT, "tools", "size_budget_debt.txt")
FN = re.compile(r"^\s*(?:pub(?:\([a-z:]+\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?fn\s+(\w+)")


def strip_line(line):
    """The line without its // comment and string literals, for brace counting."""
    line = re.sub(r'"(?:\\.|[^"\\])*"', '""', line)
    line = re.sub(r"'(?:\\.|[^'\\])'", "''", line)
    return line.split("//", 1)[0]


def functions(lines):
    """(name, first line number, length) of every fn with a body."""
    out = []
    for i, line in enumerate(lines):
        m = FN.match(line)
        if not m:
            continue
        depth, started = 0, False
        for j in range(i, len(lines)):
            code = strip_line(lines[j])
            if not started and ";" in code and "{" not in code:
                break  # a declaration without a body (trait item)
            depth += code.count("{") - code.count("}")
            started = started or "{" in code
            if started and depth <= 0:
                out.append((m.group(1), i + 1, j - i + 1))
                break
    return out


def offenders():
    """{key: size} of every file and function over the budget; keys 'file PATH' and
    'fn PATH::NAME' (the first fn of that name in the file)."""
    found = {}
    for root, _, files in os.walk(os.path.join(ROOT, "src")):
        for f in sorted(files):
            if not f.endswith(".rs"):
                continue
            path = os.path.join(root, f)
            rel = os.path.relpath(path, ROOT)
            text = open(path, encoding="utf-8").read()
            lines = text.split("\n")
            count = text.count("\n") + (0 if text.endswith("\n") else 1)
            if count > MAX_FILE_LINES:
                found[f"file {rel}"] = count
            for name, _, n in functions(lines):
                key = f"fn {rel}::{name}"
                if n > MAX_FN_LINES and n > found.get(key, 0):
                    found[key] = n
    return found


def read_debt():
    debt = {}
    if os.path.exists(DEBT):
        for line in open(DEBT, encoding="utf-8"):
            line = line.strip()
            if line and not line.startswith("#"):
                key, size = line.rsplit(" ", 1)
                debt[key] = int(size)
    return debt


def main():
    now = offenders()
    if "--write" in sys.argv:
        with open(DEBT, "w", encoding="utf-8") as f:
            f.write(f"# over the budget ({MAX_FILE_LINES} lines a file, {MAX_FN_LINES} a function) when it\n")
            f.write("# came, with the size then: may shrink or leave, never grow (tools/size_budget.py)\n")
            for key in sorted(now):
                f.write(f"{key} {now[key]}\n")
        print(f"size_budget: {len(now)} entries written to {os.path.relpath(DEBT, ROOT)}")
        return 0
    debt = read_debt()
    for key in sorted(now):
        listed = f" (listed at {debt[key]})" if key in debt else ""
        print(f"{key}: {now[key]} lines{listed}")
    if "--check" not in sys.argv:
        return 0
    bad = [f"{k}: {n} lines, new over the budget" for k, n in now.items() if k not in debt]
    bad += [f"{k}: grew from {debt[k]} to {n} lines" for k, n in now.items() if k in debt and n > debt[k]]
    for b in sorted(bad):
        print(f"size_budget: {b}", file=sys.stderr)
    if bad:
        print(f"size_budget: split it (files <= {MAX_FILE_LINES} lines, functions <= {MAX_FN_LINES})", file=sys.stderr)
        return 1
    print(f"size_budget: ok ({len(now)} listed offenders, none grew, none new)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
