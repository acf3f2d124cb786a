#!/usr/bin/env python3
"""Reference fixtures from PyTorch/torchvision for convoy's parity tests (tests/parity.rs).

Each case is a model, a batch size, an image size and an initialisation. Written per case:
random-init weights (batch-norm statistics and affine parameters randomised too, so eval and
train mode differ), a random input batch and labels, the logits in eval and train mode, and
for 1 and 3 SGD steps (momentum, Nesterov, weight decay, label smoothing) every step's loss and
the *update* of every tensor, w_after - w_before, computed in float64:

  update{S}_f64   PyTorch in float64: the reference
  update{S}       PyTorch in float32, NCHW
  update{S}_cl    PyTorch in float32, channels-last (oneDNN's NHWC kernels: another summation order)
  update{S}_pert  PyTorch in float32 with about one rounding error added to the input of every
                  conv and batch norm (seeded): what any other float32 summation order does
  update{S}_noise PyTorch in float64 with 1e-6 relative noise at the same places: about the
                  drift float32 arithmetic accumulates by a ResNet's last stage, so it shows
                  which tensors hang on a ReLU (or max-pool) kink

The test holds convoy's update of each tensor to a small multiple of how far the three float32
runs land from float64 *on that tensor*, or of how far the noisy float64 run does where that is
larger: where a rounding flips a ReLU mask at its kink, or a batch norm whose variance is near
eps amplifies it, no float32 implementation can do better, and elsewhere the bound stays tight. Chaos is real here: in the team's resnet34 case below,
convoy's update of layer4.2.bn1.bias is 1.6e-2 from float64 where PyTorch float32's is 1.8e-5,
and tools/kink_probe.py shows why: one ReLU input of that channel is -2.3e-6 (1.3e-6 of the
channel's scale; PyTorch float32 itself moves it by 5e-6), and float64 with that one mask
flipped lands 1.8e-5 from convoy. A float32 implementation can only be asked to match where its
own rounding cannot reach a kink, so of SEED_TRIES seeds the one whose float32 and noisy
float64 runs stay closest to float64 is kept.

Cases with `init: numpy` draw every parameter from numpy's generator, which gives the same bits
on every CPU (torch's normal_ takes an AVX2 path on some CPUs and not on others).
`resnet34_lead` is the case the team measured (issue 24): torch.manual_seed(11), torchvision's
own initialisation, random batch-norm statistics, batch 8 at 80x80 (not in the test suite: its
float64 runs take minutes).

Usage: /usr/bin/python3 tools/make_parity_fixtures.py OUT_DIR [CASE ...]
Needs Debian's python3-torch and python3-torchvision (CPU builds).
"""
import json
import os
import struct
import sys

import numpy as np
import torch
import torchvision

FORMAT = 3  # tests/parity.rs remakes fixtures whose meta.json has another format
K = 10
CASES = {
    # `seed`: the seed choose() found among SEED_TRIES (the search ran most of a fixture's
    # PyTorch time), pinned; numpy's generator makes it the same fixture on every CPU
    "resnet18": dict(model="resnet18", n=2, h=96, w=80, init="numpy", seed=1234),
    "resnet34": dict(model="resnet34", n=2, h=96, w=80, init="numpy", seed=1237),
    "resnet50": dict(model="resnet50", n=2, h=96, w=80, init="numpy", seed=1237),
    "mobilenet_v2": dict(model="mobilenet_v2", n=2, h=96, w=80, init="numpy", seed=1237),
    "resnet34_lead": dict(model="resnet34", n=8, h=80, w=80, init="torch", seed=11),
    # the rest of the zoo: logits in eval and train mode (steps=(): the models whose five
    # reference updates per step would be 0.9-2.6 GB of fixture), or 1 and 3 SGD steps from
    # one pinned seed, at sizes that keep PyTorch's float64 runs to seconds
    "resnet101": dict(model="resnet101", n=2, h=64, w=48, init="numpy", steps=()),
    "resnet152": dict(model="resnet152", n=2, h=48, w=64, init="numpy", steps=()),
    "resnext50_32x4d": dict(model="resnext50_32x4d", n=2, h=64, w=56, init="numpy", steps=(1, 3), seed=1234),
    "wide_resnet50_2": dict(model="wide_resnet50_2", n=2, h=56, w=64, init="numpy", steps=(), tries=1),
    "mobilenet_v3_small": dict(model="mobilenet_v3_small", n=2, h=72, w=64, init="numpy", steps=(1, 3), seed=1234),
    "mobilenet_v3_large": dict(model="mobilenet_v3_large", n=2, h=64, w=72, init="numpy", steps=(1, 3), seed=1234),
    "efficientnet_b0": dict(model="efficientnet_b0", n=2, h=64, w=64, init="numpy", steps=(1, 3), seed=1235),
    # at 64x56 the last dense block normalises 4 values per channel, and convoy's fused step
    # lands on the other side of a ReLU kink at 1.8e-4 of its channel's scale
    # (tools/kink_probe.py); 96x96 leaves 9 per channel
    "densenet121": dict(model="densenet121", n=2, h=96, w=96, init="numpy", steps=(1, 3), seed=1235),
    # one step only: three diverge in PyTorch itself (no batch norm; the loss goes 24, 5e8, inf)
    "squeezenet1_1": dict(model="squeezenet1_1", n=2, h=72, w=64, init="numpy", steps=(1,), seed=1234),
    "shufflenet_v2_x1_0": dict(model="shufflenet_v2_x1_0", n=2, h=64, w=72, init="numpy", steps=(1, 3), seed=1234),
    # 132.9M parameters (515 MB of fixture): logits only; its 392 MiB classifier weight runs in
    # row chunks (convoy's nn::chunks)
    "vgg11_bn": dict(model="vgg11_bn", n=2, h=64, w=64, init="numpy", steps=()),
}
SEED = 1234
SGD = dict(lr=0.05, momentum=0.9, weight_decay=1e-4, nesterov=True)
SMOOTHING = 0.1
SEED_TRIES = 4
# Relative noise added to every conv and batch-norm input in the float32 run `_pert` (about one
# rounding error) and in the float64 run `_noise`: the latter is about the drift that float32
# arithmetic accumulates by a ResNet's last stage (PyTorch float32 moves resnet34's
# layer4.2.bn1 outputs by 2.7e-6 of their scale from float64 at batch 8, 80x80), so it shows
# which tensors hang on a ReLU mask at its kink.
ROUNDING = 2.0**-23
DRIFT = 1e-6
RUNS = {  # tag: (dtype, channels_last, relative noise at every conv and batch-norm input)
    "_f64": (torch.float64, False, 0.0),
    "": (torch.float32, False, 0.0),
    "_cl": (torch.float32, True, 0.0),
    "_pert": (torch.float32, False, ROUNDING),
    "_noise": (torch.float64, False, DRIFT),
}


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


def build(case, seed):
    name = case["model"]
    if case["init"] == "torch":
        torch.manual_seed(seed)
        m = getattr(torchvision.models, name)(num_classes=K)
        random_bn(m, np.random.default_rng(seed))
    else:
        m = initialize(getattr(torchvision.models, name)(num_classes=K), seed)
    # dropout and stochastic depth off: the test compares updates, and PyTorch's random masks
    # cannot be fed in (convoy runs with --no-dropout)
    for mod in m.modules():
        if isinstance(mod, (torch.nn.Dropout, torchvision.ops.StochasticDepth)):
            mod.p = 0.0
    return m


def fill(t, values):
    t.copy_(torch.from_numpy(np.asarray(values, dtype=np.float32).reshape(t.shape)))


def random_bn(m, rng):
    """Random affine parameters and running statistics for every batch norm: eval and train mode
    differ, and gamma/beta are not the trivial 1/0."""
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                c = mod.num_features
                fill(mod.weight, rng.random(c) + 0.5)
                fill(mod.bias, rng.random(c) * 0.4 - 0.2)
                fill(mod.running_mean, rng.random(c) * 0.2 - 0.1)
                fill(mod.running_var, rng.random(c) + 0.5)
                mod.num_batches_tracked.fill_(3)


def initialize(m, seed):
    """Convs: He-normal with fan-out and zero biases (torchvision's rule); linear: PyTorch's
    default uniform; batch norms: random (random_bn). All from numpy's generator."""
    rng = np.random.default_rng(seed)
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
    random_bn(m, rng)
    return m


def input_noise(m, level):
    """Multiply the input of every conv and batch norm of `m` by 1 + level * N(0, 1) (seeded):
    returns the hook handles (remove them to stop)."""
    rng = np.random.default_rng(SEED + 3)

    def hook(_mod, inputs):
        x = inputs[0]
        noise = torch.from_numpy(rng.standard_normal(tuple(x.shape))).to(x.dtype)
        return (x * (1 + level * noise),) + tuple(inputs[1:])

    return [mod.register_forward_pre_hook(hook) for mod in m.modules() if isinstance(mod, (torch.nn.Conv2d, torch.nn.BatchNorm2d))]


def train(m, x, y, steps, tag):
    """`steps` SGD steps from m's current state in the run `tag`; returns the losses and every
    floating-point tensor's update (float64), and puts m back as it was."""
    dtype, channels_last, noise = RUNS[tag]
    before = {k: v.clone() for k, v in m.state_dict().items()}
    m.to(dtype).train()
    hooks = input_noise(m, noise) if noise else []
    xs = x.to(dtype)
    if channels_last:
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
    for h in hooks:
        h.remove()
    after = m.state_dict()
    update = {k: after[k].double() - before[k].double() for k in before if before[k].is_floating_point()}
    m.float().to(memory_format=torch.contiguous_format)
    m.load_state_dict(before)
    return losses, update


def largest_activation(m, x):
    """The largest |value| any conv, batch norm or linear layer of m outputs on x: past f16's
    65504, storing activations in f16 overflows."""
    peak = [0.0]

    def hook(_mod, _inputs, out):
        peak[0] = max(peak[0], out.abs().max().item())

    kinds = (torch.nn.Conv2d, torch.nn.BatchNorm2d, torch.nn.Linear)
    hooks = [mod.register_forward_hook(hook) for mod in m.modules() if isinstance(mod, kinds)]
    m(x)
    for h in hooks:
        h.remove()
    return peak[0]


def rel_norm(a, b):
    return (a - b).norm().item() / max(b.norm().item(), 1e-30)


def spread(m, x, y):
    """The worst tensor's distance from float64 over the float32 runs and the float64 run with
    drift-sized noise, after one step: small only where no tensor hangs on a ReLU kink."""
    ref = train(m, x, y, 1, "_f64")[1]
    runs = [train(m, x, y, 1, tag)[1] for tag in RUNS if tag != "_f64"]
    return max(rel_norm(run[k], ref[k]) for run in runs for k in ref)


def choose(case, x, y):
    """A fixed seed, or for numpy-initialised cases the first of SEED_TRIES (or the case's
    `tries`) seeds whose spread is at most 1e-5, else the best of them. A logits-only case
    takes the first seed. The spread is -1 where it was not measured (a pinned seed)."""
    if not case.get("steps", (1, 3)):
        return build(case, case.get("seed", SEED)), case.get("seed", SEED), 0.0
    if "seed" in case:
        m = build(case, case["seed"])
        # a pinned numpy seed was measured when it was found; the torch-seeded lead is measured
        return m, case["seed"], spread(m, x, y) if case["init"] == "torch" else -1.0
    best = None
    for seed in range(SEED, SEED + case.get("tries", SEED_TRIES)):
        m = build(case, seed)
        s = spread(m, x, y)
        print(f"  seed {seed}: spread {s:.2e}", file=sys.stderr, flush=True)
        if s <= 1e-5:
            return m, seed, s
        if best is None or s < best[2]:
            best = (m, seed, s)
    return best


def main():
    out = sys.argv[1]
    names = sys.argv[2:] or list(CASES)
    torch.set_num_threads(1)  # tests run beside it on 2 cores: more threads only spin
    for name in names:
        case = CASES[name]
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        rng = np.random.default_rng(SEED + 2)
        x = torch.from_numpy(rng.standard_normal((case["n"], 3, case["h"], case["w"])).astype(np.float32))
        y = torch.from_numpy(rng.integers(0, K, case["n"]).astype(np.int64))
        m, seed, s = choose(case, x, y)
        save_safetensors(os.path.join(d, "weights.safetensors"), m.state_dict())
        np.save(os.path.join(d, "x.npy"), x.numpy())
        np.save(os.path.join(d, "y.npy"), y.numpy().astype(np.int64))
        with torch.no_grad():
            m.eval()
            peak = largest_activation(m, x)
            np.save(os.path.join(d, "logits_eval.npy"), m(x).numpy())
            m.train()
            state = {k: v.clone() for k, v in m.state_dict().items()}
            np.save(os.path.join(d, "logits_train.npy"), m(x).numpy())
            m.load_state_dict(state)  # the train-mode forward moved the running statistics
            # train mode normalises by batch statistics, which deep nets on small maps (a few
            # values per channel) make ill-conditioned: float64 shows how far float32 may land
            np.save(os.path.join(d, "logits_train_f64.npy"), m.double()(x.double()).float().numpy())
            m.float()
            m.load_state_dict(state)
        for steps in case.get("steps", (1, 3)):
            for tag in RUNS:
                losses, update = train(m, x, y, steps, tag)
                np.save(os.path.join(d, f"losses{steps}{tag}.npy"), np.array(losses, dtype=np.float32))
                save_safetensors(os.path.join(d, f"update{steps}{tag}.safetensors"), {k: v.float() for k, v in update.items()})
        meta = dict(SGD, format=FORMAT, model=case["model"], steps=list(case.get("steps", (1, 3))), largest_activation=peak, init=case["init"], seed=seed, torch_f32_one_step_spread=s, label_smoothing=SMOOTHING, num_classes=K, torch=torch.__version__, torchvision=torchvision.__version__)
        with open(os.path.join(d, "meta.json"), "w") as f:
            json.dump(meta, f)
        print(f"{d}: written (seed {seed}, float32 spread {s:.2e})")


if __name__ == "__main__":
    main()
