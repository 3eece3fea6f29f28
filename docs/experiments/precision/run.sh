#!/usr/bin/env bash
# bf16 against fp32 (docs/experiments/precision/README.md): the small teacher trained for the
# same 1000 steps from the same seed in each precision, seeds 0 and 1, and one 1-step DMD run
# of 100 generator steps from the shipped teacher in each. The two precisions run side by side,
# one thread each, so they share the machine alike. Every sample for the judge is drawn in
# fp32, so the figures compare the weights the two precisions trained. About an hour on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/../../.."
DMDR=${DMDR:-build/tools/dmdr}
OUT=${OUT:-runs/precision}
TEACHER=docs/experiments/small-teacher/model.safetensors
JUDGE=docs/experiments/judge/classifier.safetensors
export OMP_WAIT_POLICY=passive
teach=(train-teacher --preset small --steps 1000 --threads 1 --quiet true --sample-every 1000
       --checkpoint-every 1000)
dmd=(distill --preset small --teacher "$TEACHER" --steps 100 --threads 1 --quiet true
     --sample-every 100 --checkpoint-every 100)

( "$DMDR" "${teach[@]}" --precision fp32 --seed 0 --out "$OUT/teacher-fp32-seed0"
  "$DMDR" "${teach[@]}" --precision fp32 --seed 1 --out "$OUT/teacher-fp32-seed1" ) &
( "$DMDR" "${teach[@]}" --precision bf16 --seed 0 --out "$OUT/teacher-bf16-seed0"
  "$DMDR" "${teach[@]}" --precision bf16 --seed 1 --out "$OUT/teacher-bf16-seed1"
  "$DMDR" "${dmd[@]}" --precision bf16 --out "$OUT/dmd-bf16"
  "$DMDR" "${dmd[@]}" --precision fp32 --out "$OUT/dmd-fp32" ) &
wait

# the judge: 100 samples per class (1000), 50 Euler steps without CFG for the teachers, seed 0.
# A teacher's raw weights at its last step (--ema false): after 1000 steps an EMA of decay
# 0.999 still holds 0.999^1000 = 37% of the initial weights, and samples at chance accuracy.
mkdir -p "$OUT/eval"
ev=(--classifier "$JUDGE" --per-class 100 --threads 2 --precision fp32)
for run in teacher-fp32-seed0 teacher-bf16-seed0 teacher-fp32-seed1 teacher-bf16-seed1; do
  "$DMDR" eval "$OUT/$run/checkpoints/step-001000.safetensors" "${ev[@]}" --ema false \
    --steps 50 --cfg 1 --json "$OUT/eval/$run.json"
done
for run in dmd-fp32 dmd-bf16; do
  "$DMDR" eval "$OUT/$run/model.safetensors" "${ev[@]}" --json "$OUT/eval/$run.json"
done
