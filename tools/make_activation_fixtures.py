#!/usr/bin/env python3
"""PyTorch's activations for tests/kernels/activation.rs (activations_match_pytorch): each case's
forward and input gradient (dy = 1) on a grid over [-12, 12] plus the kinks and far tails, in
float32 and float64, as lines `case kind values...` (kind: y32, g32, y64, g64; the first line,
`x in`, holds the inputs). Each value is written in the shortest form that reads back as the
same number of its type: float32 for `in` and the *32 rows, float64 for the *64 rows.

The default test reads the committed copy, tests/fixtures/activations_pytorch.txt; the ignored
test activations_match_live_pytorch runs this script and compares. Regenerate (Debian's
python3-torch 1.13 wrote the committed file) with
  /usr/bin/python3 tools/make_activation_fixtures.py > tests/fixtures/activations_pytorch.txt
"""
import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(1)
x = torch.cat([torch.linspace(-12, 12, 2401), torch.tensor([0.0, 3.0, -3.0, 6.0, 1e-3, -1e-3, 30.0, -30.0, 100.0, -100.0])]).float()
cases = {
    "relu": F.relu,
    "relu6": F.relu6,
    "sigmoid": torch.sigmoid,
    "hardsigmoid": F.hardsigmoid,
    "silu": F.silu,
    "hardswish": F.hardswish,
    "gelu": F.gelu,
    "gelu_tanh": lambda v: F.gelu(v, approximate="tanh"),
    "leaky_relu:0.01": lambda v: F.leaky_relu(v, 0.01),
    "leaky_relu:0.2": lambda v: F.leaky_relu(v, 0.2),
    "leaky_relu:-0.3": lambda v: F.leaky_relu(v, -0.3),
}


def row(t):
    """numpy's shortest round-trip form for float32, Python's for float64."""
    if t.dtype == torch.float32:
        return " ".join(str(v) for v in t.detach().numpy().astype(np.float32))
    return " ".join(repr(v) for v in t.detach().tolist())


print("x", "in", row(x))
for name, f in cases.items():
    for kind, dt in (("32", torch.float32), ("64", torch.float64)):
        xx = x.detach().to(dt).clone().requires_grad_()
        y = f(xx)
        y.backward(torch.ones_like(y))
        print(name, "y" + kind, row(y))
        print(name, "g" + kind, row(xx.grad))
