#!/usr/bin/env bash
# Device call of 2026-12-04 (second session): the gpu family's strided input gradient through
# the block forward phase by phase (32ae650), predicted 6-10x on r18_down's bwd_data; the f32
# conv suite and the ResNet training steps, to set beside run1 (012eb6c's binary).
set -u
r=$OUT/r; mkdir -p $r
export XDG_RUNTIME_DIR=/tmp PYTHON=python3
B=.devbin/convoy
chmod +x .devbin/* || true
start=$(date +%s)
$B info > $r/info.txt 2>&1
if ! grep -qi nvidia $r/info.txt; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  $B info > $r/info.txt 2>&1
fi
head -5 $r/info.txt
timeout 25 $B bench gemm --iters 1000 --warmup 0 > /dev/null 2>&1
echo "warm $(( $(date +%s) - start )) s"
timeout 120 $B bench conv --json --iters 20 > $r/convoy_conv.json 2> $r/conv_err.txt
echo "conv rc $? at $(( $(date +%s) - start )) s"
timeout 100 $B bench models --json --fusion on --iters 10 --model resnet50 --batch 32 > $r/models_r50_b32.json 2> $r/models_err.txt
echo "r50 rc $? at $(( $(date +%s) - start )) s"
timeout 60 $B bench models --json --fusion on --iters 10 --model resnet18 --batch 8 > $r/models_r18_b8.json 2>> $r/models_err.txt
echo "r18 rc $? at $(( $(date +%s) - start )) s"
python3 - $r <<'PY'
import json, sys
r = sys.argv[1]
for f in ('convoy_conv', 'models_r50_b32', 'models_r18_b8'):
    try: d = json.load(open(r + '/' + f + '.json'))
    except Exception as e: print(f, e); continue
    for x in d['results']:
        print(x['name'], x.get('pass', ''), x.get('batch'), x['ms'], round(x.get('gflops', x.get('images_per_sec', 0)), 1))
PY
tail -5 $r/conv_err.txt $r/models_err.txt
echo "total $(( $(date +%s) - start )) s"
