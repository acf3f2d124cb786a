#!/usr/bin/python3
"""The markdown table of a tools/gpu_bench.sh run: convoy's conv suite, GEMM ceiling and models
beside PyTorch's numbers from the same run (pytorch_conv_<mode>.json, pytorch_models_<mode>.json).

    /usr/bin/python3 tools/gpu_bench_table.py OUT
"""
import glob
import json
import os
import sys


def load(path):
    """The JSON objects in a file (one per line or one document); [] for an empty file."""
    if not os.path.exists(path):
        return []
    text = open(path).read().strip()
    if not text:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# fp32 peaks (TFLOP/s, dense, no tensor cores) of the GPUs a run may land on, by a part of the
# adapter's name; elsewhere the table ranks against the run's own GEMM ceiling
PEAKS = {"H200": 67.0, "H100": 67.0, "A100": 19.5, "RTX 4090": 82.6, "RTX 3090": 35.6}


def peak_gflops(device, gemm_gflops):
    for part, tflops in PEAKS.items():
        if part in device:
            return tflops * 1e3, f"the {part}'s fp32 peak, {tflops:g} TFLOP/s"
    return gemm_gflops, f"this run's GEMM ceiling {gemm_gflops:.1f} GFLOP/s"


def candidates(out):
    """Every tuner candidate of each pass (`bench conv --candidates`), per batch: the default,
    the fastest and how far apart, ranked by the fastest's share of the peak (slowest first:
    where a kernel is furthest from the hardware)."""
    for path in sorted(glob.glob(os.path.join(out, "convoy_conv_candidates_b*.json"))):
        docs = load(path)
        if not docs:
            continue
        c = docs[0]
        peak, against = peak_gflops(c["device"], c["gemm_gflops"])
        best, default = {}, {}
        for r in c["results"]:
            if r.get("ms") is None:
                continue
            key = (r["name"], r["pass"], r["batch"])
            if r.get("default"):
                default[key] = r
            if key not in best or r["ms"] < best[key]["ms"]:
                best[key] = r
        if not best:
            continue
        batch = next(iter(best))[2]
        print(f"## Conv candidates, batch {batch} ({c['device']}; % of {against}; timed by {c.get('clock', 'wall')})\n")
        print("| shape | pass | default tile | ms | fastest tile | ms | fastest / default | % of peak |")
        print("|---|---|---|---:|---|---:|---:|---:|")
        for key in sorted(best, key=lambda k: best[k]["gflops"] / peak):
            b, d = best[key], default.get(key, best[key])
            print(f"| {key[0]} | {key[1]} | {d.get('tile', '-')} | {d['ms']:.3f} | {b.get('tile', '-')} | {b['ms']:.3f} |"
                  f" {d['ms'] / b['ms']:.2f}x | {100 * b['gflops'] / peak:.1f}% |")
        print()


def main():
    out = sys.argv[1]
    info = open(os.path.join(out, "info.txt")).read().strip().splitlines()
    print("# convoy GPU benchmark\n")
    print("```\n" + "\n".join(info) + "\n```\n")
    gemm = load(os.path.join(out, "convoy_gemm.json"))
    if gemm:
        print("## GEMM (convoy's kernels)\n\n| kernel | size | ms | GFLOP/s |\n|---|---:|---:|---:|")
        for r in gemm[0]["results"]:
            print(f"| {r['kernel']} | {r['size']} | {r['ms']:.3f} | {r['gflops']:.1f} |")
        print()
    torch_conv = {}
    modes = []
    for path in sorted(glob.glob(os.path.join(out, "pytorch_conv_*.json"))):
        mode = os.path.basename(path)[len("pytorch_conv_"):-len(".json")]
        docs = load(path)
        if docs:
            modes.append(mode)
            for r in docs[0]["results"]:
                torch_conv[(r["name"], r["pass"], mode)] = r["ms"]
    conv = load(os.path.join(out, "convoy_conv.json"))
    if conv:
        c = conv[0]
        print(f"## Conv suite, batch 8 ({c['device']}; GEMM ceiling {c['gemm_gflops']:.1f} GFLOP/s)\n")
        head = "| shape | pass | convoy ms | GFLOP/s | of GEMM |" + "".join(f" PyTorch {m} ms |" for m in modes)
        print(head + "\n|---|---|---:|---:|---:|" + "---:|" * len(modes))
        for r in c["results"]:
            row = f"| {r['name']} | {r['pass']} | {r['ms']:.3f} | {r['gflops']:.1f} | {100 * r['fraction_of_gemm']:.0f}% |"
            for m in modes:
                t = torch_conv.get((r["name"], r["pass"], m))
                row += f" {t:.3f} |" if t is not None else " - |"
            print(row)
        print()
    candidates(out)
    torch_models = {}
    model_modes = []
    for path in sorted(glob.glob(os.path.join(out, "pytorch_models_*.json"))):
        mode = os.path.basename(path)[len("pytorch_models_"):-len(".json")]
        model_modes.append(mode)
        for doc in load(path):
            for r in doc["results"]:
                torch_models[(r["name"], r.get("batch", 8), mode)] = r["images_per_sec"]
    rows = []
    for name in ["convoy_models.json", "convoy_models_large.json", "convoy_models_fma.json"]:
        for doc in load(os.path.join(out, name)):
            got = doc if isinstance(doc, list) else doc.get("results", [doc])
            if name == "convoy_models_fma.json":
                # mixed precision with CONVOY_COOP_MATRIX=0: the tensor cores off
                got = [dict(r, storage=r.get("storage", "mixed") + ", no tensor cores") for r in got]
            rows += got
    if rows:
        # PyTorch's rows pair with convoy's by model name and batch; the last column is convoy's
        # speed over PyTorch's in plain f32 (TF32 off), the comparison the fp32 issue's target
        # names, or for convoy's mixed-precision rows over PyTorch AMP's (the mixed issue's)
        print("## Models (convoy with fusion on; images/s)\n")
        head = "| model | batch | size | convoy precision | convoy ms | convoy |"
        head += "".join(f" PyTorch {m} |" for m in model_modes)
        rule = "|---|---:|---:|---|---:|---:|" + "---:|" * len(model_modes) + "---:|"
        print(head + " convoy / PyTorch (fp32; AMP for mixed) |\n" + rule)
        for r in rows:
            key = (r.get("name"), r.get("batch"))
            storage = r.get("storage", "f32")
            row = f"| {key[0]} | {key[1]} | {r.get('size')} | {storage} | {r.get('ms', 0):.2f} | {r.get('images_per_sec', 0):.1f} |"
            for m in model_modes:
                v = torch_models.get(key + (m,))
                row += f" {v:.1f} |" if v is not None else " - |"
            ref = torch_models.get(key + ("amp" if storage.startswith("mixed") else "fp32",))
            row += f" {r.get('images_per_sec', 0) / ref:.2f}x |" if ref else " - |"
            print(row)
    failed = os.path.join(out, "failed.txt")
    if os.path.exists(failed):
        print("\n## Steps that failed or timed out\n\n```\n" + open(failed).read().strip() + "\n```")

if __name__ == "__main__":
    main()
