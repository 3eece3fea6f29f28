#!/usr/bin/env bash
# The CUDA backend on a real GPU, in one call (issue 18): about 8 minutes on an H200.
#   bash bench/gpu_check.sh OUT_DIR
# Uses gpu-bundle.tar.xz when present (bench/gpu_bundle.sh: binaries, libraries, data built on
# a Debian machine), else builds build-gpu here. Then, each step under a time limit, logs in
# OUT_DIR/<step>.log and one line per step in OUT_DIR/summary.txt:
#   1. the kernel, tensor, parity and data suites (every backend against the CPU reference);
#   2. compute-sanitizer memcheck, racecheck, synccheck and initcheck on the kernel suite;
#   3. dmdr bench --device cuda --shapes base in fp32, TF32 and bf16 (GEMM against cuBLAS's
#      ceiling, the train step end to end), each with its PyTorch twin on the same GPU;
#   4. the base teacher for 300 steps and 30 distillation steps from it: images/s and losses.
# Without a GPU it builds (or unpacks) and then skips every GPU step, exiting 0.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?usage: bash bench/gpu_check.sh OUT_DIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
summary="$out/summary.txt"
: > "$summary"
say() { echo "$*" | tee -a "$summary"; }
cd "$root"
start=$(date +%s)

# ---- the binaries --------------------------------------------------------------------------
if [ -f gpu-bundle.tar.xz ]; then
    tar -xJf gpu-bundle.tar.xz
    bin=$root/gpu-bundle/bin
    export LD_LIBRARY_PATH="$root/gpu-bundle/lib:/usr/local/cuda/lib64:/usr/local/cuda/lib:${LD_LIBRARY_PATH:-}"
    if [ ! -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
        mkdir -p /usr/share/datasets/fashion-mnist 2>/dev/null &&
            cp gpu-bundle/data/*.gz /usr/share/datasets/fashion-mnist/ 2>/dev/null ||
            say "note: cannot install the dataset in /usr/share/datasets (the data suite skips)"
    fi
    say "build: gpu-bundle.tar.xz ($(ls gpu-bundle/lib | wc -l) libraries)"
else
    if [ ! -f build-gpu/build.ninja ]; then
        meson setup build-gpu --buildtype=release -Dcuda=auto >"$out/build.log" 2>&1 ||
            { say "build: meson setup failed (see build.log)"; exit 1; }
    fi
    meson compile -C build-gpu >>"$out/build.log" 2>&1 || { say "build: failed (see build.log)"; exit 1; }
    mkdir -p build-gpu/bin
    ln -sf ../tools/dmdr build-gpu/bin/dmdr
    for s in kernels tensor parity data; do ln -sf ../test/test_$s build-gpu/bin/test_$s; done
    bin=$root/build-gpu/bin
    say "build: build-gpu"
fi
"$bin/dmdr" --version >>"$summary" 2>&1 || { say "build: dmdr does not start"; exit 1; }

if ! nvidia-smi -L >"$out/gpu.txt" 2>&1 || ! grep -q GPU "$out/gpu.txt"; then
    say "no GPU: every GPU step skipped"
    exit 0
fi
say "gpu: $(head -1 "$out/gpu.txt")"
export CK_DEFAULT_TIMEOUT=600 OMP_WAIT_POLICY=passive DMDR_FIXTURES="$root/test/fixtures"
export DMDR_CACHE_DIR="$out/cache"

# step NAME LIMIT_S COMMAND...: runs it with its log, one summary line with the outcome
step() {
    local name=$1 limit=$2; shift 2
    local t0=$(date +%s)
    timeout "$limit" "$@" >"$out/$name.log" 2>&1
    local rc=$? t=$(( $(date +%s) - t0 ))
    local what="rc $rc"
    [ $rc -eq 124 ] && what="TIMEOUT after ${limit}s"
    local checks=$(grep -ho '[0-9]*%: Checks: [0-9]*, Failures: [0-9]*, Errors: [0-9]*' "$out/$name.log" | tail -1)
    local errors=$(grep -ho 'ERROR SUMMARY: [0-9]* error[s]*' "$out/$name.log" | tail -1)
    say "$name: $what, ${t}s${checks:+, $checks}${errors:+, $errors}"
}

# 1. the suites, every backend against the CPU
for s in kernels tensor parity data; do step "suite-$s" 120 "$bin/test_$s"; done

# 2. compute-sanitizer on the kernel suite (no fork: check's forks hide the children)
if command -v compute-sanitizer >/dev/null; then
    for tool in memcheck racecheck synccheck initcheck; do
        step "sanitizer-$tool" 150 env CK_FORK=no compute-sanitizer --tool "$tool" \
            --error-exitcode 9 "$bin/test_kernels"
    done
else
    say "sanitizer: compute-sanitizer not on PATH: skipped"
fi

# 3. the benchmark in three precisions, each beside its PyTorch twin on the same GPU
twin="$root/tools/torch/dit_train_step.py"
for mode in fp32 tf32 bf16; do
    prec=$mode; [ $mode = tf32 ] && prec=fp32
    tf=0; [ $mode = tf32 ] && tf=1
    step "bench-$mode" 150 env DMDR_TF32=$tf "$bin/dmdr" bench --device cuda --shapes base \
        --precision $prec --json "$out/bench-$mode.json"
    grep -E "^(train_step|sgemm|matmul|ceiling)" "$out/bench-$mode.log" | head -8 >>"$summary"
    if python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
        extra=(); [ $mode = tf32 ] && extra=(--tf32)
        step "torch-$mode" 90 python3 "$twin" --device cuda --precision $prec "${extra[@]}" \
            --compare "$out/bench-$mode.json" --steps 20 --budget 5
        grep -E "images/s|dmdr / torch" "$out/torch-$mode.log" >>"$summary"
    else
        say "torch-$mode: PyTorch sees no GPU: skipped"
    fi
done

# 4. the base preset: a few hundred teacher steps, then a few dozen distillation steps
step teacher-base 180 "$bin/dmdr" train-teacher --preset base --steps 300 --log-every 50 \
    --checkpoint-every 0 --sample-every 0 --device cuda --out "$out/teacher-base"
grep -E "^step|^done" "$out/teacher-base.log" | tail -3 >>"$summary"
if [ -f "$out/teacher-base/model.safetensors" ]; then
    step distill-base 150 "$bin/dmdr" distill --preset base --teacher \
        "$out/teacher-base/model.safetensors" --steps 30 --log-every 10 --checkpoint-every 0 \
        --sample-every 0 --device cuda --out "$out/distill-base"
    grep -E "^step|^done" "$out/distill-base.log" | tail -3 >>"$summary"
fi
say "total: $(( $(date +%s) - start ))s"
