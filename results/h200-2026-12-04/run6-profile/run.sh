#!/usr/bin/env bash
# Why r18_down's input gradient gained 2.2x and not 6-10x: the tuner's choices for it, and a
# per-dispatch profile of the ResNet-50 training step (batch 32) beside run3's.
set -u
r=$OUT/r; mkdir -p $r
export XDG_RUNTIME_DIR=/tmp PYTHON=python3
B=.devbin/convoy
chmod +x .devbin/* || true
start=$(date +%s)
timeout 20 $B bench gemm --iters 800 --warmup 0 > /dev/null 2>&1
CONVOY_DEBUG=1 timeout 40 $B bench conv --filter r18_down --iters 20 > $r/conv_r18_down.txt 2> $r/conv_r18_down_debug.txt
echo "conv rc $? at $(( $(date +%s) - start )) s"; cat $r/conv_r18_down.txt
grep -iE "tun|phase|scatter|chose|pick" $r/conv_r18_down_debug.txt | head -40
timeout 60 $B bench models --profile --model resnet50 --batch 32 --fusion on --filter train --warmup 1 --iters 3 > $r/profile_r50_train.txt 2>&1
echo "profile rc $? at $(( $(date +%s) - start )) s"; head -45 $r/profile_r50_train.txt
