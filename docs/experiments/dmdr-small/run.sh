#!/usr/bin/env bash
# The paper table of docs/experiments/dmdr-small/README.md: from the shipped small teacher, for
# each seed, the 1-step and 4-step DMD students (configs/dmd-1step.ini, dmd-4step.ini), then
# from the 1-step student's last checkpoint DMDR with reward backpropagation and with PPO, and
# the reward-only and reward + KL baselines (configs/dmdr-*.ini, reward-*.ini); every model
# measured by the held-out judge at 2000 samples (200 per class) with the run's seed, and the
# 1-step student at every 100 generator steps (the curve). The teacher rows come from
# ../small-teacher-12k (its seed 0) and from this script's teacher evaluations at seeds 1 and 2.
# About 30 minutes per seed on 2 CPU cores (2 threads, bf16 GEMMs); the study of section 2 is
# study.sh.
set -euo pipefail
cd "$(dirname "$0")/../../.."
DMDR=${DMDR:-build/tools/dmdr}
OUT=${OUT:-runs/dmdr-small}
SEEDS=${SEEDS:-0 1 2}
EXP=docs/experiments/dmdr-small
JUDGE=docs/experiments/heldout-judge/judge/classifier.safetensors
REWARD=docs/experiments/heldout-judge/reward-model/classifier.safetensors
TEACHER=docs/experiments/small-teacher-12k/model.safetensors
export OMP_WAIT_POLICY=passive
run=(--threads 2 --quiet true)
ev=(--classifier "$JUDGE" --reward-model "$REWARD" --per-class 200 --threads 2)
mkdir -p "$EXP/eval"
evaluate() { # model json seed [flags]
  [ -f "$2" ] || "$DMDR" eval "$1" "${ev[@]}" --seed "$3" "${@:4}" --json "$2"
}
for s in $SEEDS; do
  d="$OUT/seed$s"
  for row in dmd-1step dmd-4step; do
    [ -f "$d/$row/model.safetensors" ] ||
      "$DMDR" distill --config "configs/$row.ini" --seed "$s" --out "$d/$row" "${run[@]}"
  done
  init="$d/dmd-1step/checkpoints/step-000400.safetensors"
  for row in dmdr-backprop dmdr-ppo reward-only reward-kl; do
    [ -f "$d/$row/model.safetensors" ] ||
      "$DMDR" distill --config "configs/$row.ini" --init "$init" --seed "$s" --out "$d/$row" \
        "${run[@]}"
  done
  for row in dmd-1step dmd-4step dmdr-backprop dmdr-ppo reward-only reward-kl; do
    evaluate "$d/$row/model.safetensors" "$EXP/eval/$row-seed$s.json" "$s"
  done
  for step in 100 200 300; do
    evaluate "$d/dmd-1step/checkpoints/step-000$step.safetensors" \
      "$EXP/eval/dmd-1step-step$step-seed$s.json" "$s"
  done
done
# the teacher at seeds 1 and 2 (seed 0: ../small-teacher-12k/eval)
for s in 1 2; do
  for cfg in 1 1.5; do
    evaluate "$TEACHER" "$EXP/eval/teacher-euler50-cfg$cfg-seed$s.json" "$s" --steps 50 --cfg $cfg
  done
done
T=docs/experiments/small-teacher-12k/eval
seeds() { local r="$1" f=""; for s in 0 1 2; do f="$f${f:+,}$EXP/eval/$r-seed$s.json"; done; echo "$f"; }
"$DMDR" table \
  "teacher, 50 Euler steps=$T/euler50-cfg1.json,$EXP/eval/teacher-euler50-cfg1-seed1.json,$EXP/eval/teacher-euler50-cfg1-seed2.json" \
  "teacher, 50 Euler steps, CFG 1.5=$T/euler50-cfg1.5.json,$EXP/eval/teacher-euler50-cfg1.5-seed1.json,$EXP/eval/teacher-euler50-cfg1.5-seed2.json" \
  "DMD 1-step=$(seeds dmd-1step)" "DMD 4-step=$(seeds dmd-4step)" \
  "DMDR 1-step, reward backprop=$(seeds dmdr-backprop)" "DMDR 1-step, PPO=$(seeds dmdr-ppo)" \
  "reward only=$(seeds reward-only)" "reward + KL=$(seeds reward-kl)" --out "$EXP/table.md"
