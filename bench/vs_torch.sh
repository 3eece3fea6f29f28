#!/bin/bash
# dmdr's DiT training step against its PyTorch twin, same configuration, in one command:
#
#   bash bench/vs_torch.sh [--threads N] [--shapes small|base] [--batch N] [--dmdr PATH]
#
# Runs `dmdr bench --filter train_step --json` (defaults: 2 threads, the small preset at its
# batch of 64), then tools/torch/dit_train_step.py on the configuration that JSON names, and
# prints both figures and the ratio. libgomp's wait policy changes PyTorch's speed a lot on a
# loaded machine, so unless OMP_WAIT_POLICY is set the twin runs under both the default and
# passive policies and the faster one is compared (dmdr itself defaults to passive waits).
# Needs Debian's python3-torch (apt-get install python3-torch).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
threads=2 shapes=small batch="" dmdr=""
while [ $# -gt 0 ]; do
    case "$1" in
    --threads) threads=$2; shift 2 ;;
    --shapes) shapes=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --dmdr) dmdr=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "vs_torch.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
if [ -z "$dmdr" ]; then
    dmdr="$root/build/tools/dmdr"
fi
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
echo "== dmdr bench --threads $threads --shapes $shapes ${batch:+--batch $batch} --filter train_step"
"$dmdr" bench --threads "$threads" --shapes "$shapes" ${batch:+--batch "$batch"} \
    --filter train_step --json "$json"

twin=(/usr/bin/python3 "$root/tools/torch/dit_train_step.py" --compare "$json")
best=""
run_twin() { # $1: the OMP_WAIT_POLICY to run under, or "" for the environment's own
    echo
    echo "== PyTorch twin, OMP_WAIT_POLICY ${1:-${OMP_WAIT_POLICY:-default}}"
    local out
    if [ -n "$1" ]; then out=$(OMP_WAIT_POLICY=$1 "${twin[@]}"); else out=$("${twin[@]}"); fi
    echo "$out"
    local rate
    rate=$(echo "$out" | sed -n 's/^torch train_step: \([0-9.]*\) images\/s.*/\1/p')
    if [ -z "$best" ] || awk "BEGIN { exit !($rate > $best) }"; then best=$rate; fi
}
if [ -n "${OMP_WAIT_POLICY:-}" ]; then
    run_twin ""
else
    run_twin ""
    run_twin passive
fi

ours=$(/usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["train_step"]["images_per_s"])' "$json")
echo
awk -v ours="$ours" -v torch="$best" 'BEGIN {
    printf "summary: dmdr %.2f images/s, PyTorch %.2f images/s (its faster wait policy): %.2fx\n",
           ours, torch, ours / torch }'
