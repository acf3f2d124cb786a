#!/usr/bin/env python3
"""PyTorch references for convoy's data-parallel tests (tests/dist.rs).

convoy's simple_cnn (the MNIST chapter's CNN: five stride-2 convs, batch norm, ReLU; written
here in PyTorch with convoy's tensor names; batch-norm statistics and affine parameters
randomised as in make_parity_fixtures.py), a batch of N = 32 one-channel 28x28 images split
over R = 2 ranks of 16, and the state after 3 SGD steps (momentum, Nesterov, weight decay, label
smoothing) under two semantics:

- `sync`: SyncBatchNorm across the ranks. Batch norm then sees the global batch and the
  averaged gradient is the gradient of the global mean loss, so this is plain single-process
  training on all 32 images.
- `ddp`: PyTorch DDP with per-rank batch norm: before each forward rank 0's buffers are
  broadcast (DDP's broadcast_buffers), each replica runs forward and backward on its 16 images
  with its own batch statistics, the gradients are averaged over replicas, and every replica
  takes the same optimizer step. Written: replica 0's state (what rank 0 saves).

Each semantics runs in float64 (the reference) and in float32 in two summation orders (NCHW,
channels-last): their distance from float64 bounds what any float32 implementation can match.
This model is well conditioned (no max-pool ties, every batch norm sees >= 64 values per
channel): PyTorch float32 lands within ~5e-7 of float64, so the test can hold convoy to 1e-4.
(torchvision's resnet18 and mobilenet_v2 at this batch are not: PyTorch's own float32 run is
1e-3 to 1e-1 away from float64 after three steps, mostly through max-pool ties and batch norm
over 2x2 maps.)

Usage: /usr/bin/python3 tools/make_ddp_fixtures.py OUT_DIR
"""
import collections
import copy
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_parity_fixtures import SMOOTHING, K, save_safetensors  # noqa: E402

N, RANKS, H, W, STEPS = 32, 2, 28, 28, 3
SEED = 4321
SGD = dict(lr=0.1, momentum=0.9, weight_decay=1e-4, nesterov=True)


def randomize_batch_norms(m, seed):
    """Random batch-norm affine parameters and running statistics (so gamma/beta are not the
    trivial 1/0)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                c = mod.num_features
                mod.weight.copy_(torch.rand(c, generator=g) + 0.5)
                mod.bias.copy_(torch.rand(c, generator=g) * 0.4 - 0.2)
                mod.running_mean.copy_(torch.rand(c, generator=g) * 0.2 - 0.1)
                mod.running_var.copy_(torch.rand(c, generator=g) + 0.5)
                mod.num_batches_tracked.fill_(3)
    return m


def simple_cnn(seed, channels=(8, 16, 32, 64)):
    """convoy's simple_cnn: conv{i}.0 (stride 2, 5x5 first, then 3x3), conv{i}.1 batch norm,
    ReLU; the last conv{n}.0 is the classifier (bias, no norm), flattened to (N, K)."""
    torch.manual_seed(seed)
    layers, cin = collections.OrderedDict(), 1
    for i, c in enumerate(channels):
        k = 5 if i == 0 else 3
        conv = torch.nn.Conv2d(cin, c, k, 2, k // 2, bias=False)
        layers[f"conv{i}"] = torch.nn.Sequential(conv, torch.nn.BatchNorm2d(c), torch.nn.ReLU())
        cin = c
    layers[f"conv{len(channels)}"] = torch.nn.Sequential(torch.nn.Conv2d(cin, K, 3, 2, 1, bias=True))
    layers["flatten"] = torch.nn.Flatten()
    return randomize_batch_norms(torch.nn.Sequential(layers), seed + 1)


def loss_of(m, x, y):
    return torch.nn.functional.cross_entropy(m(x), y, label_smoothing=SMOOTHING)


def prepare(m, x, dtype, channels_last):
    m = copy.deepcopy(m).to(dtype).train()
    x = x.to(dtype)
    if channels_last:
        m = m.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    return m, x


def run_sync(m0, x, y, dtype, channels_last=False):
    m, x = prepare(m0, x, dtype, channels_last)
    opt = torch.optim.SGD(m.parameters(), **SGD)
    losses = []
    for _ in range(STEPS):
        opt.zero_grad()
        loss = loss_of(m, x, y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return m.state_dict(), losses


def run_ddp(m0, x, y, dtype, channels_last=False):
    m, x = prepare(m0, x, dtype, channels_last)
    replicas = [copy.deepcopy(m) for _ in range(RANKS)]
    opts = [torch.optim.SGD(r.parameters(), **SGD) for r in replicas]
    shards = [(r * N // RANKS, (r + 1) * N // RANKS) for r in range(RANKS)]
    losses = []
    for _ in range(STEPS):
        for r in replicas[1:]:
            for b, b0 in zip(r.buffers(), replicas[0].buffers()):
                b.data.copy_(b0.data)
        step_loss = 0.0
        for r, o, (lo, hi) in zip(replicas, opts, shards):
            o.zero_grad()
            loss = loss_of(r, x[lo:hi], y[lo:hi])
            loss.backward()
            step_loss += loss.item() * (hi - lo) / N
        params = [list(r.parameters()) for r in replicas]
        for group in zip(*params):
            avg = sum(p.grad * ((hi - lo) / N) for p, (lo, hi) in zip(group, shards))
            for p in group:
                p.grad = avg.clone()
        for o in opts:
            o.step()
        losses.append(step_loss)
    return replicas[0].state_dict(), losses


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(2)
    g = torch.Generator().manual_seed(SEED)
    x = torch.randn(N, 1, H, W, generator=g)
    y = torch.randint(0, K, (N,), generator=g)
    m = simple_cnn(SEED)
    save_safetensors(os.path.join(out, "weights.safetensors"), m.state_dict())
    np.save(os.path.join(out, "x.npy"), x.numpy())
    np.save(os.path.join(out, "y.npy"), y.numpy().astype(np.int64))
    for name, run in [("sync", run_sync), ("ddp", run_ddp)]:
        for dtype, cl, tag in [(torch.float64, False, "f64"), (torch.float32, False, "f32"), (torch.float32, True, "f32_cl")]:
            sd, losses = run(m, x, y, dtype, cl)
            sd = {k: (v.float().contiguous() if v.is_floating_point() else v) for k, v in sd.items()}
            save_safetensors(os.path.join(out, f"{name}_{tag}.safetensors"), sd)
            np.save(os.path.join(out, f"{name}_{tag}_losses.npy"), np.array(losses, dtype=np.float32))
    print(f"{out}: written")


if __name__ == "__main__":
    main()
