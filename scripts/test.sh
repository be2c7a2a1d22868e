#!/usr/bin/env bash
# Build umbrafs and run every test twice: in build-test (warnings are
# errors), then in build-asan (AddressSanitizer + UndefinedBehaviorSanitizer);
# then a short run of each fuzz target (scripts/fuzz.sh --ci) and the unit
# tests under valgrind (scripts/valgrind.sh). Ends with one line
# "N passed, N failed" over all of them; exits non-zero if a build or a test
# failed.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
# Debian's own tools first (e.g. /usr/bin/python3 with python3-pytest, not
# another python3 that may be earlier on PATH).
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH

scripts/setup-debian.sh || exit 1

passed=0
failed=0
status=0

# The count on the line "$1:  N" of meson test's summary in file $2 (0 if absent).
summary_count() {
  awk -v key="$1:" 'index($0, key) == 1 { n = $NF } END { print n + 0 }' "$2"
}

# build_and_test DIR MESON-OPTIONS...
build_and_test() {
  local dir=$1 log
  shift
  echo "== $dir: meson setup $*"
  meson_setup "$dir" "$@" || { status=1; echo "$dir: meson setup failed"; return; }
  ninja -C "$dir" || { status=1; echo "$dir: build failed"; return; }
  log=$(mktemp)
  meson test -C "$dir" --print-errorlogs | tee "$log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  passed=$((passed + $(summary_count Ok "$log")))
  failed=$((failed + $(summary_count Fail "$log") + $(summary_count Timeout "$log") +
    $(summary_count 'Unexpected Pass' "$log")))
  rm -f "$log"
}

# run_counted COMMAND...: run a script that ends with "WORD: N passed, N failed"
# and add its counts (a script that prints no such line counts as one failure).
run_counted() {
  local log line
  log=$(mktemp)
  "$@" | tee "$log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  line=$(grep -E '^[a-z]+: [0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
  rm -f "$log"
  if [ -z "$line" ]; then
    status=1
    failed=$((failed + 1))
    return
  fi
  passed=$((passed + $(echo "$line" | awk '{ print $2 }')))
  failed=$((failed + $(echo "$line" | awk '{ print $4 }')))
}

build_and_test build-test -Dwerror=true
build_and_test build-asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false
# A short run of every fuzz target (its seeds and regression inputs first),
# then the unit tests under valgrind in build-test (built without sanitizers).
run_counted scripts/fuzz.sh --ci
run_counted env VALGRIND_BUILD=build-test scripts/valgrind.sh

echo "$passed passed, $failed failed"
exit $status
