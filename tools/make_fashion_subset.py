#!/usr/bin/env python3
"""Write the embedded Fashion-MNIST subset under data/fashion-mnist/ from the full set.

Takes the first 10,000 training and the first 2,000 test images (the original files are already
shuffled, so every class is present in near-equal numbers) and writes them in the original gzip
IDX format. Source: Debian's `dataset-fashion-mnist` (/usr/share/datasets/fashion-mnist).
Usage: python3 tools/make_fashion_subset.py [SRC_DIR] [DST_DIR]
"""
import gzip
import os
import struct
import sys

SRC = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"
DST = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "..", "data", "fashion-mnist")
KEEP = {"train": 10_000, "t10k": 2_000}


def subset(kind, prefix, count):
    src = os.path.join(SRC, f"{prefix}-{kind}-idx{3 if kind == 'images' else 1}-ubyte.gz")
    with gzip.open(src, "rb") as f:
        data = f.read()
    magic, n = struct.unpack(">II", data[:8])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * (ndim - 1), data[8 : 4 + 4 * ndim]) if ndim > 1 else ()
    item = 1
    for d in dims:
        item *= d
    body_start = 4 + 4 * ndim
    out = struct.pack(">II", magic, count) + data[8:body_start] + data[body_start : body_start + count * item]
    dst = os.path.join(DST, os.path.basename(src))
    # mtime=0: the same input gives byte-identical files
    with open(dst, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as f:
        f.write(out)
    print(f"{dst}: {count} of {n}")


os.makedirs(DST, exist_ok=True)
for prefix, count in KEEP.items():
    for kind in ("images", "labels"):
        subset(kind, prefix, count)
