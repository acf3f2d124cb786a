#!/usr/bin/python3
"""The recipe of `convoy train --model xresnet18 --data fashion-mnist=PATH`, in PyTorch on the CPU.

Same model (fastai's xresnet18: 3-conv stem, avgpool + 1x1 shortcuts, zero-init last BN gamma,
Kaiming fan-out init), same data (pixels / 255, no augmentation), same 1cycle schedule (fastai's
defaults: pct_start 0.25, div 25, div_final 1e5, momentum 0.95 -> 0.85 -> 0.95), SGD with weight
decay, label smoothing. It answers how many epochs the recipe needs to reach a test accuracy,
without spending hours of lavapipe on the question, and gives PyTorch's time for the same run.

    /usr/bin/python3 tools/fashion_pytorch.py --data /usr/share/datasets/fashion-mnist --epochs 2
"""
import argparse
import gzip
import math
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def idx(path):
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return torch.frombuffer(bytearray(data[4 + 4 * dims:]), dtype=torch.uint8).reshape(shape)


def load(folder, split):
    def find(stem):
        for name in (stem, stem + ".gz"):
            if os.path.exists(os.path.join(folder, name)):
                return os.path.join(folder, name)
        raise FileNotFoundError(os.path.join(folder, stem))

    x = idx(find(f"{split}-images-idx3-ubyte")).float() / 255.0
    y = idx(find(f"{split}-labels-idx1-ubyte")).long()
    return x.unsqueeze(1), y


def conv_bn(cin, cout, stride=1, act=True, zero=False):
    bn = nn.BatchNorm2d(cout)
    if zero:
        nn.init.zeros_(bn.weight)
    layers = [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), bn]
    return nn.Sequential(*layers, nn.ReLU()) if act else nn.Sequential(*layers)


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.main = nn.Sequential(conv_bn(cin, cout, stride), conv_bn(cout, cout, act=False, zero=True))
        short = []
        if stride != 1:
            short.append(nn.AvgPool2d(2, 2, ceil_mode=True))
        if stride != 1 or cin != cout:
            short += [nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.short = nn.Sequential(*short)

    def forward(self, x):
        return F.relu(self.main(x) + self.short(x))


def xresnet18(cin, classes):
    layers = [conv_bn(cin, 32, 2), conv_bn(32, 32), conv_bn(32, 64), nn.MaxPool2d(3, 2, 1)]
    c = 64
    for i, planes in enumerate([64, 128, 256, 512]):
        for b in range(2):
            layers.append(Block(c, planes, 2 if i > 0 and b == 0 else 1))
            c = planes
    net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, classes))
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return net


def one_cycle(step, total, lr_max, pct=0.25, div=25.0, div_final=1e5):
    """fastai's 1cycle: (lr, momentum) at `step` of `total`."""
    warm = max(1, int(total * pct))

    def cos(a, b, t):
        return b + (a - b) / 2 * (1 + math.cos(math.pi * t))

    if step < warm:
        t = step / warm
        return cos(lr_max / div, lr_max, t), cos(0.95, 0.85, t)
    t = (step - warm) / max(1, total - warm)
    return cos(lr_max, lr_max / div_final, t), cos(0.85, 0.95, t)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--bs", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.15)
    ap.add_argument("--wd", type=float, default=5e-4)
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    xtr, ytr = load(a.data, "train")
    xte, yte = load(a.data, "t10k")
    net = xresnet18(1, 10)
    opt = torch.optim.SGD(net.parameters(), lr=a.lr, momentum=0.9, weight_decay=a.wd)
    steps = a.epochs * math.ceil(len(xtr) / a.bs)
    step = 0
    start = time.time()
    for epoch in range(a.epochs):
        net.train()
        order = torch.randperm(len(xtr))
        for i in range(0, len(xtr), a.bs):
            lr, mom = one_cycle(step, steps, a.lr)
            for g in opt.param_groups:
                g["lr"], g["momentum"] = lr, mom
            b = order[i:i + a.bs]
            loss = F.cross_entropy(net(xtr[b]), ytr[b], label_smoothing=a.label_smoothing)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
        net.eval()
        with torch.no_grad():
            pred = torch.cat([net(xte[i:i + 500]).argmax(1) for i in range(0, len(xte), 500)])
        acc = (pred == yte).float().mean().item()
        print(f"epoch {epoch + 1}: loss {loss.item():.4f} test top-1 {acc * 100:.2f}% "
              f"({time.time() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
