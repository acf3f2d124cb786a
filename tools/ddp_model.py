#!/usr/bin/env python3
"""Data-parallel scaling on paper: when do more GPUs pay?

For each model, the fp32 gradient bytes all-reduced per step (4 x parameters), the time a ring
all-reduce of them takes on p GPUs over a link of bandwidth B (bandwidth term 2(p-1)/p * S / B,
plus 2(p-1) latencies alpha), and that time against the one-GPU step time it must hide behind.
DDP overlaps the all-reduce with the backward (about 2/3 of a step), so the step stays compute
bound while the all-reduce fits in the backward; past that, the excess adds to every step.

Sources (BENCHMARKS.md cites them):
- parameters: torchvision model docs (resnet18 11,689,512; resnet50 25,557,032;
  mobilenet_v2 3,504,872);
- ResNet-50 one-GPU training, batch 256 per GPU: A100 938 img/s TF32, 2470 img/s AMP (NVIDIA
  DeepLearningExamples RN50 v1.5); ResNet-18 and MobileNetV2 scaled from it by timm's RTX 3090
  training-throughput ratios to ResNet-50 (3.35x and 2.22x);
- ring bandwidth term: nccl-tests doc/PERFORMANCE.md (busbw = algbw * 2(n-1)/n); NVLink: NCCL's
  measured all-reduce bus bandwidth on 8x A100, ~230 GB/s (nccl-tests issue 149).

Usage: python3 tools/ddp_model.py   (prints the Markdown table in BENCHMARKS.md)
"""

PARAMS = {"resnet18": 11_689_512, "resnet50": 25_557_032, "mobilenet_v2": 3_504_872}
RN50_A100_IMG_S = {"TF32": 938.0, "AMP": 2470.0}  # batch 256
RATIO_TO_RN50 = {"resnet18": 3.35, "resnet50": 1.0, "mobilenet_v2": 2.22}
BATCH = 256
LINKS = [  # name, bytes/s per direction, latency per hop (s)
    ("10 GbE", 10e9 / 8, 30e-6),
    ("25 GbE", 25e9 / 8, 30e-6),
    ("100 GbE", 100e9 / 8, 10e-6),
    ("NVLink (A100)", 230e9, 5e-6),
]
BACKWARD_SHARE = 2.0 / 3.0


def ring_seconds(nbytes, p, bw, alpha):
    return 2 * (p - 1) / p * nbytes / bw + 2 * (p - 1) * alpha


def main():
    print("| model | grad MB/step | link | ring all-reduce on 2 / 8 / 64 GPUs (ms) | A100 step TF32 / AMP (ms, bs 256) | 8-GPU speed-up TF32 / AMP |")
    print("|---|---|---|---|---|---|")
    for model, params in PARAMS.items():
        nbytes = 4 * params
        for link, bw, alpha in LINKS:
            t = [ring_seconds(nbytes, p, bw, alpha) for p in (2, 8, 64)]
            steps, speedups = [], []
            for prec in ("TF32", "AMP"):
                step = BATCH / (RN50_A100_IMG_S[prec] * RATIO_TO_RN50[model])
                # overlapped DDP: the all-reduce hides behind the backward (2/3 of a step); what
                # does not fit adds to the step
                step8 = max(step, (1 - BACKWARD_SHARE) * step + t[1])
                steps.append(f"{step * 1e3:.0f}")
                speedups.append(f"{8 * step / step8:.1f}x")
            print(
                f"| {model} | {nbytes / 1e6:.1f} | {link} | "
                f"{t[0] * 1e3:.1f} / {t[1] * 1e3:.1f} / {t[2] * 1e3:.1f} | "
                f"{' / '.join(steps)} | {' / '.join(speedups)} |"
            )


if __name__ == "__main__":
    main()
