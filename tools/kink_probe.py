#!/usr/bin/env python3
"""Is convoy's distance from PyTorch float64 on one batch norm's update chaos or precision?

Chaos: a ReLU input within float32's drift of zero; any float32 implementation may land on
either side of the kink, and the gradient of that channel moves by the element's whole
upstream gradient. This probe takes a parity fixture (tools/make_parity_fixtures.py), convoy's
weights after one `convoy train-step` on it, and a batch norm whose output goes straight into a
ReLU (`layer4.2.bn1` in a ResNet); in float64 it finds, in the channel where convoy's update of
that batch norm's bias is furthest off, the ReLU input nearest zero, flips its sign, and redoes
the SGD step. If convoy then matches float64 (to PyTorch float32's distance), the difference was
that one mask; if not, it is not chaos at that kink.

Usage: /usr/bin/python3 tools/kink_probe.py FIXTURE_DIR CONVOY_AFTER.safetensors MODULE
(the fixture's one-step update, after `convoy train-step ... --steps 1 --save CONVOY_AFTER`)
"""
import json
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
import make_parity_fixtures as fx  # noqa: E402


def load(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    out = {}
    for k, v in json.loads(b[8 : 8 + n]).items():
        if k == "__metadata__":
            continue
        s, e = v["data_offsets"]
        dt = {"F32": np.float32, "I64": np.int64}[v["dtype"]]
        out[k] = np.frombuffer(b[8 + n + s : 8 + n + e], dtype=dt).reshape(v["shape"]).astype(np.float64)
    return out


def rel(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300)


def main():
    d, convoy_path, module = sys.argv[1:4]
    meta = json.load(open(os.path.join(d, "meta.json")))
    case = dict(model=meta["model"], init=meta["init"])
    m = fx.build(case, meta["seed"])
    w0 = load(os.path.join(d, "weights.safetensors"))
    m.load_state_dict({k: torch.from_numpy(v).to(torch.int64 if k.endswith("tracked") else torch.float32) for k, v in w0.items()})
    x = torch.from_numpy(np.load(os.path.join(d, "x.npy")))
    y = torch.from_numpy(np.load(os.path.join(d, "y.npy")))
    ref = load(os.path.join(d, "update1_f64.safetensors"))
    f32 = load(os.path.join(d, "update1.safetensors"))
    convoy = {k: v - w0[k] for k, v in load(convoy_path).items() if k in ref}
    bias = module + ".bias"
    channel = int(np.argmax(np.abs(convoy[bias] - ref[bias])))
    bn = dict(m.named_modules())[module]

    seen = {}

    def record(_mod, _inp, out):
        seen["out"] = out.detach().clone()

    h = bn.register_forward_hook(record)
    with torch.no_grad():
        m.double().train()
        state = {k: v.clone() for k, v in m.state_dict().items()}
        m(x.double())
        m.load_state_dict(state)
        m.float()
    h.remove()
    plane = seen["out"][:, channel].flatten()
    at = int(plane.abs().argmin())
    value, scale = plane[at].item(), plane.abs().max().item()
    print(f"{module} channel {channel}: the ReLU input nearest zero is {value:.3e} (channel scale {scale:.3f}, {abs(value) / scale:.1e} of it)")

    def flip(_mod, _inp, out):
        # the value changes sign; its derivative stays 1, as in an implementation whose
        # rounding landed on the other side
        mask = torch.zeros_like(out)
        n, hw = divmod(at, out.shape[2] * out.shape[3])
        mask[n, channel].view(-1)[hw] = 1.0
        return out - 2.0 * mask * out.detach()

    h = bn.register_forward_hook(flip)
    flipped = fx.train(m, x, y, 1, "_f64")[1]
    h.remove()
    flipped = {k: v.numpy() for k, v in flipped.items()}
    print(f"{'tensor':40s} {'convoy-f64':>11s} {'convoy-flipped f64':>19s} {'PyTorch f32-f64':>16s}")
    rows = sorted(ref, key=lambda k: -rel(convoy[k], ref[k]))[:8]
    for k in dict.fromkeys([bias] + rows):
        print(f"{k:40s} {rel(convoy[k], ref[k]):11.2e} {rel(convoy[k], flipped[k]):19.2e} {rel(f32[k], ref[k]):16.2e}")


if __name__ == "__main__":
    main()
