#!/usr/bin/env python3
"""ONNX fixtures for convoy's import tests (tests/onnx.rs): torchvision models and a small net of
the remaining ops, random-initialised as in make_parity_fixtures.py (numpy's generator, random
batch-norm statistics), exported by torch.onnx.export, with PyTorch's logits.

Written per case:
  model.onnx          the default export: eval mode, batch norms folded into the convs,
                      constants folded (what users get from `torch.onnx.export(m, x, path)`)
  model_bn.onnx       TrainingMode.PRESERVE without constant folding: batch norms kept, the
                      initializers under torchvision's names (what a model to fine-tune needs);
                      not for the cases with preserve=False
  weights.safetensors the same weights under torchvision's names (the zoo model's checkpoint)
  x.npy, y.npy        a batch of images and labels
  logits.npy          PyTorch float32, eval mode
  logits_f64.npy      PyTorch float64, eval mode, rounded to float32: the reference
  meta.json           the case, opset, export settings

Debian's torch 1.13 exports without the `onnx` Python package.
Usage: /usr/bin/python3 tools/make_onnx_fixtures.py OUT_DIR [CASE ...]
"""
import json
import os
import sys

import numpy as np
import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_parity_fixtures import initialize, save_safetensors  # noqa: E402

FORMAT = 2  # tests/onnx.rs remakes fixtures whose meta.json has another format
K = 10
# opsets vary so both spellings of an op are read: hard-swish is x * HardSigmoid(x) before
# opset 14 and HardSwish from 14; Clip takes attributes before 11 and inputs from 11; Split
# takes its sizes as an attribute before 13 and as an input from 13. `dynamic`: the batch
# dimension is named (`batch`), not fixed.
CASES = {
    "resnet18": dict(model="resnet18", n=2, c=3, h=64, w=48, opset=13, dynamic=True),
    "mobilenet_v2": dict(model="mobilenet_v2", n=2, c=3, h=64, w=64, opset=11, dynamic=False),
    "mobilenet_v3_small": dict(model="mobilenet_v3_small", n=2, c=3, h=64, w=56, opset=13, dynamic=True),
    "mobilenet_v3_large": dict(model="mobilenet_v3_large", n=2, c=3, h=56, w=64, opset=17, dynamic=False),
    "efficientnet_b0": dict(model="efficientnet_b0", n=2, c=3, h=64, w=64, opset=16, dynamic=True),
    "squeezenet1_1": dict(model="squeezenet1_1", n=2, c=3, h=72, w=64, opset=12, dynamic=False),
    "shufflenet_v2_x1_0": dict(model="shufflenet_v2_x1_0", n=2, c=3, h=64, w=64, opset=11, dynamic=False),
    "densenet121": dict(model="densenet121", n=2, c=3, h=64, w=64, opset=14, dynamic=True),
    "resnext50_32x4d": dict(model="resnext50_32x4d", n=2, c=3, h=48, w=48, opset=17, dynamic=False),
    # the deep and wide ResNets: the default export only (each file is 170-270 MB)
    "resnet101": dict(model="resnet101", n=1, c=3, h=32, w=32, opset=14, dynamic=False, preserve=False),
    "resnet152": dict(model="resnet152", n=1, c=3, h=32, w=32, opset=15, dynamic=True, preserve=False),
    "wide_resnet50_2": dict(model="wide_resnet50_2", n=1, c=3, h=32, w=32, opset=16, dynamic=False, preserve=False),
    # the ops no torchvision classifier above uses: nearest and bilinear upsampling, average
    # pooling without padding counted, LeakyReLU, SiLU, hard-swish, GELU (its erf form), Sigmoid,
    # ReLU6, dropout,
    # a view(N, -1) flatten (Shape/Gather/Unsqueeze/Concat/Reshape), a Linear without bias
    # (MatMul), softmax as the output
    "opmix": dict(model="opmix", n=3, c=1, h=20, w=24, opset=13, dynamic=True),
    # padding convoy does on its own (Pad kernel): a constant pad of uneven sides, a zero pad of
    # uneven sides before a conv (padding="same" with an even kernel), a zero pad before a max
    # pool, an average pool counting its padding
    "padmix": dict(model="padmix", n=2, c=3, h=15, w=12, opset=13, dynamic=True),
    # a small grey-scale CNN with batch, height and width left open, pre-trained by nobody: the
    # body the fine-tuning test puts a new head on (Fashion-MNIST, 28x28)
    "tiny": dict(model="tiny", n=2, c=1, h=28, w=28, opset=13, dynamic="nhw"),
}
SEED = 4321


class OpMix(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 8, 3, padding=1)
        self.bn1 = torch.nn.BatchNorm2d(8)
        self.conv2 = torch.nn.Conv2d(8, 8, (1, 3), padding=(0, 1), groups=2)
        self.bn2 = torch.nn.BatchNorm2d(8)
        self.conv3 = torch.nn.Conv2d(16, 12, 3, stride=2, padding=2, dilation=2)
        self.pool = torch.nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.pool2 = torch.nn.AvgPool2d(2)
        self.fc1 = torch.nn.Linear(12 * 10 * 12, 32)
        self.fc2 = torch.nn.Linear(32, K)  # its bias is dropped after initialisation (build)
        self.drop = torch.nn.Dropout(0.3)

    def forward(self, x):
        a = torch.nn.functional.leaky_relu(self.bn1(self.conv1(x)), 0.1)
        b = torch.nn.functional.silu(self.bn2(self.conv2(a)))
        u = torch.nn.functional.interpolate(self.pool(b), scale_factor=2, mode="nearest")
        h = torch.cat([u, torch.sigmoid(b)], dim=1)
        h = torch.nn.functional.hardswish(self.conv3(h))
        h = torch.nn.functional.interpolate(self.pool2(h), scale_factor=2, mode="bilinear", align_corners=False)
        h = torch.nn.functional.gelu(h)  # Div, Erf, Add, Mul, Mul before opset 20
        h = h.view(h.size(0), -1)
        h = torch.nn.functional.relu6(self.fc1(self.drop(h)))
        return torch.softmax(self.fc2(h), dim=1)


class PadMix(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 6, 3)
        self.conv2 = torch.nn.Conv2d(6, 8, 4)
        self.pad = torch.nn.ZeroPad2d((0, 1, 0, 1))
        self.pool = torch.nn.MaxPool2d(2)
        self.avg = torch.nn.AvgPool2d(3, stride=2, padding=1)
        self.fc = torch.nn.Linear(8, K)

    def forward(self, x):
        h = torch.relu(self.conv1(torch.nn.functional.pad(x, (1, 2, 0, 1), value=0.5)))
        # what padding="same" does for an even kernel (torch 1.13 cannot export that flag)
        h = torch.relu(self.conv2(torch.nn.functional.pad(h, (1, 2, 1, 2))))
        h = self.avg(self.pool(self.pad(h)))
        return self.fc(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(h, 1), 1))


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        layers, cin = [], 1
        for i, cout in enumerate([16, 32, 64]):
            layers += [torch.nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), torch.nn.BatchNorm2d(cout), torch.nn.ReLU()]
            cin = cout
        self.body = torch.nn.Sequential(*layers)
        self.fc = torch.nn.Linear(64, 5)

    def forward(self, x):
        return self.fc(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(self.body(x), 1), 1))


def build(case):
    if case["model"] == "padmix":
        return initialize(PadMix(), SEED)
    if case["model"] == "tiny":
        return initialize(Tiny(), SEED)
    if case["model"] == "opmix":
        torch.manual_seed(SEED)
        m = initialize(OpMix(), SEED)
        m.fc2.bias = None  # a Linear without bias: exported as MatMul
        return m
    return initialize(getattr(torchvision.models, case["model"])(num_classes=K), SEED)


def export(m, x, path, case, preserve):
    kwargs = dict(opset_version=case["opset"], input_names=["input"], output_names=["logits"])
    if case["dynamic"] == "nhw":
        kwargs["dynamic_axes"] = {"input": {0: "batch", 2: "height", 3: "width"}, "logits": {0: "batch"}}
    elif case["dynamic"]:
        kwargs["dynamic_axes"] = {"input": {0: "batch"}, "logits": {0: "batch"}}
    if preserve:
        kwargs.update(training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    torch.onnx.export(m, x, path, **kwargs)


def main():
    out = sys.argv[1]
    names = sys.argv[2:] or list(CASES)
    torch.set_num_threads(1)
    for name in names:
        case = CASES[name]
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        rng = np.random.default_rng(SEED + 1)
        x = torch.from_numpy(rng.standard_normal((case["n"], case["c"], case["h"], case["w"])).astype(np.float32))
        y = torch.from_numpy(rng.integers(0, K, case["n"]).astype(np.int64))
        m = build(case).eval()
        with torch.no_grad():
            export(m, x, os.path.join(d, "model.onnx"), case, preserve=False)
            if case.get("preserve", True):
                export(m, x, os.path.join(d, "model_bn.onnx"), case, preserve=True)
            save_safetensors(os.path.join(d, "weights.safetensors"), m.state_dict())
            np.save(os.path.join(d, "x.npy"), x.numpy())
            np.save(os.path.join(d, "y.npy"), y.numpy())
            np.save(os.path.join(d, "logits.npy"), m(x).numpy())
            np.save(os.path.join(d, "logits_f64.npy"), m.double()(x.double()).float().numpy())
        meta = dict(format=FORMAT, case=name, opset=case["opset"], dynamic=case["dynamic"], n=case["n"], torch=torch.__version__)
        with open(os.path.join(d, "meta.json"), "w") as f:
            json.dump(meta, f)
        print(f"{d}: written")


if __name__ == "__main__":
    main()
