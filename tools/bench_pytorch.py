#!/usr/bin/python3
"""Time the shape suite of shared/bench-suite.md with PyTorch, for comparison with `convoy bench`.

Runs on the CPU by default (2 threads, as on the team's lavapipe machines), or on CUDA with
--device cuda (TF32 off, so f32 means f32). Prints JSON in the shape of `convoy bench conv --json`
(and, with --models, of `convoy bench models --json`): median ms over --iters runs after warm-up.

    /usr/bin/python3 tools/bench_pytorch.py [--device cpu|cuda] [--threads 2] [--iters 10] [--models]
"""
import argparse
import json
import statistics
import time

import torch

# name, cin, cout, k, stride, pad, groups, hw (shared/bench-suite.md; batch 8)
CONV_SUITE = [
    ("r18_stem", 3, 64, 7, 2, 3, 1, 224),
    ("r18_l1", 64, 64, 3, 1, 1, 1, 56),
    ("r18_down", 64, 128, 3, 2, 1, 1, 56),
    ("r18_l3", 256, 256, 3, 1, 1, 1, 14),
    ("r18_l4", 512, 512, 3, 1, 1, 1, 7),
    ("r50_reduce", 256, 64, 1, 1, 0, 1, 56),
    ("r50_expand", 64, 256, 1, 1, 0, 1, 56),
    ("mbv2_dw", 144, 144, 3, 1, 1, 144, 56),
    ("mbv2_dw_s2", 144, 144, 3, 2, 1, 144, 56),
    ("resnext_g32", 128, 128, 3, 1, 1, 32, 28),
]
BATCH = 8


def timed(fn, device, warmup, iters):
    for _ in range(warmup):
        fn()
    if device == "cuda":
        torch.cuda.synchronize()
    ms = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        ms.append((time.perf_counter() - t) * 1e3)
    return statistics.median(ms)


def conv_suite(device, warmup, iters):
    out = []
    for name, cin, cout, k, s, p, g, hw in CONV_SUITE:
        torch.manual_seed(0)
        x = torch.randn(BATCH, cin, hw, hw, device=device)
        w = torch.randn(cout, cin // g, k, k, device=device) * 0.1
        y = torch.nn.functional.conv2d(x, w, None, s, p, 1, g)
        dy = torch.randn_like(y)
        oh = y.shape[2]
        flops = 2.0 * BATCH * cout * oh * oh * (cin // g) * k * k
        fwd = lambda: torch.nn.functional.conv2d(x, w, None, s, p, 1, g)
        bdata = lambda: torch.ops.aten.convolution_backward(
            dy, x, w, None, [s, s], [p, p], [1, 1], False, [0, 0], g, [True, False, False])
        bweight = lambda: torch.ops.aten.convolution_backward(
            dy, x, w, None, [s, s], [p, p], [1, 1], False, [0, 0], g, [False, True, False])
        both = lambda: torch.ops.aten.convolution_backward(
            dy, x, w, None, [s, s], [p, p], [1, 1], False, [0, 0], g, [True, True, False])
        with torch.no_grad():
            for pass_, fn, f in [("forward", fwd, flops), ("backward", both, 2 * flops),
                                 ("bwd_data", bdata, flops), ("bwd_weight", bweight, flops)]:
                ms = timed(fn, device, warmup, iters)
                out.append({"name": name, "pass": pass_, "batch": BATCH, "ms": ms,
                            "gflops": f / (ms * 1e-3) / 1e9})
    return out


def models(device, warmup, iters):
    import torchvision
    out = []
    x = torch.randn(BATCH, 3, 224, 224, device=device)
    labels = torch.randint(0, 1000, (BATCH,), device=device)
    for name, ctor in [("resnet18_infer", torchvision.models.resnet18),
                       ("resnet50_infer", torchvision.models.resnet50),
                       ("mobilenetv2_infer", torchvision.models.mobilenet_v2)]:
        m = ctor().to(device).eval()
        with torch.no_grad():
            ms = timed(lambda: m(x), device, warmup, iters)
        out.append({"name": name, "ms": ms, "images_per_sec": BATCH / (ms * 1e-3)})
    m = torchvision.models.resnet18().to(device).train()
    opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)

    def step():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(m(x), labels).backward()
        opt.step()

    ms = timed(step, device, warmup, iters)
    out.append({"name": "resnet18_train", "ms": ms, "images_per_sec": BATCH / (ms * 1e-3)})
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--models", action="store_true")
    ap.add_argument("--tf32", action="store_true", help="CUDA: let cuDNN and cuBLAS use TF32")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = a.tf32
        torch.backends.cudnn.allow_tf32 = a.tf32
        torch.backends.cudnn.benchmark = True
        dev_name = torch.cuda.get_device_name()
    else:
        dev_name = f"PyTorch {torch.__version__} CPU, {a.threads} threads"
    results = models(a.device, a.warmup, a.iters) if a.models else conv_suite(a.device, a.warmup, a.iters)
    print(json.dumps({"device": dev_name, "results": results}))


if __name__ == "__main__":
    main()
