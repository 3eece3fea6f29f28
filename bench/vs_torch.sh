#!/bin/bash
# dmdr's DiT training step against its PyTorch twin, same configuration, in one command:
#
#   bash bench/vs_torch.sh [--threads N] [--shapes small|base] [--batch N] [--repeat N]
#                          [--precision fp32|bf16|both] [--dmdr PATH]
#
# Runs `dmdr bench --filter train_step --json` (defaults: 2 threads, the small preset at its
# batch of 64, both precisions), then tools/torch/dit_train_step.py on the configuration that
# JSON names, in each precision: fp32 against PyTorch fp32, bf16 against PyTorch under
# torch.autocast('cpu', dtype=torch.bfloat16) (whose GEMMs run on oneDNN too). Each side's
# figure is its median step; the sides alternate --repeat times (default 2) and each keeps its
# best median, so a burst of other work on a shared machine slows one round, not the
# comparison. libgomp's wait policy changes PyTorch's speed a lot on a loaded machine, so
# unless OMP_WAIT_POLICY is set the twin runs under both the default and passive policies
# (dmdr itself defaults to passive waits).
# Needs Debian's python3-torch (apt-get install python3-torch).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
threads=2 shapes=small batch="" repeat=2 precision=both dmdr="$root/build/tools/dmdr"
while [ $# -gt 0 ]; do
    case "$1" in
    --threads) threads=$2; shift 2 ;;
    --shapes) shapes=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    --precision) precision=$2; shift 2 ;;
    --dmdr) dmdr=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "vs_torch.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
case "$precision" in
fp32|bf16) precisions=$precision ;;
both) precisions="fp32 bf16" ;;
*) echo "vs_torch.sh: --precision expects fp32, bf16 or both, got '$precision'" >&2; exit 2 ;;
esac
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
declare -A ours torch
max() { awk -v a="$1" -v b="$2" 'BEGIN { print (a == "" || b > a) ? b : a }'; }
key() { if [ "$1" = bf16 ]; then echo train_step_bf16; else echo train_step; fi; }

run_twin() { # $1: precision; $2: the OMP_WAIT_POLICY to run under, or "" for the environment's
    local twin=(/usr/bin/python3 "$root/tools/torch/dit_train_step.py" --compare "$json"
                --precision "$1") out
    echo "== PyTorch twin, $1, OMP_WAIT_POLICY ${2:-${OMP_WAIT_POLICY:-default}}"
    if [ -n "$2" ]; then out=$(OMP_WAIT_POLICY=$2 "${twin[@]}"); else out=$("${twin[@]}"); fi
    echo "$out"
    torch[$1]=$(max "${torch[$1]:-}" \
        "$(echo "$out" | sed -n "s/^torch $(key "$1"): \([0-9.]*\) images.*/\1/p")")
}

for round in $(seq 1 "$repeat"); do
    echo "== round $round of $repeat: dmdr bench --threads $threads --shapes $shapes" \
         "${batch:+--batch $batch }--filter train_step --precision $precision"
    out=$("$dmdr" bench --threads "$threads" --shapes "$shapes" ${batch:+--batch "$batch"} \
        --filter train_step --precision "$precision" --json "$json")
    echo "$out" | grep -E '^(bench:|machine|shapes|ceilings|train_step)'
    for p in $precisions; do
        got=$(/usr/bin/python3 -c 'import json, sys
step = json.load(open(sys.argv[1])).get(sys.argv[2])
print(step["images_per_s"] if step else "")' "$json" "$(key "$p")")
        if [ -z "$got" ]; then
            echo "vs_torch.sh: dmdr measured no $(key "$p") (see the bench line above)" >&2
            exit 1
        fi
        ours[$p]=$(max "${ours[$p]:-}" "$got")
        run_twin "$p" ""
        if [ -z "${OMP_WAIT_POLICY:-}" ]; then run_twin "$p" passive; fi
    done
    echo
done

echo "summary (best median of $repeat rounds each):"
for p in $precisions; do
    awk -v p="$p" -v ours="${ours[$p]}" -v torch="${torch[$p]}" 'BEGIN {
        printf "  %-4s dmdr %.2f images/s, PyTorch %.2f images/s: %.2fx\n", p, ours, torch,
               ours / torch }'
done
if [ "$precision" = both ]; then
    awk -v a="${ours[bf16]}" -v b="${ours[fp32]}" -v t="${torch[fp32]}" -v tb="${torch[bf16]}" \
        'BEGIN { printf "  dmdr bf16 / dmdr fp32 %.2fx; dmdr bf16 / PyTorch fp32 %.2fx; " \
                        "PyTorch bf16 / PyTorch fp32 %.2fx\n", a / b, a / t, tb / t }'
fi
