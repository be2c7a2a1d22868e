#!/usr/bin/env bash
# Build umbrafs and run every test twice: in build-test (warnings are
# errors), then in build-asan (AddressSanitizer + UndefinedBehaviorSanitizer).
# Ends with one line "N passed, N failed" over both runs; exits non-zero if a
# build or a test failed.
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

build_and_test build-test -Dwerror=true
build_and_test build-asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false

echo "$passed passed, $failed failed"
exit $status
