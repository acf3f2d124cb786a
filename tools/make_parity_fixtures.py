#!/usr/bin/env python3
"""Reference fixtures from PyTorch/torchvision for convoy's parity tests (tests/parity.rs).

Each case is a model, a batch size, an image size and a seed. A fixture holds no weights: the
weights, the input batch and its labels are *generated* from the seed by a counter-based
splitmix64 generator that tests/common/splitmix.rs reproduces bit for bit (`stream`,
`uniform`), so a case of any size is a few hundred kB and the default test needs no PyTorch.
Written per case:

  meta.json        the case and the manifest: for every state-dict tensor (in state-dict
                   order) its name, dtype, shape, stream seed, range [lo, hi) and projection
                   seed; the input `x` and labels `y` likewise; the largest activation (f16's
                   range), SGD settings, versions
  logits_eval.npy, logits_train.npy    PyTorch float32, eval and train mode
  logits_train_f64.npy                 PyTorch float64, train mode (ill-conditioned on small maps)
  losses{S}{tag}.npy                   every step's loss of S SGD steps (momentum, Nesterov,
                                       weight decay, label smoothing) in the run `tag` (below)
  updates{S}.npy   float64, a row per float tensor in manifest order, of the update after S
                   steps (w_after - w_before): the distances rel_norm(run, f64) of the runs
                   "", "_cl", "_pert", "_noise" (below) from the float64 reference, the exact
                   norms of the float64 and the float32 NCHW updates, and the float64 update
                   as P = 32 Rademacher projections (sign of projection j on element i: bit j of
                   splitmix(proj_seed + (i+1) * GOLDEN), +1 if set); a tensor of at most P
                   elements is stored in full instead (zero-padded)
  updates{S}_f32.npy   float32, the same rows: the float32 NCHW update minus the float64 one,
                   projected alike (or in full): small, so float32 keeps it to 6e-8 of itself

The runs, each from the same weights and batch:

  _f64    PyTorch in float64: the reference
  ""      PyTorch in float32, NCHW
  _cl     PyTorch in float32, channels-last (oneDNN's NHWC kernels: another summation order)
  _pert   PyTorch in float32 with about one rounding error added to the input of every conv and
          batch norm (seeded): what any other float32 summation order does
  _noise  PyTorch in float64 with 1e-6 relative noise at the same places: about the drift
          float32 arithmetic accumulates by a ResNet's last stage, so it shows which tensors
          hang on a ReLU (or max-pool) kink

The test holds convoy's update of each tensor to a small multiple of how far the three float32
runs land from float64 *on that tensor*, or of how far the noisy float64 run does where that is
larger: where a rounding flips a ReLU mask at its kink, or a batch norm whose variance is near
eps amplifies it, no float32 implementation can do better, and elsewhere the bound stays tight.
Chaos is real here: in the team's resnet34 case (issue 24: torchvision's own initialisation,
batch 8 at 80x80), convoy's update of layer4.2.bn1.bias was 1.6e-2 from float64 where PyTorch
float32's was 1.8e-5, and tools/kink_probe.py shows why: one ReLU input of that channel was
-2.3e-6 (1.3e-6 of the channel's scale; PyTorch float32 itself moves it by 5e-6), and float64
with that one mask flipped landed 1.8e-5 from convoy. A float32 implementation can only be asked
to match where its own rounding cannot reach a kink, so of SEED_TRIES seeds the first whose
float32 and noisy float64 runs stay within 1e-5 of float64 (else the closest) is kept.

Initialisation (`init_range`): every tensor uniform on its range, as torchvision's init in
magnitude: conv weights with the standard deviation of He-normal with fan-out (range
+-sqrt(6 / fan_out)), conv biases +-0.05, linear layers PyTorch's default +-1/sqrt(fan_in),
batch norms random (weight 0.5..1.5, bias -0.2..0.2, running mean -0.1..0.1, running variance
0.5..1.5: eval and train mode differ), num_batches_tracked 0; the input uniform with unit
variance, the labels splitmix values mod 10.

Two kinds of case:
  - committed (COMMITTED): one per kind of block, at small images; their fixtures live in git
    under tests/fixtures/parity/<case>/ and the default `cargo test --release --test parity`
    reads them with no PyTorch installed. After a change here (bump FORMAT when the files
    change), write them again with
        /usr/bin/python3 tools/make_parity_fixtures.py --commit tests/fixtures/parity
    (all committed cases; or name some after the folder). Their seeds are pinned: to search
    again (the init or a size changed), add --choose and pin what it prints.
  - live: the full-size rest of the zoo, made by tests/parity.rs on first use into the test
    target's temporary folder (`make_parity_fixtures.py OUT_DIR CASE...`); those tests are
    #[ignore]d (they need PyTorch) and run with `cargo test --release -- --include-ignored`.

--full also writes what tools/kink_probe.py reads: weights.safetensors, x.npy, y.npy and every
run's full update (update{S}{tag}.safetensors).

Usage: /usr/bin/python3 tools/make_parity_fixtures.py [--commit] [--choose] [--full] OUT_DIR [CASE ...]
Needs Debian's python3-torch and python3-torchvision (CPU builds).
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torchvision

FORMAT = 4  # tests/parity.rs remakes (live) or rejects (committed) fixtures of another format
K = 10  # classes
P = 32  # Rademacher projections of an update
GOLDEN = 0x9E3779B97F4A7C15
CASES = {
    # committed: one case per kind of block, at 64x64 (a convoy CLI run costs seconds on
    # lavapipe whatever the size, and the default test makes five per case). `seed`: what
    # choose() found among SEED_TRIES (--choose), pinned; meta.json has its spread. Only
    # resnet18's is small (5.4e-5): the spread is the worst tensor's, and a batch norm whose
    # output reaches a train-mode batch norm only through a conv (mobilenets, shufflenet,
    # densenet) has a zero gradient on its bias, an update of weight decay alone that any
    # rounding moves by 1e-3 to 4e-1 of itself; resnet50 and resnext50 are chaotic as at 96x80
    # (the old fixtures' 5.5e-2: 159 of resnet50's 267 tensors move by more than 1e-3 under the
    # drift noise), and their loss grows to ~120 by the third step
    "resnet18": dict(model="resnet18", n=2, h=64, w=64, seed=1236),
    "resnet50": dict(model="resnet50", n=2, h=64, w=64, seed=1235),
    "resnext50_32x4d": dict(model="resnext50_32x4d", n=2, h=64, w=64, seed=1235),
    "mobilenet_v2": dict(model="mobilenet_v2", n=2, h=64, w=64, seed=1237),
    "mobilenet_v3_small": dict(model="mobilenet_v3_small", n=2, h=64, w=64, seed=1236),
    "densenet121": dict(model="densenet121", n=2, h=64, w=64, seed=1234),
    "shufflenet_v2_x1_0": dict(model="shufflenet_v2_x1_0", n=2, h=64, w=64, seed=1234),
    # live: the rest of the zoo, full size. Logits in eval and train mode only (steps=()) for the
    # models whose float64 runs take minutes, or 1 and 3 SGD steps; no pinned seed: choose()
    # searches when the fixture is made
    "resnet34": dict(model="resnet34", n=2, h=96, w=80),
    "resnet101": dict(model="resnet101", n=2, h=64, w=48, steps=()),
    "resnet152": dict(model="resnet152", n=2, h=48, w=64, steps=()),
    "wide_resnet50_2": dict(model="wide_resnet50_2", n=2, h=56, w=64, steps=()),
    "mobilenet_v3_large": dict(model="mobilenet_v3_large", n=2, h=64, w=72),
    # squeeze-excite as mobilenet_v3_small (committed), with SiLU: left out of the default test
    # for its time
    "efficientnet_b0": dict(model="efficientnet_b0", n=2, h=64, w=64),
    # one step only: three diverge in PyTorch itself (no batch norm; the loss explodes)
    "squeezenet1_1": dict(model="squeezenet1_1", n=2, h=72, w=64, steps=(1,)),
    # 132.9M parameters: logits only; its 392 MiB classifier weight runs in row chunks
    # (convoy's io::chunks)
    "vgg11_bn": dict(model="vgg11_bn", n=2, h=64, w=64, steps=()),
}
COMMITTED = ["resnet18", "resnet50", "resnext50_32x4d", "mobilenet_v2", "mobilenet_v3_small", "densenet121", "shufflenet_v2_x1_0"]
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
CHUNK = 1 << 16


# --- the generator (tests/common/splitmix.rs is the same) -------------------------------------


def stream(seed, n, start=0):
    """Values start..start+n of the stream `seed` as uint64: splitmix64's finaliser of
    seed + (i + 1) * GOLDEN, wrapping."""
    i = np.arange(start + 1, start + n + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = np.uint64(seed) + i * np.uint64(GOLDEN)
        z ^= z >> np.uint64(30)
        z *= np.uint64(0xBF58476D1CE4E5B9)
        z ^= z >> np.uint64(27)
        z *= np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    return z


def uniform(seed, n, lo, hi):
    """n float32 values: f32(lo + (hi - lo) * u) in float64, rounded once, u = (z >> 11) * 2^-53."""
    out = np.empty(n, dtype=np.float32)
    for s in range(0, n, 1 << 22):
        u = (stream(seed, min(1 << 22, n - s), s) >> np.uint64(11)).astype(np.float64) * 2.0**-53
        out[s : s + len(u)] = (lo + (hi - lo) * u).astype(np.float32)
    return out


def labels(seed, n):
    return (stream(seed, n) % np.uint64(K)).astype(np.int64)


def project(seed, vs):
    """The P Rademacher projections of each float64 vector of `vs` (same length), or a vector of
    at most P elements itself, zero-padded."""
    n = len(vs[0])
    if n <= P:
        out = np.zeros((len(vs), P))
        for r, v in enumerate(vs):
            out[r, :n] = v
        return out
    bits = np.arange(P, dtype=np.uint64)[:, None]
    out = np.zeros((len(vs), P))
    for s in range(0, n, CHUNK):
        h = stream(seed, min(CHUNK, n - s), s)
        signs = ((h[None, :] >> bits) & np.uint64(1)).astype(np.float64) * 2.0 - 1.0
        out += np.stack([v[s : s + h.size] for v in vs]) @ signs.T
    return out


# --- the model --------------------------------------------------------------------------------


def init_range(mod, attr, shape):
    """[lo, hi) of a state-dict tensor of `mod` (see the docstring): None for an integer."""
    if isinstance(mod, torch.nn.Conv2d):
        if attr == "bias":
            return -0.05, 0.05
        b = math.sqrt(6.0 / (shape[0] * shape[2] * shape[3]))
        return -b, b
    if isinstance(mod, torch.nn.Linear):
        b = 1.0 / math.sqrt(mod.in_features)
        return -b, b
    if isinstance(mod, torch.nn.BatchNorm2d):
        return {"weight": (0.5, 1.5), "bias": (-0.2, 0.2), "running_mean": (-0.1, 0.1), "running_var": (0.5, 1.5), "num_batches_tracked": None}[attr]
    raise ValueError(f"no initialisation for {type(mod).__name__}.{attr}")


def architecture(name):
    m = getattr(torchvision.models, name)(num_classes=K)
    # dropout and stochastic depth off: the test compares updates, and PyTorch's random masks
    # cannot be fed in (convoy runs with --no-dropout)
    for mod in m.modules():
        if isinstance(mod, (torch.nn.Dropout, torchvision.ops.StochasticDepth)):
            mod.p = 0.0
    return m


def build(case, seed):
    """The model of `case` with the weights of `seed` (tools/kink_probe.py builds with it)."""
    return generate(dict(case, n=1, h=1, w=1), seed)[0]


def generate(case, seed):
    """The model of `case` with the weights of `seed`, the batch x, y and the manifest (what
    meta.json holds for tests/parity.rs to make the same)."""
    m = architecture(case["model"])
    modules = dict(m.named_modules())
    state = m.state_dict()
    seeds = stream(seed, 2 + 2 * len(state))
    tensors, weights = [], {}
    for t, (name, v) in enumerate(state.items()):
        prefix, attr = name.rsplit(".", 1)
        shape = list(v.shape)
        r = init_range(modules[prefix], attr, shape)
        if r is None:
            assert v.dtype == torch.int64, name
            tensors.append([name, "int64", shape, 0, 0.0, 0.0, 0])
            weights[name] = torch.zeros(shape, dtype=torch.int64)
            continue
        wseed, pseed = int(seeds[2 + 2 * t]), int(seeds[3 + 2 * t])
        tensors.append([name, "float32", shape, wseed, r[0], r[1], pseed])
        weights[name] = torch.from_numpy(uniform(wseed, v.numel(), r[0], r[1]).reshape(shape))
    m.load_state_dict(weights)
    xshape = [case["n"], 3, case["h"], case["w"]]
    xr = math.sqrt(3.0)  # unit variance
    x_spec = dict(shape=xshape, seed=int(seeds[0]), lo=-xr, hi=xr)
    y_spec = dict(shape=[case["n"]], seed=int(seeds[1]), classes=K)
    x = torch.from_numpy(uniform(x_spec["seed"], int(np.prod(xshape)), -xr, xr).reshape(xshape))
    y = torch.from_numpy(labels(y_spec["seed"], case["n"]))
    return m, x, y, dict(x=x_spec, y=y_spec, tensors=tensors)


def initialize(m, seed):
    """Convs: He-normal with fan-out and zero biases (torchvision's rule); linear: PyTorch's
    default uniform; batch norms: random (random_bn). All from numpy's generator.
    (tools/make_onnx_fixtures.py's initialisation; the parity cases use `build`.)"""
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


def fill(t, values):
    t.copy_(torch.from_numpy(np.asarray(values, dtype=np.float32).reshape(t.shape)))


def random_bn(m, rng):
    """Random affine parameters and running statistics for every batch norm (for `initialize`)."""
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                c = mod.num_features
                fill(mod.weight, rng.random(c) + 0.5)
                fill(mod.bias, rng.random(c) * 0.4 - 0.2)
                fill(mod.running_mean, rng.random(c) * 0.2 - 0.1)
                fill(mod.running_var, rng.random(c) + 0.5)
                mod.num_batches_tracked.fill_(3)


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


# --- the runs ---------------------------------------------------------------------------------


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
    return (a - b).norm().item() / max(b.norm().item(), 1e-300)


def spread(m, x, y):
    """The worst tensor's distance from float64 over the float32 runs and the float64 run with
    drift-sized noise, after one step: small only where no tensor hangs on a ReLU kink."""
    ref = train(m, x, y, 1, "_f64")[1]
    runs = [train(m, x, y, 1, tag)[1] for tag in RUNS if tag != "_f64"]
    return max(rel_norm(run[k], ref[k]) for run in runs for k in ref)


def choose(case, search):
    """The case's pinned seed, or with `search` (or none pinned) the first of SEED_TRIES seeds whose spread is at most 1e-5, else the best of them.
    A logits-only case takes SEED."""
    if not case.get("steps", (1, 3)):
        return (*generate(case, SEED), SEED, 0.0)
    if "seed" in case and not search:
        built = generate(case, case["seed"])
        return (*built, case["seed"], spread(*built[:3]))
    best = None
    for seed in range(SEED, SEED + SEED_TRIES):
        built = generate(case, seed)
        s = spread(*built[:3])
        print(f"  seed {seed}: spread {s:.2e}", file=sys.stderr, flush=True)
        if s <= 1e-5:
            return (*built, seed, s)
        if best is None or s < best[-1]:
            best = (*built, seed, s)
    return best


def update_rows(manifest, updates):
    """updates{S}.npy's and updates{S}_f32.npy's rows (see the docstring) from the runs' updates."""
    rows, rows32 = [], []
    for name, dtype, _shape, _seed, _lo, _hi, pseed in manifest["tensors"]:
        if dtype != "float32":
            continue
        run = {tag: u[name].flatten().numpy() for tag, u in updates.items()}
        ref, nchw = run["_f64"], run[""]
        dist = [np.linalg.norm(run[tag] - ref) / max(np.linalg.norm(ref), 1e-300) for tag in ("", "_cl", "_pert", "_noise")]
        proj = project(pseed, [ref, nchw - ref])
        rows.append(np.concatenate([dist, [np.linalg.norm(ref), np.linalg.norm(nchw)], proj[0]]))
        rows32.append(proj[1])
    return np.array(rows, dtype=np.float64), np.array(rows32, dtype=np.float32)


def write_case(name, out, search, full):
    case = CASES[name]
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    m, x, y, manifest, seed, s = choose(case, search)
    steps = list(case.get("steps", (1, 3)))
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
    if full:
        save_safetensors(os.path.join(d, "weights.safetensors"), m.state_dict())
        np.save(os.path.join(d, "x.npy"), x.numpy())
        np.save(os.path.join(d, "y.npy"), y.numpy())
    for S in steps:
        updates = {}
        for tag in RUNS:
            losses, updates[tag] = train(m, x, y, S, tag)
            np.save(os.path.join(d, f"losses{S}{tag}.npy"), np.array(losses, dtype=np.float32))
            if full:
                save_safetensors(os.path.join(d, f"update{S}{tag}.safetensors"), {k: v.float() for k, v in updates[tag].items()})
        rows, rows32 = update_rows(manifest, updates)
        np.save(os.path.join(d, f"updates{S}.npy"), rows)
        np.save(os.path.join(d, f"updates{S}_f32.npy"), rows32)
    meta = dict(format=FORMAT, case=name, model=case["model"], init="splitmix", seed=seed, steps=steps, largest_activation=peak, torch_f32_one_step_spread=s)
    meta.update(SGD, label_smoothing=SMOOTHING, num_classes=K, projections=P, torch=torch.__version__, torchvision=torchvision.__version__)
    meta.update(x=manifest["x"], y=manifest["y"])
    # one tensor a line; json writes floats with repr, which reads back to the same double
    text = json.dumps(meta)[:-1] + ', "tensors": [\n' + ",\n".join(json.dumps(t) for t in manifest["tensors"]) + "\n]}\n"
    with open(os.path.join(d, "meta.json"), "w") as f:
        f.write(text)
    print(f"{d}: written (seed {seed}, float32 spread {s:.2e})", flush=True)


def main():
    args = sys.argv[1:]
    flags = {a for a in args if a.startswith("--")}
    args = [a for a in args if not a.startswith("--")]
    unknown = flags - {"--commit", "--choose", "--full"}
    if unknown or not args:
        sys.exit(f"usage: {sys.argv[0]} [--commit] [--choose] [--full] OUT_DIR [CASE ...]")
    out, names = args[0], args[1:]
    if "--commit" in flags:
        names = names or COMMITTED
        live = [n for n in names if n not in COMMITTED]
        if live:
            sys.exit(f"not committed cases (COMMITTED): {live}")
    names = names or list(CASES)
    torch.set_num_threads(1)  # tests run beside it on 2 cores: more threads only spin
    for name in names:
        write_case(name, out, "--choose" in flags, "--full" in flags)


if __name__ == "__main__":
    main()
