#!/usr/bin/env bash
# Run every unit test program (the tests whose command is a program built
# here: not the end-to-end pytest, not the scripts that start servers) under
# valgrind; any memory error or definitely/indirectly lost block fails it.
#
#   scripts/valgrind.sh
#
# Builds in $VALGRIND_BUILD (default build-vg) without sanitizers. Ends with
# "valgrind: N passed, N failed"; exits non-zero if the build or a test failed.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH

build=${VALGRIND_BUILD:-build-vg}
echo "== $build: unit tests under valgrind"
meson_setup "$build" -Dwerror=true || { echo "valgrind: 0 passed, 1 failed"; exit 1; }
quietly ninja -C "$build" || { echo "valgrind: 0 passed, 1 failed"; exit 1; }

# Names of the tests whose command is a program of the build directory.
mapfile -t tests < <(meson introspect --tests "$build" | /usr/bin/python3 -c '
import json, os, sys
build = os.path.realpath(sys.argv[1])
for t in json.load(sys.stdin):
    if os.path.realpath(t["cmd"][0]).startswith(build + os.sep):
        print(t["name"])
' "$build")
if [ ${#tests[@]} -eq 0 ]; then
  echo "valgrind: no unit test found"
  echo "valgrind: 0 passed, 1 failed"
  exit 1
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Timeouts x10: valgrind runs code some 20-50 times slower.
meson test -C "$build" --no-rebuild --print-errorlogs -t 10 \
  --wrap='valgrind --quiet --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect' \
  "${tests[@]}" | tee "$log"
status=${PIPESTATUS[0]}

count() { awk -v key="$1:" 'index($0, key) == 1 { n = $NF } END { print n + 0 }' "$log"; }
passed=$(count Ok)
failed=$(($(count Fail) + $(count Timeout)))
[ "$status" -eq 0 ] || [ "$failed" -gt 0 ] || failed=1
echo "valgrind: $passed passed, $failed failed"
exit "$status"
