#!/bin/bash
# Which fp32 GEMM library is faster at each GEMM shape the models make: OpenBLAS's cblas_sgemm
# or oneDNN's fp32 matmul. The measurements behind the routing rule in kernels/cpu/matmul.c.
#
#   bash bench/onednn_routes.sh [--threads N] [--dmdr PATH]
#
# Runs `dmdr bench --filter gemm --precision fp32` (the DiT's linear layers, adaLN, patch
# embedding, and a UNet 3x3 convolution) for the small preset at its training batch (64) and at
# the distillation batch (32), and for the base preset at its batch (128), once with
# DMDR_ONEDNN=0 (every fp32 GEMM on OpenBLAS) and once with DMDR_ONEDNN=fp32 (every one on
# oneDNN), alternating twice and keeping each side's best, then prints both rates per shape.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
threads=2 dmdr="$root/build/tools/dmdr"
while [ $# -gt 0 ]; do
    case "$1" in
    --threads) threads=$2; shift 2 ;;
    --dmdr) dmdr=$2; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "onednn_routes.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
dir=$(mktemp -d /tmp/onednn-routes-XXXXXX)
trap 'rm -rf "$dir"' EXIT
for round in 1 2; do
    for run in "small 64" "small 32" "base 128"; do
        set -- $run
        for lib in 0 fp32; do
            DMDR_ONEDNN=$lib "$dmdr" bench --threads "$threads" --shapes "$1" --batch "$2" \
                --filter gemm --precision fp32 --json "$dir/$1-$2-$lib-$round.json" >/dev/null
        done
    done
done
/usr/bin/python3 - "$dir" <<'PY'
import glob, json, os, sys
best = {}
for path in glob.glob(os.path.join(sys.argv[1], "*.json")):
    preset, batch, lib, _ = os.path.basename(path)[:-5].split("-")
    report = json.load(open(path))
    for k in report["kernels"]:
        key = (preset, int(batch), k["name"], k["shape"])
        side = "openblas" if lib == "0" else "onednn"
        best.setdefault(key, {})[side] = max(best.get(key, {}).get(side, 0), k["gflops"])
print(f"{'preset':6} {'batch':>5} {'gemm':22} {'shape':34} {'OpenBLAS':>9} {'oneDNN':>9} "
      f"{'oneDNN/OpenBLAS':>16}")
for key in sorted(best):
    r = best[key]
    print(f"{key[0]:6} {key[1]:5d} {key[2]:22} {key[3]:34} {r['openblas']:9.1f} "
          f"{r['onednn']:9.1f} {r['onednn'] / r['openblas']:16.2f}")
PY
