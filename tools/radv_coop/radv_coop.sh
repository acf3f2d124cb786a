#!/usr/bin/env bash
# radv_stats for the cooperative-matrix kernels: ../shared/tools/radv_stats/radv_stats.sh's Mesa 25
# null device (run that once first: it fetches Mesa into $RADV_STATS_HOME), with vkstat_coop,
# which enables VK_KHR_cooperative_matrix and requires 32-wide subgroups.
#
#   tools/radv_coop/radv_coop.sh SHADER.spv [BINDINGS]     (BINDINGS as radv_stats.sh's)
#
# Compile the WGSL first with naga (the variant's source: kernels::shaders::cooperative_variant).
# Each run is cut at RADV_COOP_TIMEOUT seconds (default 120): Mesa 25.0 never finished the
# cooperative variants (BENCHMARKS.md, nineteenth session).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
home=${RADV_STATS_HOME:-$HOME/.cache/radv_stats}
[ -f "$home/mesa25/radv.json" ] || { echo "run ../shared/tools/radv_stats/radv_stats.sh once first" >&2; exit 1; }
if [ ! -x "$home/vkstat_coop" ] || [ "$here/vkstat_coop.c" -nt "$home/vkstat_coop" ]; then
  cc -O1 -o "$home/vkstat_coop" "$here/vkstat_coop.c" -lvulkan
fi
binds=${2:-ssssssss}
VKSTAT_WAVE32=1 RADV_FORCE_FAMILY=${RADV_FORCE_FAMILY:-navi31} VK_ICD_FILENAMES="$home/mesa25/radv.json" \
  timeout "${RADV_COOP_TIMEOUT:-120}" "$home/vkstat_coop" "$1" main "${#binds}" "$binds" 2> >(grep -v 'invalid pci bus info' >&2)
