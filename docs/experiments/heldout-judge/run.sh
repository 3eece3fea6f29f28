#!/usr/bin/env bash
# The held-out judge and the reward model of docs/experiments/heldout-judge/README.md: two
# classifiers on disjoint parts of the 60000 Fashion-MNIST training images, then the real-image
# floor and the shipped small teacher measured by the judge at 2000 samples (200 per class).
# About 1 h 40 min on 2 CPU cores (the judge is most of it).
set -euo pipefail
cd "$(dirname "$0")/../../.."
DMDR=${DMDR:-build/tools/dmdr}
OUT=${OUT:-runs/heldout-judge}
export OMP_WAIT_POLICY=passive
MPIRUN=(mpirun --oversubscribe -np 2) # as root: also --allow-run-as-root

# the reward model: the small preset's plain CNN (width 16, 474,842 parameters) on the FIRST
# 10000 training images only, 16 epochs
"$DMDR" train-classifier --train-examples 10000 --epochs 16 --threads 1 --out "$OUT/reward-model"

# the judge: ResNet basic blocks (width 32, 2,294,026 parameters) on the OTHER 50000 images,
# 12 epochs with 2-pixel shifts; two ranks of one thread (docs/distributed.md), the same
# weights as one process up to rounding
"${MPIRUN[@]}" "$DMDR" train-classifier --residual 1 --width 32 --hidden 256 --train-offset 10000 \
  --epochs 12 --shift 2 --threads 1 --out "$OUT/judge"

JUDGE="$OUT/judge/classifier.safetensors"
REWARD="$OUT/reward-model/classifier.safetensors"
mkdir -p "$OUT/eval"
ev=(--classifier "$JUDGE" --reward-model "$REWARD" --per-class 200 --threads 1)
"${MPIRUN[@]}" "$DMDR" eval --real "${ev[@]}" --json "$OUT/eval/real.json"
TEACHER=docs/experiments/small-teacher/model.safetensors
for cfg in 1 1.5; do
  "${MPIRUN[@]}" "$DMDR" eval "$TEACHER" "${ev[@]}" --steps 50 --cfg $cfg \
    --json "$OUT/eval/small-teacher-euler50-cfg$cfg.json"
done
"$DMDR" table "teacher (shipped small), Euler 50, no CFG=$OUT/eval/small-teacher-euler50-cfg1.json" \
  "teacher (shipped small), Euler 50, CFG 1.5=$OUT/eval/small-teacher-euler50-cfg1.5.json"
