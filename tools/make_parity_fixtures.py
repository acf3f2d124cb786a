#!/usr/bin/env python3
"""Reference fixtures from PyTorch/torchvision for convoy's parity tests (tests/parity.rs).

For each model: random-init weights from a seed (batch-norm statistics and affine parameters
randomised too, so eval and train mode differ), a random input batch and labels, the logits in
eval and train mode, and the weights, buffers and losses after one SGD step (after1) and after
three (after3), with momentum, Nesterov, weight decay and label smoothing. Written as
safetensors (torchvision names) and .npy.

Several steps of batch-norm training on a tiny batch can be ill-conditioned: PyTorch's own
float32 run drifts from its float64 run. So the weights are also written from a float64 run
(after1_f64, after3_f64), and the test measures convoy against float64 with a bound set by how
far float32 itself may land on the same fixture: PyTorch's two float32 summation orders (NCHW,
and channels-last through oneDNN), and a float32 run whose every conv and batch-norm input is
changed by about one rounding error (after*_pert). The last one matters: PyTorch on the CPU
accumulates batch-norm statistics in float64, so its two orders can agree closely where a
float32-accumulating implementation (a GPU runtime, convoy) moves a batch norm whose variance
is near its eps or flips a ReLU6 mask (seen: 5e-5 between the orders, 2.4e-2 for a one-ulp
change of the input). Of the seeds tried, the best-conditioned one by all three is kept.

Usage: /usr/bin/python3 tools/make_parity_fixtures.py OUT_DIR [MODEL ...]
Needs Debian's python3-torch and python3-torchvision (CPU builds).
"""
import json
import os
import struct
import sys

import numpy as np
import torch
import torchvision

MODELS = ["resnet18", "resnet34", "resnet50", "mobilenet_v2"]
SEED = 1234
N, H, W, K = 2, 96, 80, 10  # H != W, not multiples of 32
SGD = dict(lr=0.05, momentum=0.9, weight_decay=1e-4, nesterov=True)
SMOOTHING = 0.1
SEED_TRIES = 4


def save_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        a = t.detach().cpu().contiguous().numpy()
        dtype = {np.float32: "F32", np.int64: "I64"}[a.dtype.type]
        b = a.tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def build(name, seed=SEED):
    if name == "mobilenet_v2":
        # dropout 0: convoy has no dropout, and a random mask could not be matched anyway
        m = torchvision.models.mobilenet_v2(num_classes=K, dropout=0.0)
    else:
        m = getattr(torchvision.models, name)(num_classes=K)
    return initialize(m, seed)


def initialize(m, seed):
    """Random parameters from numpy's generator, which gives the same bits on every CPU: torch's
    normal_ takes an AVX2 code path on some CPUs and not on others, so torchvision's own
    initialisation (and with it how well-conditioned a fixture is) depended on the machine.
    Convs: He-normal with fan-out and zero biases (torchvision's rule); linear: PyTorch's default
    uniform; batch norms: random affine parameters and running statistics (so eval and train
    mode differ, and gamma/beta are not the trivial 1/0)."""
    rng = np.random.default_rng(seed)

    def fill(t, values):
        t.copy_(torch.from_numpy(np.asarray(values, dtype=np.float32).reshape(t.shape)))

    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.Conv2d):
                w = mod.weight
                fan_out = w.shape[0] * w.shape[2] * w.shape[3]
                fill(w, rng.standard_normal(w.shape) * np.sqrt(2.0 / fan_out))
                if mod.bias is not None:
                    mod.bias.zero_()
            elif isinstance(mod, torch.nn.Linear):
                bound = 1.0 / np.sqrt(mod.in_features)
                fill(mod.weight, rng.uniform(-bound, bound, mod.weight.shape))
                fill(mod.bias, rng.uniform(-bound, bound, mod.bias.shape))
            elif isinstance(mod, torch.nn.BatchNorm2d):
                c = mod.num_features
                fill(mod.weight, rng.random(c) + 0.5)
                fill(mod.bias, rng.random(c) * 0.4 - 0.2)
                fill(mod.running_mean, rng.random(c) * 0.2 - 0.1)
                fill(mod.running_var, rng.random(c) + 0.5)
                mod.num_batches_tracked.fill_(3)
    return m


def one_step(m, x, y, dtype, channels_last=False):
    state = {k: v.clone() for k, v in m.state_dict().items()}
    m.to(dtype).train()
    x = x.to(dtype)
    if channels_last:
        # another float32 summation order (oneDNN's NHWC kernels)
        m.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(m.parameters(), **SGD)
    opt.zero_grad()
    torch.nn.functional.cross_entropy(m(x.to(dtype)), y, label_smoothing=SMOOTHING).backward()
    opt.step()
    out = {k: v.double().clone() for k, v in m.state_dict().items() if v.is_floating_point()}
    m.float().to(memory_format=torch.contiguous_format)
    m.load_state_dict(state)
    return out


def worst(a, b):
    return max((a[k] - b[k]).abs().max().item() / max(b[k].abs().max().item(), 1e-12) for k in b)


def rounding_noise(m):
    """Change the input of every conv and batch norm of `m` by about one float32 rounding
    error (seeded), as a float32 implementation with other summation orders would: returns the
    hook handles (remove them to stop)."""
    rng = np.random.default_rng(SEED + 3)

    def hook(_mod, inputs):
        x = inputs[0]
        noise = torch.from_numpy(rng.standard_normal(tuple(x.shape))).to(x.dtype)
        return (x * (1 + 2.0**-23 * noise),) + tuple(inputs[1:])

    return [mod.register_forward_pre_hook(hook) for mod in m.modules() if isinstance(mod, (torch.nn.Conv2d, torch.nn.BatchNorm2d))]


def float32_spread(m, x, y):
    """How far float32 lands from float64 after one step: the worst of NCHW, channels-last and
    NCHW with rounding noise at every layer."""
    ref = one_step(m, x, y, torch.float64)
    hooks = rounding_noise(m)
    noisy = one_step(m, x, y, torch.float32)
    for h in hooks:
        h.remove()
    return max(
        worst(one_step(m, x, y, torch.float32), ref),
        worst(one_step(m, x, y, torch.float32, channels_last=True), ref),
        worst(noisy, ref),
    )


def well_conditioned(name, x, y):
    """The first seed whose float32 spread is at most 1e-5, else the best of SEED_TRIES."""
    best = None
    for seed in range(SEED, SEED + SEED_TRIES):
        m = build(name, seed)
        spread = float32_spread(m, x, y)
        if spread <= 1e-5:
            return m, seed, spread
        if best is None or spread < best[2]:
            best = (m, seed, spread)
    return best


def main():
    out = sys.argv[1]
    names = sys.argv[2:] or MODELS
    torch.set_num_threads(2)
    for name in names:
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        rng = np.random.default_rng(SEED + 2)
        x = torch.from_numpy(rng.standard_normal((N, 3, H, W)).astype(np.float32))
        y = torch.from_numpy(rng.integers(0, K, N).astype(np.int64))
        m, seed, spread = well_conditioned(name, x, y)
        save_safetensors(os.path.join(d, "weights.safetensors"), m.state_dict())
        np.save(os.path.join(d, "x.npy"), x.numpy())
        np.save(os.path.join(d, "y.npy"), y.numpy().astype(np.int64))
        state = {k: v.clone() for k, v in m.state_dict().items()}
        with torch.no_grad():
            m.eval()
            np.save(os.path.join(d, "logits_eval.npy"), m(x).numpy())
            m.train()
            np.save(os.path.join(d, "logits_train.npy"), m(x).numpy())
        runs = []
        for steps in (1, 3):
            runs += [(steps, torch.float32, False, False, f"after{steps}"), (steps, torch.float32, True, False, f"after{steps}_cl")]
            runs += [(steps, torch.float32, False, True, f"after{steps}_pert"), (steps, torch.float64, False, False, f"after{steps}_f64")]
        for steps, dtype, cl, noise, tag in runs:
            m.load_state_dict(state)
            m.to(dtype).train()
            hooks = rounding_noise(m) if noise else []
            xs = x.to(dtype)
            if cl:
                m.to(memory_format=torch.channels_last)
                xs = xs.contiguous(memory_format=torch.channels_last)
            opt = torch.optim.SGD(m.parameters(), **SGD)
            losses = []
            for _ in range(steps):
                opt.zero_grad()
                loss = torch.nn.functional.cross_entropy(m(xs), y, label_smoothing=SMOOTHING)
                loss.backward()
                opt.step()
                losses.append(loss.item())
            np.save(os.path.join(d, f"{tag}_losses.npy"), np.array(losses, dtype=np.float32))
            for h in hooks:
                h.remove()
            sd = {k: (v.float() if v.is_floating_point() else v) for k, v in m.state_dict().items()}
            save_safetensors(os.path.join(d, f"{tag}.safetensors"), sd)
            m.float().to(memory_format=torch.contiguous_format)
        meta = dict(SGD, seed=seed, torch_f32_one_step_spread=spread, label_smoothing=SMOOTHING, num_classes=K, torch=torch.__version__, torchvision=torchvision.__version__)
        with open(os.path.join(d, "meta.json"), "w") as f:
            json.dump(meta, f)
        print(f"{d}: written")


if __name__ == "__main__":
    main()
