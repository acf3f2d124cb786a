#!/usr/bin/python3
"""Time the shape suite of shared/bench-suite.md with PyTorch, for comparison with `convoy bench`.

Runs on the CPU by default (2 threads, as on the team's lavapipe machines), or on CUDA with
--device cuda (TF32 off unless --tf32, so f32 means f32; --amp runs under autocast to f16, with a
gradient scaler for training). Prints JSON in the shape of `convoy bench conv --json` (with
--models, of `convoy bench models --json`: the suite's models at batch 8; with --large, ResNet-50
and MobileNetV2 inference and training steps at --batch): median ms over --iters runs after
warm-up. Model names are convoy's, so the table pairs them by name and batch.

    /usr/bin/python3 tools/bench_pytorch.py [--device cpu|cuda] [--threads 2] [--iters 10]
        [--models | --large --batch 32] [--tf32 | --amp]
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


def autocast(device, amp):
    """f16 autocast on CUDA with --amp; a no-op context otherwise."""
    return torch.autocast(device_type="cuda", dtype=torch.float16, enabled=amp and device == "cuda")


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


def conv_suite(device, warmup, iters, amp):
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
        if amp and device == "cuda":
            x, w, dy = x.half(), w.half(), dy.half()
        with torch.no_grad():
            for pass_, fn, f in [("forward", fwd, flops), ("backward", both, 2 * flops),
                                 ("bwd_data", bdata, flops), ("bwd_weight", bweight, flops)]:
                ms = timed(fn, device, warmup, iters)
                out.append({"name": name, "pass": pass_, "batch": BATCH, "ms": ms,
                            "gflops": f / (ms * 1e-3) / 1e9})
    return out


def inference(name, m, x, device, warmup, iters, amp):
    m = m.to(device).eval()
    with torch.no_grad(), autocast(device, amp):
        ms = timed(lambda: m(x), device, warmup, iters)
    return {"name": name, "batch": x.shape[0], "size": x.shape[2], "ms": ms,
            "images_per_sec": x.shape[0] / (ms * 1e-3)}


def training_step(name, m, x, device, warmup, iters, amp):
    """One SGD step with momentum (convoy's training step), under a gradient scaler with --amp."""
    m = m.to(device).train()
    labels = torch.randint(0, 1000, (x.shape[0],), device=device)
    opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
    # torch.cuda.amp's scaler: the one spelling that both Debian's PyTorch 1.13 and 2.x have
    scaler = torch.cuda.amp.GradScaler() if amp and device == "cuda" else None

    def step():
        opt.zero_grad(set_to_none=True)
        with autocast(device, amp):
            loss = torch.nn.functional.cross_entropy(m(x), labels)
        if scaler is None:
            loss.backward()
            opt.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()

    ms = timed(step, device, warmup, iters)
    return {"name": name, "batch": x.shape[0], "size": x.shape[2], "ms": ms,
            "images_per_sec": x.shape[0] / (ms * 1e-3)}


def models(device, warmup, iters, amp):
    """The model suite of shared/bench-suite.md at batch 8, 224x224."""
    import torchvision
    x = torch.randn(BATCH, 3, 224, 224, device=device)
    out = [inference(name, ctor(), x, device, warmup, iters, amp)
           for name, ctor in [("resnet18_infer", torchvision.models.resnet18),
                              ("resnet50_infer", torchvision.models.resnet50),
                              ("mobilenetv2_infer", torchvision.models.mobilenet_v2)]]
    out.append(training_step("resnet18_train", torchvision.models.resnet18(), x, device, warmup, iters, amp))
    return out


def large(device, warmup, iters, amp, batch):
    """ResNet-50 and MobileNetV2, inference and a training step, at `batch` (convoy's names for
    `bench models --model resnet50|mobilenet_v2`)."""
    import torchvision
    x = torch.randn(batch, 3, 224, 224, device=device)
    out = []
    for model, ctor in [("resnet50", torchvision.models.resnet50), ("mobilenet_v2", torchvision.models.mobilenet_v2)]:
        out.append(inference(f"{model}_infer", ctor(), x, device, warmup, iters, amp))
        out.append(training_step(f"{model}_train", ctor(), x, device, warmup, iters, amp))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--models", action="store_true", help="the model suite at batch 8")
    ap.add_argument("--large", action="store_true", help="ResNet-50 and MobileNetV2 at --batch")
    ap.add_argument("--batch", type=int, default=32, help="batch of --large")
    ap.add_argument("--tf32", action="store_true", help="CUDA: let cuDNN and cuBLAS use TF32")
    ap.add_argument("--amp", action="store_true", help="CUDA: autocast to f16")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = a.tf32
        torch.backends.cudnn.allow_tf32 = a.tf32
        torch.backends.cudnn.benchmark = True
        dev_name = torch.cuda.get_device_name()
    else:
        dev_name = f"PyTorch {torch.__version__} CPU, {a.threads} threads"
    if a.large:
        results = large(a.device, a.warmup, a.iters, a.amp, a.batch)
    elif a.models:
        results = models(a.device, a.warmup, a.iters, a.amp)
    else:
        results = conv_suite(a.device, a.warmup, a.iters, a.amp)
    print(json.dumps({"device": dev_name, "results": results}))


if __name__ == "__main__":
    main()
