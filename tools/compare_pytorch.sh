#!/bin/sh
# Conv shape suite: convoy (this machine's GPU adapter) beside PyTorch on the same machine, in
# one run, as a markdown table. PyTorch runs on the CPU with 2 threads unless TORCH_DEVICE=cuda.
#   tools/compare_pytorch.sh [--iters N]
set -e
cd "$(dirname "$0")/.."
ITERS=${1:-10}
cargo build --release -q
./target/release/convoy bench conv --json --iters "$ITERS" > target/convoy_conv.json
/usr/bin/python3 tools/bench_pytorch.py --device "${TORCH_DEVICE:-cpu}" --iters "$ITERS" > target/torch_conv.json
/usr/bin/python3 - <<'PY'
import json
c = json.load(open("target/convoy_conv.json"))
t = json.load(open("target/torch_conv.json"))
tt = {(r["name"], r["pass"]): r for r in t["results"]}
print(f"convoy: {c['device']} (GEMM ceiling {c['gemm_gflops']:.2f} GFLOP/s); PyTorch: {t['device']}\n")
print("| shape | pass | convoy ms | GFLOP/s | % of GEMM | PyTorch ms | GFLOP/s | convoy / PyTorch time |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for r in c["results"]:
    head = f"| {r['name']} | {r['pass']} | {r['ms']:.1f} | {r['gflops']:.2f} | {100*r['fraction_of_gemm']:.0f}% "
    p = tt.get((r["name"], r["pass"]))
    if p is None:
        # a pass PyTorch has no counterpart for (fwd_stats: the conv writing batch-norm statistics)
        print(head + "| - | - | - |")
        continue
    print(head + f"| {p['ms']:.1f} | {p['gflops']:.1f} | {r['ms']/p['ms']:.1f}x |")
PY
