#!/usr/bin/env bash
# The longer small teacher of docs/experiments/small-teacher-12k/README.md: the small DiT
# (patch 4, hidden 192, depth 6) for 12000 steps of batch 64 (12.8 epochs, 2.4x the first
# shipped teacher's 5000), bf16 GEMMs, on two ranks of one thread (docs/distributed.md), then
# the held-out judge at 2000 samples on checkpoints 4000 and 8000 and on the final EMA weights
# (50 Euler steps, no CFG; the final also with CFG 1.5). About 1 h 20 min of training and
# 40 min of evaluation on 2 CPU cores. The run was made as 2000 steps of a 24000-step
# schedule, then resumed with --steps 12000 (the cosine then ends at 12000; at step 2000 the
# two schedules' learning rates differ by 1%).
set -euo pipefail
cd "$(dirname "$0")/../../.."
DMDR=${DMDR:-build/tools/dmdr}
OUT=${OUT:-runs/small-teacher-12k}
export OMP_WAIT_POLICY=passive
MPIRUN=(mpirun --oversubscribe -np 2) # as root: also --allow-run-as-root

"${MPIRUN[@]}" "$DMDR" train-teacher --preset small --steps 12000 --checkpoint-every 2000 \
  --sample-every 4000 --threads 1 --precision bf16 --out "$OUT"

JUDGE=docs/experiments/heldout-judge/judge/classifier.safetensors
REWARD=docs/experiments/heldout-judge/reward-model/classifier.safetensors
ev=(--classifier "$JUDGE" --reward-model "$REWARD" --per-class 200 --steps 50 --threads 1)
mkdir -p "$OUT/eval"
for step in 004000 008000; do
  "${MPIRUN[@]}" "$DMDR" eval "$OUT/checkpoints/step-$step.safetensors" "${ev[@]}" --cfg 1 \
    --json "$OUT/eval/step$step-euler50-cfg1.json"
done
for cfg in 1 1.5; do
  "${MPIRUN[@]}" "$DMDR" eval "$OUT/model.safetensors" "${ev[@]}" --cfg $cfg \
    --json "$OUT/eval/euler50-cfg$cfg.json"
done
for cfg in 1 1.5; do
  "$DMDR" sample "$OUT/model.safetensors" --steps 50 --cfg $cfg --out "$OUT/final-euler50-cfg$cfg.png"
done
"$DMDR" report "$OUT"
