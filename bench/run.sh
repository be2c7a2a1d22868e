#!/usr/bin/env bash
# Benchmark umbrafs against its peers from Debian (gocryptfs, securefs; optionally umbrafs and
# rclone crypt over WebDAV and S3) on the same workloads, each with a fresh backing folder on a
# tmpfs (or a fresh folder on the server), and print a table of each figure and umbrafs's ratio
# to the best peer.
# Not a pass/fail test; not run in CI. See bench/README.md. Needs root (drop_caches, tmpfs,
# apt-get).
#
# Usage: bench/run.sh [--quick] [--repeat N] [--remote] [--fs LIST] [--remote-fs LIST]
#                     [--umbrafs BIN] [--out FILE]
#   --quick      128 MiB dd, ~6k-file tree, 5 s fio, 256 MiB fio file (a sanity run, ~2 min)
#   --repeat N   N rounds of the local suites, each round all of --fs in turn; the table shows
#                each figure's median (default 1; tables for the README: --quick --repeat 3);
#                the remote suites run once
#   --remote     also umbrafs and rclone crypt mounts over WebDAV (Apache) and S3 (radosgw) on
#                the loopback, own table
#   --fs LIST    comma-separated subset of umbrafs,gocryptfs,securefs (default all; "" for none)
#   --remote-fs LIST  with --remote: subset of umbrafs,rclone (default both)
#   --umbrafs B  the umbrafs binary (default: $UMBRAFS_BIN, else /tmp/build-bench/fs/umbrafs)
#   --out FILE   results as Markdown (default bench/results-{quick,full}.md, with --remote
#                bench/results-remote-{quick,full}.md); a .tsv goes beside it
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

QUICK=0 REPEAT=1 REMOTE=0 FS_LIST=umbrafs,gocryptfs,securefs REMOTE_FS_LIST=umbrafs,rclone OUT=
UMBRAFS=${UMBRAFS_BIN:-/tmp/build-bench/fs/umbrafs}
while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=1 ;;
    --repeat) REPEAT=$2; shift ;;
    --remote) REMOTE=1 ;;
    --fs) FS_LIST=$2; shift ;;
    --remote-fs) REMOTE_FS_LIST=$2; shift ;;
    --umbrafs) UMBRAFS=$2; shift ;;
    --out) OUT=$2; shift ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ "$(id -u)" = 0 ] || { echo "bench: run as root (drop_caches, tmpfs mounts)" >&2; exit 2; }
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || { echo "bench: --repeat wants a count of rounds, not '$REPEAT'" >&2; exit 2; }
[ -x "$UMBRAFS" ] || { echo "bench: no umbrafs binary at $UMBRAFS (build it, or --umbrafs BIN)" >&2; exit 2; }

if [ $QUICK = 1 ]; then
  DD_MIB=128 FIO_SIZE=256M FIO_SECONDS=5 TREE=quick MODE=quick
else
  DD_MIB=512 FIO_SIZE=1G FIO_SECONDS=20 TREE=full MODE=full
fi
RESULTS_NAME=$MODE
[ $REMOTE = 0 ] || RESULTS_NAME=remote-$MODE
OUT=${OUT:-$HERE/results-$RESULTS_NAME.md}
CACHE=${BENCH_CACHE:-/var/cache/umbrafs-bench}
WORK=${BENCH_DIR:-/tmp/umbrafs-bench}
RESULTS=$WORK/results.tsv   # fs <TAB> figure <TAB> value <TAB> round

UMBRAFS_REV=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)
install_tools
TREE_TAR=$(prepare_tree "$CACHE" "$TREE")
TREE_FILES=$(tar tvf "$TREE_TAR" | grep -c '^-')

mkdir -p "$WORK"
mountpoint -q "$WORK" || mount -t tmpfs -o size=12g,mode=0755 umbrafs-bench "$WORK"
trap 'cleanup_all' EXIT
: >"$RESULTS"
printf '%s\n' "bench-password-not-secret" >"$WORK/pw"

# Round by round, every file system once in the given order: a slow minute of the shared machine
# then hits all of them alike, and the median of the rounds drops it.
IFS=, read -r -a FSES <<<"$FS_LIST"
for ((ROUND = 1; ROUND <= REPEAT; ROUND++)); do
  [ "$REPEAT" = 1 ] || [ ${#FSES[@]} = 0 ] || log "round $ROUND of $REPEAT"
  for fs in "${FSES[@]}"; do
    run_local_suite "$fs"
  done
done
ROUND=1  # the remote suites run once (about 15 minutes each time even when quick)
if [ $REMOTE = 1 ]; then
  run_remote_suites "$REMOTE_FS_LIST"
fi

describe_machine >"$WORK/machine.txt"
"$HERE/table.py" "$RESULTS" --machine "$WORK/machine.txt" --mode "$MODE" \
  --tree "$(basename "$TREE_TAR")" --tree-files "$TREE_FILES" --md "$OUT" --tsv "${OUT%.md}.tsv"
