#!/bin/bash
# Runs one test suite (or one of its cases) under many seeds, to calibrate or re-check the
# tolerances of the statistical tests: the toy2d training tests print the figures they assert
# on (worst moment offsets, energy distances, rewards) before asserting, and those lines are
# kept here with the seed in front of each.
#
#   bash test/seed_sweep.sh BUILD_DIR SUITE [CASE] [COUNT] [FIRST_SEED]
#   bash test/seed_sweep.sh build rl toy2d 40 1000
#
# One thread per run (OMP_NUM_THREADS=1), so two sweeps can share a 2-core machine. Ends with
# "N passed, N failed" over the seeds; a failing seed is replayed by DMDR_TEST_SEED=<seed>.
set -u
if [ $# -lt 2 ]; then
    echo "usage: bash test/seed_sweep.sh BUILD_DIR SUITE [CASE] [COUNT] [FIRST_SEED]" >&2
    exit 2
fi
build=$1 suite=$2 case=${3:-} count=${4:-20} first=${5:-1}
exe="$build/test/test_$suite"
if [ ! -x "$exe" ]; then
    echo "seed_sweep: no test binary $exe (build first: meson compile -C $build)" >&2
    exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
passed=0 failed=0
for ((seed = first; seed < first + count; seed++)); do
    log=$(CK_DEFAULT_TIMEOUT=600 CK_RUN_CASE=$case DMDR_TEST_SEED=$seed OMP_NUM_THREADS=1 \
        OMP_WAIT_POLICY=passive DMDR_FIXTURES="$root/test/fixtures" \
        DMDR_EXE="$build/tools/dmdr" "$exe" 2>&1)
    if [ $? -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
    # the suite's own figures and any failure, without check's per-run banner
    grep -v -e '^Running suite' -e '^[0-9]*%: Checks' -e '^test seed:' -e '^backend cuda:' \
        <<<"$log" | sed "s/^/seed $seed: /"
done
echo "$passed passed, $failed failed"
