#!/usr/bin/env bash
# Runs every fuzz target of test/fuzz for SECONDS each (README.md here).
#
#   bash test/fuzz/run.sh SECONDS [BUILD_DIR]      (BUILD_DIR default: build-fuzz)
#
# Configures BUILD_DIR if it has no build yet (clang, libFuzzer, ASan + UBSan, CPU only),
# builds the fuzz binaries, and runs each on a copy of its seed corpus and regressions in a
# temporary folder (new inputs never land in the repository), with UBSan halting on the first
# error and LeakSanitizer on. Prints one line per target,
#   fuzz <target>: <executions> execs, <crashes> crashes
# and for a crash (or a leak, an out-of-memory, a timeout) the file libFuzzer wrote, the
# input in base64 and the end of the log. Exits non-zero when a target crashed or the build
# failed; the temporary folder is then kept.
set -uo pipefail
cd "$(dirname "$0")/../.."

seconds=${1:-}
build=${2:-build-fuzz}
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
  echo "usage: bash test/fuzz/run.sh SECONDS [BUILD_DIR]" >&2
  exit 2
fi

targets=(safetensors checkpoint idx png_folder ini flags)
# Inputs beyond these sizes only slow the search: a few times the largest seed.
declare -A max_len=([safetensors]=16384 [checkpoint]=32768 [idx]=4096 [png_folder]=4096
                    [ini]=4096 [flags]=1024)

fail_all() { # why: every target counts as not run
  for t in "${targets[@]}"; do echo "fuzz $t: 0 execs, 1 crashes ($1)"; done
  exit 1
}

if [ ! -f "$build/build.ninja" ]; then
  CC=clang meson setup "$build" --buildtype=debugoptimized -Dfuzz=true \
    -Db_sanitize=address,undefined -Db_lundef=false -Dcuda=disabled -Dtests=false \
    -Ddefault_library=static -Dnative=false >"$build.setup.log" 2>&1 ||
    { tail -n 30 "$build.setup.log"; fail_all "meson setup failed: $build.setup.log"; }
  rm -f "$build.setup.log"
fi
binaries=()
for t in "${targets[@]}"; do binaries+=("fuzz_$t"); done
if ! meson compile -C "$build" "${binaries[@]}" >"$build/fuzz-compile.log" 2>&1; then
  grep -E "error|FAILED" "$build/fuzz-compile.log" | head -n 30
  fail_all "build failed: $build/fuzz-compile.log"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/dmdr-fuzz-run.XXXXXX")
status=0
for t in "${targets[@]}"; do
  dir="$work/$t"
  mkdir -p "$dir/corpus" "$dir/tmp"
  cp test/fuzz/corpus/"$t"/* "$dir/corpus/"
  if [ -d "test/fuzz/regressions/$t" ]; then
    find "test/fuzz/regressions/$t" -maxdepth 1 -type f ! -name '.*' -exec cp {} "$dir/corpus/" \;
  fi
  TMPDIR="$dir/tmp" OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive \
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    "$build/test/fuzz/fuzz_$t" "$dir/corpus" -max_total_time="$seconds" -rss_limit_mb=2048 \
    -max_len="${max_len[$t]}" -timeout=20 -artifact_prefix="$dir/" -print_final_stats=1 \
    >"$dir/log" 2>&1
  rc=$?
  execs=$(sed -n 's/^Done \([0-9]*\) runs in .*/\1/p' "$dir/log" | tail -n 1)
  # after a crash there is no "Done" line, but -print_final_stats still counts the runs
  [ -n "$execs" ] ||
    execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$dir/log" | tail -n 1)
  crashes=$(find "$dir" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' \
            -o -name 'oom-*' -o -name 'timeout-*' \) | wc -l)
  [ "$rc" -eq 0 ] || [ "$crashes" -gt 0 ] || crashes=1 # died without writing an input
  echo "fuzz $t: ${execs:-0} execs, $crashes crashes"
  if [ "$crashes" -gt 0 ]; then
    status=1
    for f in "$dir"/crash-* "$dir"/leak-* "$dir"/oom-* "$dir"/timeout-*; do
      [ -f "$f" ] || continue
      echo "  input: $f ($(stat -c %s "$f") bytes)"
      echo "  base64: $(head -c 4096 "$f" | base64 -w 0)"
    done
    echo "  log: $dir/log; its end:"
    grep -v '^#[0-9]' "$dir/log" | tail -n 40 | sed 's/^/  | /'
  fi
  rm -rf "$dir/tmp"
done
if [ "$status" -eq 0 ]; then
  rm -rf "$work"
else
  echo "fuzz: kept $work (replay an input: $build/test/fuzz/fuzz_<target> FILE, or" \
       "fuzz_replay <target> FILE in any build)"
fi
exit $status
