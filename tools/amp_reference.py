#!/usr/bin/env python3
"""The mixed-precision reference of tests/parity.rs: one SGD step of a parity case (the weights,
batch and labels tools/make_parity_fixtures.py generates for it) in PyTorch, three ways, and
convoy's step (`convoy train-step --precision mixed`, its --save file) measured against them.

  float64      PyTorch in float64: the reference
  float32      PyTorch in float32
  emulation    PyTorch in float32 with autocast's roundings emulated (Debian's PyTorch 1.13 has
               no f16 autocast on the CPU): every activation a conv, linear layer, batch norm,
               activation or pooling layer outputs is rounded to f16, and so is its gradient
               (autocast holds both in f16); every conv and linear layer reads its input and
               its weight rounded to f16 (the weight's gradient reaches the float32 master
               unrounded, as convoy's does); sums accumulate in float32. GradScaler's scaling:
               the loss times --init-scale, the gradients unscaled before the step, the step
               skipped where one is not finite.

Prints JSON: the losses of the three runs and convoy's, whether the emulation skipped its step,
and for every float tensor its update's distance from float64's, relative to float64's norm:
convoy's, the emulation's, float32's, and convoy's from the emulation's.

  amp_reference.py CASE AFTER.safetensors --init-scale S --convoy-loss L
"""

import argparse
import json
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, __import__("os").path.dirname(__file__))
import make_parity_fixtures as fx  # noqa: E402


class RoundBoth(torch.autograd.Function):
    """f16 rounding of a value and of its gradient (autocast's f16 tensors)."""

    @staticmethod
    def forward(ctx, x):
        return x.half().float()

    @staticmethod
    def backward(ctx, g):
        return g.half().float()


class RoundValue(torch.autograd.Function):
    """f16 rounding of a weight, its gradient passed on as it is."""

    @staticmethod
    def forward(ctx, x):
        return x.half().float()

    @staticmethod
    def backward(ctx, g):
        return g


ACTIVATION_LAYERS = (
    torch.nn.Conv2d,
    torch.nn.Linear,
    torch.nn.BatchNorm2d,
    torch.nn.ReLU,
    torch.nn.ReLU6,
    torch.nn.Hardswish,
    torch.nn.Hardsigmoid,
    torch.nn.SiLU,
    torch.nn.MaxPool2d,
    torch.nn.AvgPool2d,
    torch.nn.AdaptiveAvgPool2d,
)


def emulate_autocast(m):
    """Hooks and wrapped forwards that round as autocast does; returns an undo function."""
    handles, saved = [], []
    for mod in m.modules():
        if isinstance(mod, ACTIVATION_LAYERS):
            handles.append(mod.register_forward_hook(lambda _m, _i, out: RoundBoth.apply(out)))
        if isinstance(mod, torch.nn.Conv2d):
            saved.append((mod, mod.forward))
            mod.forward = (lambda c: lambda x: c._conv_forward(RoundBoth.apply(x), RoundValue.apply(c.weight), c.bias))(mod)
        elif isinstance(mod, torch.nn.Linear):
            saved.append((mod, mod.forward))
            mod.forward = (lambda l: lambda x: torch.nn.functional.linear(RoundBoth.apply(x), RoundValue.apply(l.weight), l.bias))(mod)

    def undo():
        for h in handles:
            h.remove()
        for mod, f in saved:
            mod.forward = f

    return undo


def step(m, x, y, dtype, scale=None):
    """One SGD step (the parity settings) from m's state in `dtype`; with `scale`, GradScaler's
    scaling and skip. Returns the loss, every float tensor's update (float64), whether the step
    was skipped; m is put back as it was."""
    before = {k: v.clone() for k, v in m.state_dict().items()}
    m.to(dtype).train()
    opt = torch.optim.SGD(m.parameters(), **fx.SGD)
    opt.zero_grad()
    loss = torch.nn.functional.cross_entropy(m(x.to(dtype)), y, label_smoothing=fx.SMOOTHING)
    skipped = False
    if scale is None:
        loss.backward()
    else:
        (loss * scale).backward()
        grads = [p.grad for p in m.parameters() if p.grad is not None]
        skipped = not all(bool(torch.isfinite(g).all()) for g in grads)
        for g in grads:
            g.mul_(1.0 / scale)
    if not skipped:
        opt.step()
    after = m.state_dict()
    update = {k: after[k].double() - before[k].double() for k in before if before[k].is_floating_point()}
    m.float()
    m.load_state_dict(before)
    return loss.item(), update, skipped


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, h in header.items():
        if name == "__metadata__":
            continue
        dtype = {"F32": np.float32, "I64": np.int64}[h["dtype"]]
        a, b = h["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[a:b], dtype=dtype).reshape(h["shape"]).copy())
    return out


def rel(a, b, norm):
    return float((a - b).norm() / norm) if norm > 0 else float((a - b).norm())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("case")
    ap.add_argument("after")
    ap.add_argument("--init-scale", type=float, required=True)
    ap.add_argument("--convoy-loss", type=float, required=True)
    a = ap.parse_args()
    case = fx.CASES[a.case]
    m, x, y, _ = fx.generate(case, case["seed"])
    before = {k: v.clone() for k, v in m.state_dict().items()}
    loss64, u64, _ = step(m, x, y, torch.float64)
    loss32, u32, _ = step(m, x, y, torch.float32)
    undo = emulate_autocast(m)
    loss_e, ue, skipped = step(m, x, y, torch.float32, a.init_scale)
    undo()
    after = read_safetensors(a.after)
    tensors = []
    for name, ref in u64.items():
        uc = after[name].double() - before[name].double()
        norm = float(ref.norm())
        tensors.append(
            dict(
                name=name,
                convoy=rel(uc, ref, norm),
                emulation=rel(ue[name], ref, norm),
                float32=rel(u32[name], ref, norm),
                convoy_vs_emulation=rel(uc, ue[name], norm),
                norm=norm,
            )
        )
    print(
        json.dumps(
            dict(
                loss=dict(float64=loss64, float32=loss32, emulation=loss_e, convoy=a.convoy_loss),
                emulation_skipped=skipped,
                tensors=tensors,
            )
        )
    )


if __name__ == "__main__":
    main()
