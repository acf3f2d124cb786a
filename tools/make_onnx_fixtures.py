#!/usr/bin/env python3
"""ONNX fixtures for convoy's import tests (tests/onnx.rs): torchvision models, narrow versions of
their blocks and three small nets, random-initialised (numpy's generator, random batch-norm
statistics, as make_parity_fixtures.py), exported by torch.onnx.export, with PyTorch's logits.

Two kinds of case (CASES):
  - committed (COMMITTED): one to forty thousand weights each (2.8 MB in all), every block
    torchvision's classifiers are made of (basic and bottleneck residual, grouped conv,
    inverted residual, squeeze-excite with hard-swish or SiLU, dense, channel shuffle with
    split/concat, fire) built narrow from torchvision's own classes, a shuffle net of
    torch.split, the small nets, and each op's spellings across opsets; their files live in git
    under tests/fixtures/onnx/<case>/ and the default `cargo test --release --test onnx` reads
    them with no PyTorch installed (tests/onnx.rs lists the same cases);
  - live: the full-size torchvision models (tens to hundreds of MB each), made by tests/onnx.rs
    on first use into the test target's temporary folder; those tests are #[ignore]d (they
    need PyTorch) and run with `cargo test --release --test onnx -- --include-ignored`.

Written per case:
  model.onnx          the default export: eval mode, batch norms folded into the convs,
                      constants folded (what users get from `torch.onnx.export(m, x, path)`)
  model_bn.onnx       TrainingMode.PRESERVE without constant folding: batch norms kept, the
                      initializers under torchvision's names (what a model to fine-tune needs);
                      not for the cases with preserve=False
  weights.safetensors the same weights under torchvision's names (the zoo model's checkpoint);
                      with --commit only for the cases that are read by it (checkpoint=True)
  x.npy, y.npy        a batch of images and labels
  logits.npy          PyTorch float32, eval mode
  logits_f64.npy      PyTorch float64, eval mode, rounded to float32: the reference
  meta.json           the case, opset, export settings

Debian's torch 1.13 exports without the `onnx` Python package.
Usage:
  /usr/bin/python3 tools/make_onnx_fixtures.py OUT_DIR [CASE ...]
      any cases (all by default) into OUT_DIR/<case>/ (what tests/onnx.rs runs for live cases)
  /usr/bin/python3 tools/make_onnx_fixtures.py --commit tests/fixtures/onnx [CASE ...]
      regenerate the committed cases (all of COMMITTED by default) in git's folder; commit the
      result. Run it after changing a committed case or FORMAT (and bump FORMAT in tests/onnx.rs
      with it). Debian's python3-torch 1.13 and python3-torchvision 0.14 wrote the files there.
"""
import json
import os
import sys

import numpy as np
import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# the parity fixtures' random initialisation (numpy's generator, random batch-norm statistics)
# and safetensors writer, one copy for both scripts
from make_parity_fixtures import initialize, save_safetensors  # noqa: E402

# tests/onnx.rs remakes live fixtures whose meta.json has another format, and refuses committed ones
FORMAT = 2
K = 10
# opsets vary so both spellings of an op are read: Clip takes its bounds as attributes before
# opset 11 and as inputs from 11 (ReLU6); hard-swish is x * HardSigmoid(x) before opset 14 and
# HardSwish from 14; Split takes its sizes as an attribute before 13 and as an input from 13
# (channel shuffle's chunk). `dynamic`: the batch dimension is named (`batch`), not fixed; "nhw":
# height and width too.
CASES = {
    # ---- live: the full-size torchvision classifiers (tests/onnx.rs: #[ignore], needs PyTorch)
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
    # ---- committed (tests/fixtures/onnx/): each block of the classifiers above, narrow, from
    # torchvision's own classes, at the opset and batch setting of its full-size case
    # torchvision's ResNet with BasicBlock, one block a stage: an identity shortcut (layer1) and
    # 1x1-conv projections (layer2-4)
    "resnet_basic": dict(model="resnet_basic", n=2, c=3, h=40, w=36, opset=13, dynamic=True),
    # Bottleneck, two blocks in layer1 (a projection, then an identity shortcut)
    "resnet_bottleneck": dict(model="resnet_bottleneck", n=2, c=3, h=36, w=40, opset=14, dynamic=True),
    # ResNeXt's grouped 3x3 convs (4 groups of 2 and of 4 channels)
    "resnext_grouped": dict(model="resnext_grouped", n=2, c=3, h=40, w=32, opset=17, dynamic=False),
    # MobileNetV2's inverted residuals with ReLU6: Clip with inputs (opset 11) and with
    # attributes (opset 10)
    "mobilenet_v2_narrow": dict(model="mobilenet_v2_narrow", n=2, c=3, h=36, w=36, opset=11, dynamic=False),
    "mobilenet_v2_opset10": dict(model="mobilenet_v2_narrow", n=2, c=3, h=36, w=32, opset=10, dynamic=True),
    # MobileNetV3's squeeze-excite (Hardsigmoid gate) and hard-swish: x * HardSigmoid (opset 13)
    # and HardSwish (opset 17)
    "mobilenet_v3_small_narrow": dict(model="mobilenet_v3_small_narrow", n=2, c=3, h=40, w=36, opset=13, dynamic=True),
    "mobilenet_v3_large_narrow": dict(model="mobilenet_v3_large_narrow", n=2, c=3, h=36, w=40, opset=17, dynamic=False),
    # EfficientNet's MBConv: squeeze-excite with SiLU, stochastic depth (identity in eval)
    "efficientnet_narrow": dict(model="efficientnet_narrow", n=2, c=3, h=36, w=36, opset=16, dynamic=True),
    # SqueezeNet's fire modules (1x1 squeeze, 1x1 and 3x3 expand, Concat), ceil-mode max pools,
    # a conv classifier
    "squeezenet_narrow": dict(model="squeezenet_narrow", n=2, c=3, h=39, w=33, opset=12, dynamic=False),
    # ShuffleNetV2's channel shuffle (Reshape/Transpose) and its chunk (torch 1.13 writes
    # Shape/Gather/Div and two Slices) and cat
    "shufflenet_v2_narrow": dict(model="shufflenet_v2_narrow", n=2, c=3, h=40, w=36, opset=11, dynamic=False),
    # shuffle units that split with torch.split (ONNX Split, equal and unequal parts): Split
    # with its sizes as an attribute (opset 11) and as an input (opset 13)
    "splitmix": dict(model="splitmix", n=2, c=3, h=20, w=18, opset=11, dynamic=False),
    "splitmix_opset13": dict(model="splitmix", n=2, c=3, h=18, w=20, opset=13, dynamic=True),
    # DenseNet's dense layers (BN-ReLU-conv, Concat) and transitions (average pools)
    "densenet_narrow": dict(model="densenet_narrow", n=2, c=3, h=36, w=36, opset=14, dynamic=True),
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
    # body the fine-tuning test puts a new head on (Fashion-MNIST, 28x28); its weights are read
    # by the tests, so --commit writes weights.safetensors for it
    "tiny": dict(model="tiny", n=2, c=1, h=28, w=28, opset=13, dynamic="nhw", checkpoint=True),
}
# the cases whose files are in git (tests/fixtures/onnx/<case>/)
COMMITTED = list(CASES)[list(CASES).index("resnet_basic"):]
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
        self.fc1 = torch.nn.Linear(12 * 10 * 12, 16)
        self.fc2 = torch.nn.Linear(16, K)  # its bias is dropped after initialisation (build)
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


class NarrowResNet(torchvision.models.ResNet):
    """torchvision's ResNet (its blocks, _make_layer and forward, its names) with the stem and
    the four stages `widths` wide instead of 64-512: ResNet.__init__ fixes those."""

    def __init__(self, block, layers, widths, groups=1, width_per_group=64):
        torch.nn.Module.__init__(self)
        self._norm_layer = torch.nn.BatchNorm2d
        self.inplanes, self.dilation, self.groups, self.base_width = widths[0], 1, groups, width_per_group
        self.conv1 = torch.nn.Conv2d(3, widths[0], kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(widths[0])
        self.relu = torch.nn.ReLU(inplace=True)
        self.maxpool = torch.nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, widths[0], layers[0])
        self.layer2 = self._make_layer(block, widths[1], layers[1], stride=2)
        self.layer3 = self._make_layer(block, widths[2], layers[2], stride=2)
        self.layer4 = self._make_layer(block, widths[3], layers[3], stride=2)
        self.avgpool = torch.nn.AdaptiveAvgPool2d((1, 1))
        self.fc = torch.nn.Linear(widths[3] * block.expansion, K)


def narrow_mobilenet_v2():
    """torchvision's MobileNetV2 at width 0.25, its first four stages with two blocks each (the
    second an identity residual), and a last 1x1 conv of 32 channels instead of 1280."""
    setting = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 2, 2], [6, 64, 2, 2]]
    m = torchvision.models.MobileNetV2(num_classes=K, width_mult=0.25, inverted_residual_setting=setting)
    cin = m.features[-1][0].in_channels
    m.features[-1] = torchvision.ops.misc.Conv2dNormActivation(cin, 32, kernel_size=1, activation_layer=torch.nn.ReLU6)
    m.classifier[-1] = torch.nn.Linear(32, K)
    return m


def narrow_mobilenet_v3(arch, blocks):
    """torchvision's MobileNetV3 from its own configuration at width 0.25, the blocks `blocks`
    of it (each reads what the one before writes), a 32-wide classifier."""
    from torchvision.models.mobilenetv3 import MobileNetV3, _mobilenet_v3_conf

    setting, _ = _mobilenet_v3_conf(arch, width_mult=0.25)
    return MobileNetV3([setting[i] for i in blocks], last_channel=32, num_classes=K)


def narrow_efficientnet():
    """torchvision's EfficientNet-B0 configuration at width 0.25 and depth 0.5, its first four
    stages (the fourth of two blocks: an identity residual with stochastic depth)."""
    from torchvision.models.efficientnet import EfficientNet, _efficientnet_conf

    setting, last = _efficientnet_conf("efficientnet_b0", width_mult=0.25, depth_mult=0.5)
    return EfficientNet(setting[:4], dropout=0.2, num_classes=K, last_channel=last)


class NarrowSqueezeNet(torch.nn.Module):
    """SqueezeNet 1.1's layout with torchvision's Fire modules, a sixth of its width."""

    def __init__(self):
        super().__init__()
        from torchvision.models.squeezenet import Fire

        pool = lambda: torch.nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)  # noqa: E731
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(3, 16, kernel_size=3, stride=2),
            torch.nn.ReLU(inplace=True),
            pool(),
            Fire(16, 4, 8, 8),
            Fire(16, 4, 8, 8),
            pool(),
            Fire(16, 8, 16, 16),
            pool(),
            Fire(32, 8, 16, 16),
        )
        self.classifier = torch.nn.Sequential(
            torch.nn.Dropout(p=0.5),
            torch.nn.Conv2d(32, K, kernel_size=1),
            torch.nn.ReLU(inplace=True),
            torch.nn.AdaptiveAvgPool2d((1, 1)),
        )

    def forward(self, x):
        return torch.flatten(self.classifier(self.features(x)), 1)


class SplitMix(torch.nn.Module):
    """Shuffle units that split the channels with torch.split, into unequal and equal parts,
    with torchvision's channel_shuffle between them."""

    def __init__(self):
        super().__init__()
        bn = torch.nn.BatchNorm2d
        self.stem = torch.nn.Sequential(torch.nn.Conv2d(3, 12, 3, stride=2, padding=1, bias=False), bn(12), torch.nn.ReLU())
        self.branch1 = torch.nn.Sequential(
            torch.nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False), bn(8), torch.nn.Conv2d(8, 8, 1), torch.nn.ReLU()
        )
        self.branch2 = torch.nn.Sequential(torch.nn.Conv2d(6, 6, 3, padding=1, bias=False), bn(6), torch.nn.ReLU())
        self.fc = torch.nn.Linear(12, K)

    def forward(self, x):
        from torchvision.models.shufflenetv2 import channel_shuffle

        h = self.stem(x)
        a, b = torch.split(h, [4, 8], dim=1)
        h = channel_shuffle(torch.cat([a, self.branch1(b)], dim=1), 3)
        a, b = torch.split(h, 6, dim=1)
        h = channel_shuffle(torch.cat([self.branch2(a), b], dim=1), 2)
        return self.fc(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(h, 1), 1))


NARROW = {
    "resnet_basic": lambda: NarrowResNet(torchvision.models.resnet.BasicBlock, [1, 1, 1, 1], [8, 8, 16, 16]),
    "resnet_bottleneck": lambda: NarrowResNet(torchvision.models.resnet.Bottleneck, [2, 1, 1, 1], [8, 8, 16, 16]),
    # width_per_group 16: the bottleneck's 3x3 conv is `planes` wide, in 4 groups
    "resnext_grouped": lambda: NarrowResNet(
        torchvision.models.resnet.Bottleneck, [2, 1, 1, 1], [8, 8, 16, 16], groups=4, width_per_group=16
    ),
    "mobilenet_v2_narrow": narrow_mobilenet_v2,
    # the first five blocks: squeeze-excite with ReLU, then with hard-swish
    "mobilenet_v3_small_narrow": lambda: narrow_mobilenet_v3("mobilenet_v3_small", [0, 1, 2, 3, 4]),
    # plain blocks with ReLU, an identity residual, squeeze-excite with ReLU, hard-swish, and
    # squeeze-excite with hard-swish
    "mobilenet_v3_large_narrow": lambda: narrow_mobilenet_v3("mobilenet_v3_large", [0, 1, 2, 3, 6, 10]),
    "efficientnet_narrow": narrow_efficientnet,
    "squeezenet_narrow": NarrowSqueezeNet,
    # two blocks in the first two stages: the second of each splits its input (chunk)
    "shufflenet_v2_narrow": lambda: torchvision.models.ShuffleNetV2([2, 2, 1], [8, 16, 24, 32, 32], num_classes=K),
    "splitmix": SplitMix,
    "densenet_narrow": lambda: torchvision.models.DenseNet(
        growth_rate=4, block_config=(2, 2, 2, 2), num_init_features=8, bn_size=2, num_classes=K
    ),
}


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
    if case["model"] in NARROW:
        return initialize(NARROW[case["model"]](), SEED)
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
    args = sys.argv[1:]
    commit = args[:1] == ["--commit"]
    if commit:
        args = args[1:]
    if not args or args[0].startswith("-"):
        sys.exit(__doc__)
    out, names = args[0], args[1:] or (COMMITTED if commit else list(CASES))
    unknown = [n for n in names if n not in CASES]
    if unknown:
        sys.exit(f"unknown cases {unknown}: one of {list(CASES)}")
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
            if not commit or case.get("checkpoint", False):
                save_safetensors(os.path.join(d, "weights.safetensors"), m.state_dict())
            np.save(os.path.join(d, "x.npy"), x.numpy())
            np.save(os.path.join(d, "y.npy"), y.numpy())
            np.save(os.path.join(d, "logits.npy"), m(x).numpy())
            np.save(os.path.join(d, "logits_f64.npy"), m.double()(x.double()).float().numpy())
        meta = dict(format=FORMAT, case=name, opset=case["opset"], dynamic=case["dynamic"], n=case["n"], torch=torch.__version__)
        with open(os.path.join(d, "meta.json"), "w") as f:
            json.dump(meta, f)
            f.write("\n")
        weights = sum(p.numel() for p in m.parameters())
        print(f"{d}: written ({weights} parameters)")


if __name__ == "__main__":
    main()
