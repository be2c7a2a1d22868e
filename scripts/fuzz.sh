#!/usr/bin/env bash
# Build the libFuzzer targets of tests/fuzz with clang, AddressSanitizer and
# UndefinedBehaviorSanitizer, and run each for a while (tests/fuzz/README.md).
#
#   scripts/fuzz.sh [--ci] [-t SECONDS] [-j JOBS] [TARGET...]
#
# --ci: 20 s per target (the default is 300 s). -j: targets run at once
# (default: the number of cores). TARGETs: e.g. fuzz_jwt (default: all).
# Each run starts from the target's seeds/ and regressions/ and from what
# earlier runs found (BUILD/fuzz-corpus/TARGET); a crash is saved as
# BUILD/fuzz-artifacts/TARGET-crash-... (copy it into the target's
# regressions/ to keep it as a test). BUILD is $FUZZ_BUILD, else build-fuzz.
# Prints the executions of each target and ends with "fuzz: N passed, N failed";
# exits non-zero if the build or a target failed.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

seconds=300
jobs=$(nproc)
while [ $# -gt 0 ]; do
  case $1 in
    --ci) seconds=20 ;;
    -t) seconds=$2; shift ;;
    -j) jobs=$2; shift ;;
    -*) echo "usage: $0 [--ci] [-t SECONDS] [-j JOBS] [TARGET...]" >&2; exit 2 ;;
    *) break ;;
  esac
  shift
done
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in tests/fuzz/fuzz_*.c; do
    name=$(basename "$f" .c)
    [ "$name" = fuzz_common ] || targets+=("$name")
  done
fi

build=${FUZZ_BUILD:-build-fuzz}
echo "== $build: fuzz targets (clang, ASan+UBSan), $seconds s each"
CC=clang meson_setup "$build" -Dwerror=true -Dfuzz=true -Db_sanitize=address,undefined \
  -Db_lundef=false -Dc_args=-fsanitize=fuzzer-no-link || { echo "fuzz: 0 passed, 1 failed"; exit 1; }
quietly ninja -C "$build" "${targets[@]/#/tests/fuzz/}" || { echo "fuzz: 0 passed, 1 failed"; exit 1; }

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
mkdir -p "$build/fuzz-artifacts"
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}

# run_target NAME: fuzz NAME for $seconds; output to $logs/NAME.log, exit code to $logs/NAME.rc.
run_target() {
  local name=$1 corpora=()
  mkdir -p "$build/fuzz-corpus/$name"
  for kind in seeds regressions; do
    [ -d "tests/fuzz/$name/$kind" ] && corpora+=("tests/fuzz/$name/$kind")
  done
  "$build/tests/fuzz/$name" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$build/fuzz-artifacts/$name-" \
    "$build/fuzz-corpus/$name" "${corpora[@]}" >"$logs/$name.log" 2>&1
  echo $? >"$logs/$name.rc"
}

running=0
for name in "${targets[@]}"; do
  run_target "$name" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
done
wait

passed=0
failed=0
for name in "${targets[@]}"; do
  rc=$(cat "$logs/$name.rc")
  execs=$(awk '/stat::number_of_executed_units:/ { print $2 }' "$logs/$name.log")
  if [ "$rc" -eq 0 ]; then
    passed=$((passed + 1))
    printf '%-18s ok     %12s executions\n' "$name" "${execs:-?}"
  else
    failed=$((failed + 1))
    printf '%-18s FAILED %12s executions (exit %s)\n' "$name" "${execs:-?}" "$rc"
    grep -E '^(==[0-9]+==ERROR|SUMMARY|fuzz oracle|.*runtime error)' "$logs/$name.log" | head -5
    grep -E 'Test unit written to' "$logs/$name.log"
  fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
