#!/usr/bin/env bash
# The GPU table in one command (no network): builds convoy, prints `convoy info`, runs
# `bench gemm`, the conv suite (forward, input and weight gradients) and the model suite of
# ../shared/bench-suite.md, then ResNet-50 (inference and a training step) and MobileNetV2
# inference at batch 32 and 64, tuned (CONVOY_TUNE=1), and the same shapes in PyTorch (CUDA when
# it has a GPU: TF32 off and on; else the CPU) in the same run. Writes the JSON of every run and
# table.md under OUT (default target/gpu-bench).
#
#   tools/gpu_bench.sh [--quick] [OUT]
#
# --quick: the same steps on small shapes and one timed run each (a lavapipe machine in CI, so
# that the script cannot rot; under 3 minutes there).
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
if [ "${1:-}" = "--quick" ]; then
  quick=1
  shift
fi
out="${1:-target/gpu-bench}"
mkdir -p "$out"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
export CONVOY_TUNE="${CONVOY_TUNE:-1}"
cargo build --release --bin convoy
convoy=target/release/convoy
python=/usr/bin/python3

$convoy info | tee "$out/info.txt"
if [ $quick = 1 ]; then
  $convoy bench gemm --json --gemm-size 512 --warmup 1 --iters 2 > "$out/convoy_gemm.json"
  $convoy bench conv --json --gemm-size 512 --warmup 0 --iters 1 --filter r18_l4 > "$out/convoy_conv.json"
  $convoy bench models --json --fusion on --warmup 0 --iters 1 --model resnet18 --batch 2 --size 32 --classes 10 \
    > "$out/convoy_models.json"
  : > "$out/convoy_models_large.json"
else
  $convoy bench gemm --json --iters 20 > "$out/convoy_gemm.json"
  $convoy bench conv --json --iters 20 > "$out/convoy_conv.json"
  $convoy bench models --json --fusion on --iters 20 > "$out/convoy_models.json"
  : > "$out/convoy_models_large.json"
  for batch in 32 64; do
    for model in resnet50 mobilenet_v2; do
      $convoy bench models --json --fusion on --iters 10 --model $model --batch $batch >> "$out/convoy_models_large.json"
    done
  done
fi

# PyTorch on the same machine: CUDA (cuDNN) if it has a GPU, else the CPU
device=$($python -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")' 2>/dev/null || echo none)
rm -f "$out"/pytorch_*.json
if [ "$device" = none ]; then
  echo "gpu_bench: no PyTorch (python3-torch); the table has convoy's side only" >&2
elif [ $quick = 1 ]; then
  $python tools/bench_pytorch.py --device "$device" --warmup 0 --iters 1 > "$out/pytorch_conv_fp32.json"
else
  modes=(fp32)
  [ "$device" = cuda ] && modes+=(tf32)
  for mode in "${modes[@]}"; do
    flag=""
    [ $mode = tf32 ] && flag="--tf32"
    $python tools/bench_pytorch.py --device "$device" $flag --iters 20 > "$out/pytorch_conv_$mode.json"
    $python tools/bench_pytorch.py --device "$device" $flag --iters 20 --models > "$out/pytorch_models_$mode.json"
  done
fi
$python tools/gpu_bench_table.py "$out" > "$out/table.md"
cat "$out/table.md"
