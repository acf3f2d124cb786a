#!/usr/bin/env python3
"""Import circles and upward imports in src/, against the intended layer order.

Usage: tools/import_layers.py [--src DIR] [--verbose] [--check MAX_CIRCLES MAX_UPWARD]

The layer order, bottom to top (a module may import from its own layer and the layers below):

  error, rng     the error enum and the seeded generator: no crate imports at all.
  shape          sizes and attributes: `Shape`, `DType`, conv and pool arguments and checked
                 geometry, the activation kinds, epilogues and other attributes the graph's ops
                 carry. Plain data and the output-size formulas, with no GPU, so that graph, ops
                 and kernels all read them from below and none imports another for a struct.
  dist           the collectives between data-parallel ranks, over host memory (and MPI). It needs
                 nothing but errors, and the executor's step calls it, so it sits low.
  device         wgpu: the adapter and `GpuInfo`, the kernel policy, pipelines, dispatches,
                 readback, timers, the tuner's cache. Knows sizes, not tensors.
  tensor         a GPU buffer with a shape and dtype; upload and download. No kernels: the cast,
                 a kernel launch, is defined in ops (`Tensor::to_dtype` is still a method).
  store          `ParamStore`, a model's resident tensors by name: what models initialise, files
                 load, plans run on and checkpoints save, so it sits below all of them.
  io             files: safetensors, npy, images, host tensors and the chunking of parameters
                 larger than one binding. Reads into a store; needs no kernels, graph or model.
  kernels        launchers: a variant's constants, pipeline and grid, on sizes and buffers.
  graph          the static graph and its `Op` enum, with attributes from shape (never ops).
  ops            one file per op family: shape rule, backward rule, kernel choice and lowering.
  passes         graph rewrites: autodiff, fusion, precision, memory, the optimizer updates (with
                 the optimizer's description, so the executor does not import train).
  exec           Graph -> Plan, and running it.
  nn, train, data, diag, onnx
                 what a user builds with: models, the learner, loaders, diagnostics, the ONNX
                 importer. Peers: they may import one another, never in a circle.
  bench, web     whole programs inside the library (the benchmark harness, the browser entry).
  lib            the crate root: `pub mod` and the re-exports users see. Files under src/bin are a
                 separate crate that imports the library by its public paths, so they are not read.

What counts as an import: `use crate::..`, `use super::..`, `use self::..` (and the paths they
name, trees expanded), inline `crate::a::b` / `super::x` paths, and `alias::x` paths through a
module brought in by `use` (by name, or by a glob over its parent). Comments and string literals
are ignored. A path is resolved to the deepest file it names; a name re-exported by a module
file (`mod.rs`, `lib.rs`) from inside its own subtree is followed to the file that defines it (a
facade is not a dependency), but a re-export from another top-level module is not followed:
`crate::ops::Conv2dArgs` counts as an import of ops even where ops only re-exports it, so code
inside the crate names the floor it reads from. A module file's `pub use` of its own descendants
is not itself an import.

Counted:
  circles  strongly connected components of the file graph, each one circle, whether it crosses
           modules (ops/pool.rs <-> kernels/pool.rs) or stays inside one (device's `impl Gpu`
           split over gpu.rs and pipeline.rs); plus those of the graph between top-level modules
           of one layer (peers importing each other). Modules of different layers tied in a
           circle always hold an upward import, which (b) lists; they are shown, not counted.
  upward   (file, top-level module) pairs where the file's layer is below the module's.

--check MAX_CIRCLES MAX_UPWARD exits 1 when either count is over.
"""

import argparse
import os
import re
import sys
from collections import defaultdict

LAYERS = [
    ["error", "rng"],
    ["shape"],
    ["dist"],
    ["device"],
    ["tensor"],
    ["store"],
    ["io"],
    ["kernels"],
    ["graph"],
    ["ops"],
    ["passes"],
    ["exec"],
    ["nn", "train", "data", "diag", "onnx"],
    ["bench", "web"],
    ["lib"],
]
LAYER_OF = {m: i for i, ms in enumerate(LAYERS) for m in ms}


def strip_code(text):
    """Blank out comments and string/char literals, keeping offsets and newlines."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'r(#*)"', text[i:])
            end = text.find('"' + m.group(1), i + len(m.group(0)))
            end = n if end < 0 else end + 1 + len(m.group(1))
            out.append(re.sub(r"[^\n]", " ", text[i:end]))
            i = end
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(re.sub(r"[^\n]", " ", text[i:j + 1]))
            i = j + 1
        elif c == "'":
            m = re.match(r"'(\\.[^']*|[^\\'])'", text[i:i + 12])
            if m:
                out.append(" " * len(m.group(0)))
                i += len(m.group(0))
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def parse_use_tree(s):
    """'a::{b, c::d as e, f::*}' -> [(['a','b'], 'b'), (['a','c','d'], 'e'), (['a','f','*'], None)]."""
    s = re.sub(r"\s+", "", s)
    pos = 0

    def tree(prefix):
        nonlocal pos
        items = []
        path = list(prefix)
        while pos < len(s):
            if s[pos] == "{":
                pos += 1
                while True:
                    items += tree(path)
                    if s[pos] == ",":
                        pos += 1
                        if s[pos] == "}":
                            pos += 1
                            return items
                        continue
                    if s[pos] == "}":
                        pos += 1
                        return items
            m = re.match(r"(\w+|\*)(::)?", s[pos:])
            if not m:
                break
            seg = m.group(1)
            pos += len(m.group(0))
            if m.group(2):
                path.append(seg)
                continue
            alias = None
            am = re.match(r"as(\w+)", s[pos:])
            if am:
                alias = am.group(1)
                pos += len(am.group(0))
            if seg == "self":
                items.append((path, alias or (path[-1] if path else None)))
            elif seg == "*":
                items.append((path + ["*"], None))
            else:
                items.append((path + [seg], alias or seg))
            return items
        return items

    return tree([])


class File:
    def __init__(self, path, modpath):
        self.path = path
        self.modpath = modpath  # list of segments from the crate root
        self.is_mod_file = path.endswith("mod.rs") or path.endswith("lib.rs")
        raw = open(path, encoding="utf-8").read()
        self.code = strip_code(raw)
        self.inline_mods = []  # (start, end, name)
        for m in re.finditer(r"\bmod\s+(\w+)\s*\{", self.code):
            depth, j = 1, m.end()
            while j < len(self.code) and depth:
                depth += {"{": 1, "}": -1}.get(self.code[j], 0)
                j += 1
            self.inline_mods.append((m.start(), j, m.group(1)))
        self.uses = []  # (offset, public, segments, alias)
        for m in re.finditer(r"\b(pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", self.code):
            for segs, alias in parse_use_tree(m.group(2)):
                self.uses.append((m.start(), bool(m.group(1)), segs, alias))
        self.use_spans = [(m.start(), m.end()) for m in re.finditer(r"\buse\s+[^;]+;", self.code)]
        self.defined = set(re.findall(
            r"\b(?:fn|struct|enum|const|static|type|trait|mod|union)\s+(\w+)", self.code))
        self.defined |= set(re.findall(r"macro_rules!\s*(\w+)", self.code))

    def base(self, offset):
        """Module path at an offset (inline `mod x { }` blocks extend the file's)."""
        extra = [name for (a, b, name) in self.inline_mods if a <= offset < b]
        return self.modpath + extra

    def absolute(self, segs, offset):
        """Segments of a path relative to the file at `offset` -> absolute, or None if external."""
        base = self.base(offset)
        if not segs:
            return None
        if segs[0] == "crate":
            return segs[1:]
        if segs[0] == "self":
            return base + segs[1:]
        if segs[0] == "super":
            cur = list(base)
            i = 0
            while i < len(segs) and segs[i] == "super":
                cur = cur[:-1]
                i += 1
            return cur + segs[i:]
        return None


def load(src):
    files = {}
    for root, dirs, names in os.walk(src):
        rel = os.path.relpath(root, src)
        if rel.split(os.sep)[0] == "bin":
            continue
        for name in names:
            if not name.endswith(".rs"):
                continue
            p = os.path.join(root, name)
            parts = [] if rel == "." else rel.split(os.sep)
            if name == "lib.rs" and not parts:
                modpath = []
            elif name == "mod.rs":
                modpath = parts
            else:
                modpath = parts + [name[:-3]]
            files[tuple(modpath)] = File(p, modpath)
    return files


def top(modpath):
    return modpath[0] if modpath else "lib"


class Resolver:
    def __init__(self, files):
        self.files = files

    def file_of(self, abs_segs):
        """Longest prefix naming a file -> (File, rest)."""
        for k in range(len(abs_segs), -1, -1):
            f = self.files.get(tuple(abs_segs[:k]))
            if f is not None:
                return f, abs_segs[k:]
        return None, abs_segs

    def resolve(self, abs_segs, depth=0):
        f, rest = self.file_of(abs_segs)
        if f is None or not rest or rest[0] == "*" or depth > 8 or not f.is_mod_file:
            return f
        name = rest[0]
        if name in f.defined:
            return f
        for off, public, segs, alias in f.uses:
            if not public:
                continue
            target = f.absolute(segs, off) if segs[0] in ("crate", "self", "super") else f.modpath + segs
            if target is None or target[:len(f.modpath)] != f.modpath:
                continue  # re-exported from another subtree: the import stays here
            if alias == name:
                return self.resolve(target + rest[1:], depth + 1)
            if segs[-1] == "*":
                g, grest = self.file_of(target[:-1])
                if g is not None and not grest and name in g.defined:
                    return self.resolve(target[:-1] + rest, depth + 1)
        return f


def edges(files):
    """(source file, target file, line) for every import."""
    res = Resolver(files)
    out = []
    for f in files.values():
        aliases = {}

        def add(abs_segs, off):
            g = res.resolve(abs_segs)
            if g is not None and g is not f:
                out.append((f, g, f.code.count("\n", 0, off) + 1))

        for off, public, segs, alias in f.uses:
            if segs[0] in ("crate", "self", "super"):
                a = f.absolute(segs, off)
            elif f.is_mod_file and (tuple(f.modpath + segs[:1]) in files or segs[0] in f.defined):
                a = f.modpath + segs  # `use child::x` inside a module file
            else:
                continue
            if a is None:
                continue
            if public and f.is_mod_file and a[:len(f.modpath)] == f.modpath:
                continue  # a facade re-exporting its own subtree
            g, rest = res.file_of(a)
            if alias and g is not None and not rest:
                aliases[alias] = a
            if a[-1] == "*" and g is not None and rest == ["*"]:
                # a glob brings in the module's own submodules by name too
                for name in re.findall(r"\bmod\s+(\w+)\s*;", g.code):
                    if tuple(g.modpath + [name]) in files:
                        aliases.setdefault(name, g.modpath + [name])
            add(a if a[-1] != "*" else a[:-1], off)
        in_use = lambda o: any(a <= o < b for a, b in f.use_spans)
        for m in re.finditer(r"(?<![\w:])((?:crate|super|self)(?:::\w+)+)", f.code):
            if in_use(m.start()):
                continue
            segs = m.group(1).split("::")
            a = f.absolute(segs, m.start())
            if a is not None:
                add(a, m.start())
        if aliases:
            pat = r"(?<![\w:])(" + "|".join(map(re.escape, aliases)) + r")((?:::\w+)+)"
            for m in re.finditer(pat, f.code):
                if in_use(m.start()):
                    continue
                add(aliases[m.group(1)] + m.group(2).split("::")[1:], m.start())
    return out


def sccs(nodes, adj):
    index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in adj.get(v, ()):
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
                comps.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return comps


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--src", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
    ap.add_argument("--check", nargs=2, type=int, metavar=("MAX_CIRCLES", "MAX_UPWARD"))
    ap.add_argument("--verbose", action="store_true", help="also list the imports in each circle, and the edges between modules")
    args = ap.parse_args()
    files = load(os.path.normpath(args.src))
    rel = lambda f: os.path.relpath(f.path, os.path.normpath(os.path.join(args.src, "..")))
    es = edges(files)
    files_by_path = {f.path: f for f in files.values()}

    unknown = sorted({top(f.modpath) for f in files.values()} - set(LAYER_OF))
    if unknown:
        print(f"modules missing from LAYERS: {', '.join(unknown)}")
        return 2

    # Circles between files, anywhere.
    file_adj = defaultdict(set)
    for f, g, line in es:
        file_adj[f.path].add(g.path)
    circles = []
    for comp in sccs({f.path for f in files.values()}, file_adj):
        members = set(comp)
        why = [f"{rel(f)}:{line} -> {rel(g)}" for f, g, line in es if f.path in members and g.path in members]
        circles.append(("files " + " <-> ".join(rel(files_by_path[p]) for p in comp), why))
    # Circles between top-level modules of one layer; modules tied through upward imports.
    mod_adj, peer_adj = defaultdict(set), defaultdict(set)
    for f, g, line in es:
        a, b = top(f.modpath), top(g.modpath)
        if a != b:
            mod_adj[a].add(b)
            if LAYER_OF[a] == LAYER_OF[b]:
                peer_adj[a].add(b)
    for comp in sccs(set(LAYER_OF), peer_adj):
        circles.append(("modules " + " <-> ".join(comp), []))
    tied = sccs(set(LAYER_OF), mod_adj)

    upward = defaultdict(list)
    for f, g, line in es:
        a, b = top(f.modpath), top(g.modpath)
        if LAYER_OF[a] < LAYER_OF[b]:
            upward[(rel(f), b)].append(f"{rel(f)}:{line} -> {rel(g)}")

    print(f"layers (bottom to top): {' | '.join(', '.join(l) for l in LAYERS)}")
    n_mod = sum(len(v) for v in mod_adj.values())
    print(f"{len(files)} files, {len(es)} imports, {n_mod} edges between top-level modules")
    print(f"\n(a) import circles: {len(circles)}")
    for name, why in circles:
        print(f"  {name}")
        if args.verbose:
            for w in sorted(set(why)):
                print(f"      {w}")
    for comp in tied:
        print(f"  (not counted: modules tied by upward imports: {' <-> '.join(comp)})")
    print(f"\n(b) upward imports: {len(upward)}")
    for (src_file, mod), why in sorted(upward.items()):
        print(f"  {src_file} -> {mod} (layer {LAYER_OF[top_of(src_file)]} -> {LAYER_OF[mod]})")
        for w in sorted(set(why)):
            print(f"      {w}")
    if args.verbose:
        print("\nedges between top-level modules:")
        for a in sorted(mod_adj):
            print(f"  {a} -> {', '.join(sorted(mod_adj[a]))}")
    if args.check:
        mc, mu = args.check
        bad = []
        if len(circles) > mc:
            bad.append(f"{len(circles)} circles > {mc}")
        if len(upward) > mu:
            bad.append(f"{len(upward)} upward imports > {mu}")
        if bad:
            print("\nimport_layers: " + "; ".join(bad))
            return 1
        print(f"\nimport_layers: ok ({len(circles)} <= {mc} circles, {len(upward)} <= {mu} upward)")
    return 0


def top_of(rel_path):
    parts = rel_path.split(os.sep)[1:]
    if parts == ["lib.rs"]:
        return "lib"
    return parts[0][:-3] if parts[0].endswith(".rs") else parts[0]


if __name__ == "__main__":
    sys.exit(main())
