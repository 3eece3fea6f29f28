#!/usr/bin/env bash
# The student study of docs/experiments/dmdr-small/README.md, section 2: the 1-step student's
# judge figures every 100 generator steps under three settings, all from the shipped small
# teacher, seed 0, 2 threads, bf16 GEMMs, 400 generator steps of batch 32, TTUR ratio 5:
#   A  the small preset: the fake score is the teacher's PEFT-style LoRA (rank 16, alpha 16,
#      on attention's qkv and proj) at lr 1e-4, the generator at lr 1e-5
#   B  A with the generator's learning rate doubled (2e-5)
#   C  the DMDR authors' set-up: the LoRA on q and v only, rank 32, A ~ N(0, 1), no scaling,
#      and one learning rate (2e-5) for generator and fake score: configs/dmd-1step.ini, run
#      by run.sh (its seed 0)
# Then C's length: run.sh's seed-0 student continued in a copy from step 400 to 800.
# About 12 minutes a run on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/../../.."
DMDR=${DMDR:-build/tools/dmdr}
OUT=${OUT:-runs/dmdr-small-study}
EXP=docs/experiments/dmdr-small
JUDGE=docs/experiments/heldout-judge/judge/classifier.safetensors
REWARD=docs/experiments/heldout-judge/reward-model/classifier.safetensors
export OMP_WAIT_POLICY=passive
common=(--config configs/dmd-1step.ini --seed 0 --threads 2 --quiet true)
ev=(--classifier "$JUDGE" --reward-model "$REWARD" --per-class 200 --threads 2 --seed 0)
peft=(--lora-style peft --lora-rank 16 --lora-alpha 16 --fake-lr 1e-4)
judge_steps() { # run-dir name steps...
  local dir=$1 name=$2
  shift 2
  for step in "$@"; do
    local json="$EXP/eval/study-$name-step$step.json"
    [ -f "$json" ] ||
      "$DMDR" eval "$dir/checkpoints/step-000$step.safetensors" "${ev[@]}" --json "$json"
  done
}
study() { # name flags...
  local name=$1
  shift
  [ -f "$OUT/$name/model.safetensors" ] || "$DMDR" distill "${common[@]}" --out "$OUT/$name" "$@"
  judge_steps "$OUT/$name" "$name" 100 200 300 400
}
study A "${peft[@]}" --gen-lr 1e-5
study B "${peft[@]}" --gen-lr 2e-5

# C's length: DynaDG and DynaRS kept on their 200-step schedules (dyn_steps defaults to half
# the steps, which would restart them)
C=runs/dmdr-small/seed0/dmd-1step
if [ ! -f "$OUT/C-800/model.safetensors" ]; then
  rm -rf "$OUT/C-800"
  mkdir -p "$OUT/C-800"
  cp -r "$C/config.ini" "$C/metrics.jsonl" "$C/checkpoints" "$C/samples" "$OUT/C-800/"
  "$DMDR" distill --resume "$OUT/C-800/checkpoints/step-000400.safetensors" --steps 800 \
    --dyn-steps 200 --threads 2 --quiet true
fi
judge_steps "$OUT/C-800" C 500 600 700 800
