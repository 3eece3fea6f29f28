#!/bin/bash
# dmdr's DiT training step against its PyTorch twin, same configuration, in one command:
#
#   bash bench/vs_torch.sh [--threads N] [--shapes small|base] [--batch N] [--repeat N]
#                          [--dmdr PATH]
#
# Runs `dmdr bench --filter train_step --json` (defaults: 2 threads, the small preset at its
# batch of 64), then tools/torch/dit_train_step.py on the configuration that JSON names, and
# prints both and the ratio. Each side's figure is its median step; the two alternate --repeat
# times (default 2) and each side keeps its best median, so a burst of other work on a shared
# machine slows one round, not the comparison. libgomp's wait policy changes PyTorch's speed a
# lot on a loaded machine, so unless OMP_WAIT_POLICY is set the twin runs under both the
# default and passive policies (dmdr itself defaults to passive waits).
# Needs Debian's python3-torch (apt-get install python3-torch).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
threads=2 shapes=small batch="" repeat=2 dmdr="$root/build/tools/dmdr"
while [ $# -gt 0 ]; do
    case "$1" in
    --threads) threads=$2; shift 2 ;;
    --shapes) shapes=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    --dmdr) dmdr=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "vs_torch.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
if [ ! -x "$dmdr" ]; then
    echo "vs_torch.sh: no dmdr binary at $dmdr: build it (meson setup build && ninja -C build)" \
         "or pass --dmdr PATH" >&2
    exit 1
fi
if ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    echo "vs_torch.sh: /usr/bin/python3 cannot import torch: apt-get install python3-torch" >&2
    exit 1
fi

json=$(mktemp /tmp/vs-torch-XXXXXX.json)
trap 'rm -f "$json"' EXIT
ours="" torch=""
max() { awk -v a="$1" -v b="$2" 'BEGIN { print (a == "" || b > a) ? b : a }'; }

run_twin() { # $1: the OMP_WAIT_POLICY to run under, or "" for the environment's own
    local twin=(/usr/bin/python3 "$root/tools/torch/dit_train_step.py" --compare "$json") out
    echo "== PyTorch twin, OMP_WAIT_POLICY ${1:-${OMP_WAIT_POLICY:-default}}"
    if [ -n "$1" ]; then out=$(OMP_WAIT_POLICY=$1 "${twin[@]}"); else out=$("${twin[@]}"); fi
    echo "$out"
    torch=$(max "$torch" "$(echo "$out" | sed -n 's/^torch train_step: \([0-9.]*\) images.*/\1/p')")
}

for round in $(seq 1 "$repeat"); do
    echo "== round $round of $repeat: dmdr bench --threads $threads --shapes $shapes" \
         "${batch:+--batch $batch }--filter train_step"
    "$dmdr" bench --threads "$threads" --shapes "$shapes" ${batch:+--batch "$batch"} \
        --filter train_step --json "$json" | grep -E '^(machine|shapes|ceilings|train_step  )'
    ours=$(max "$ours" "$(/usr/bin/python3 -c 'import json, sys
print(json.load(open(sys.argv[1]))["train_step"]["images_per_s"])' "$json")")
    run_twin ""
    if [ -z "${OMP_WAIT_POLICY:-}" ]; then run_twin passive; fi
    echo
done

awk -v ours="$ours" -v torch="$torch" -v n="$repeat" 'BEGIN {
    printf "summary (best median of %d rounds each): dmdr %.2f images/s, PyTorch %.2f images/s: " \
           "%.2fx\n", n, ours, torch, ours / torch }'
