#!/usr/bin/env bash
# The GPU table in one command (no network): builds convoy, prints `convoy info`, runs
# `bench gemm` (with the copy kernel's bandwidth), the conv suite (forward, input and weight
# gradients), every tuner candidate of every conv pass at batch 8 and 32 on the GPU's clock
# (`bench conv --candidates`), and the model suite of
# ../shared/bench-suite.md, then ResNet-50 and MobileNetV2 (inference and a training step) at
# batch 32 and 64, tuned (CONVOY_TUNE=1), and the same shapes in PyTorch (CUDA when it has a GPU:
# TF32 off, TF32 on and AMP; else the CPU) in the same run. Writes the JSON of every run, a log
# and table.md under OUT (default target/gpu-bench). PyTorch's JSON files already in OUT are kept
# and their steps skipped (FRESH=1 reruns them).
#
#   tools/gpu_bench.sh [--quick] [OUT]
#
# --quick: the same steps on small shapes and one timed run each (a lavapipe machine in CI, so
# that the script cannot rot; under 3 minutes there); any failing step fails the script.
# Without it a failing or overlong step (STEP_TIMEOUT seconds, default 240) is logged in
# OUT/failed.txt and the rest still run, so that one broken row does not cost a GPU session its
# table.
#
# CONVOY_BIN: a convoy binary built elsewhere (a GPU machine without a Rust toolchain); else the
# script builds one. PYTHON: the Python with PyTorch; else the first of python3 and
# /usr/bin/python3 that imports torch.
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
declare -A started_pytorch
if [ "${1:-}" = "--quick" ]; then
  quick=1
  shift
fi
out="${1:-target/gpu-bench}"
mkdir -p "$out"
# PyTorch's results are kept (they do not change with convoy's commits): a rerun into the same
# OUT skips them unless FRESH=1
if [ "${FRESH:-0}" = 1 ]; then rm -f "$out"/*.json; else rm -f "$out"/convoy_*.json; fi
rm -f "$out/failed.txt"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
export CONVOY_TUNE="${CONVOY_TUNE:-1}"
if [ -n "${CONVOY_BIN:-}" ]; then
  convoy="$CONVOY_BIN"
else
  cargo build --release --bin convoy
  convoy=target/release/convoy
fi
python="${PYTHON:-}"
if [ -z "$python" ]; then
  for p in python3 /usr/bin/python3; do
    if "$p" -c 'import torch, torchvision' 2>/dev/null; then
      python=$p
      break
    fi
  done
fi

# step FILE CMD...: CMD's stdout appended to OUT/FILE (stderr to the terminal); PyTorch's
# files already there from an earlier run (same OUT) are kept and the step skipped
step() {
  local file=$1
  shift
  if [[ $file == pytorch_* ]] && [ -s "$out/$file" ] && [ -z "${started_pytorch[$file]:-}" ]; then
    echo "gpu_bench: kept $out/$file from an earlier run" >&2
    return
  fi
  [[ $file == pytorch_* ]] && started_pytorch[$file]=1
  echo "gpu_bench: $*" >&2
  if [ $quick = 1 ]; then
    "$@" >> "$out/$file"
  elif ! timeout "${STEP_TIMEOUT:-240}" "$@" >> "$out/$file"; then
    echo "failed or timed out ($?): $*" | tee -a "$out/failed.txt" >&2
  fi
}

$convoy info | tee "$out/info.txt"
if [ $quick = 1 ]; then
  step convoy_gemm.json $convoy bench gemm --json --gemm-size 512 --warmup 1 --iters 2
  step convoy_conv.json $convoy bench conv --json --gemm-size 512 --warmup 0 --iters 1 --filter r18_l4
  step convoy_conv_candidates_b2.json $convoy bench conv --json --candidates --gemm-size 512 --warmup 0 --iters 1 \
    --filter r18_l4 --batch 2
  step convoy_models.json $convoy bench models --json --fusion on --warmup 0 --iters 1 --model resnet18 --batch 2 \
    --size 32 --classes 10 --precision both
  : > "$out/convoy_models_large.json"
else
  # on the first H200 run two of the conv suite's forward rows (r18_l1, r18_down) read 3.5-4x
  # slower than in the next call and the others matched (BENCHMARKS.md): clocks ramping from
  # idle, or the tuner timing candidates on a cold GPU. Warming it for ~20 s before anything is
  # timed rules out the first (1,500 GEMM rounds there; capped at 30 s elsewhere)
  echo "gpu_bench: warming the GPU" >&2
  timeout 30 $convoy bench gemm --iters 1500 --warmup 0 > /dev/null || true
  step convoy_gemm.json $convoy bench gemm --json --iters 20
  step convoy_conv.json $convoy bench conv --json --iters 20
  # every tuner candidate of every pass, on the GPU's clock (one submission per candidate); at
  # batch 32 also mixed precision's passes (*_f16), whose candidates lead with the tensor-core
  # tiles where the GPU has them
  step convoy_conv_candidates_b8.json $convoy bench conv --json --candidates --iters 10 --batch 8
  step convoy_conv_candidates_b32.json $convoy bench conv --json --candidates --f16 --iters 10 --batch 32
  step convoy_models.json $convoy bench models --json --fusion on --iters 20
  : > "$out/convoy_models_large.json"
  for batch in 32 64; do
    for model in resnet50 mobilenet_v2; do
      # f32, then mixed precision (its rows beside PyTorch AMP's)
      step convoy_models_large.json $convoy bench models --json --fusion on --iters 10 --model $model --batch $batch \
        --precision both
    done
  done
  # mixed precision with the tensor cores off: what the cooperative-matrix tiles give
  CONVOY_COOP_MATRIX=0 step convoy_models_fma.json $convoy bench models --json --fusion on --iters 10 \
    --model resnet50 --batch 32 --precision mixed
fi

# PyTorch on the same machine: CUDA (cuDNN) if it has a GPU, else the CPU
device=none
[ -n "$python" ] && device=$($python -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")')
if [ "$device" = none ]; then
  echo "gpu_bench: no PyTorch with torchvision; the table has convoy's side only" >&2
elif [ $quick = 1 ]; then
  step pytorch_conv_fp32.json $python tools/bench_pytorch.py --device "$device" --warmup 0 --iters 1
else
  modes=(fp32)
  [ "$device" = cuda ] && modes+=(tf32 amp)
  for mode in "${modes[@]}"; do
    flag=()
    [ $mode = tf32 ] && flag=(--tf32)
    [ $mode = amp ] && flag=(--amp)
    bench=($python tools/bench_pytorch.py --device "$device" "${flag[@]}")
    step pytorch_conv_$mode.json "${bench[@]}" --iters 20
    step pytorch_models_$mode.json "${bench[@]}" --iters 20 --models
    for batch in 32 64; do
      step pytorch_models_$mode.json "${bench[@]}" --iters 10 --large --batch $batch
    done
  done
fi
[ -n "$python" ] || python=python3
$python tools/gpu_bench_table.py "$out" > "$out/table.md"
cat "$out/table.md"
