# shellcheck shell=bash
# Helpers of bench/run.sh (sourced): tools and data, one driver per file system, the workloads.
# Uses the globals run.sh sets: UMBRAFS WORK CACHE RESULTS TREE_TAR DD_MIB FIO_SIZE FIO_SECONDS ROOT
# ROUND.

PY=/usr/bin/python3
TREE_TOP=linux-source-6.1
# The tree subsets (folders of linux-source-6.1): full ~31.6k files / ~177 MB, quick ~5.9k / ~37 MB.
# shellcheck disable=SC2034 # read as ${!var} in prepare_tree
TREE_DIRS_full="arch Documentation include" TREE_DIRS_quick="include"

log() { printf '== %s\n' "$*" >&2; }

install_tools() {
  local want=() c
  for c in gocryptfs securefs fio rclone; do
    command -v "$c" >/dev/null || want+=("$c")
  done
  [ -f /usr/src/linux-source-6.1.tar.xz ] || want+=(linux-source-6.1)
  command -v fusermount3 >/dev/null || want+=(fuse3)
  if [ ${#want[@]} -gt 0 ]; then
    log "installing ${want[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${want[@]}" >&2
  fi
}

# Print the path of the uncompressed tar of the chosen subset, making it once in the cache:
# untar then measures the file system, not xz.
prepare_tree() {
  local cache=$1 which=$2 dirs var full sub tmp
  var=TREE_DIRS_$which; dirs=${!var}
  full=$cache/linux-source-6.1.tar
  sub=$cache/linux-source-6.1-$which.tar
  mkdir -p "$cache"
  if [ ! -f "$full" ]; then
    log "unpacking /usr/src/linux-source-6.1.tar.xz to $full (once)"
    xz -dc /usr/src/linux-source-6.1.tar.xz >"$full.part" && mv "$full.part" "$full"
  fi
  if [ ! -f "$sub" ]; then
    log "making $sub ($dirs)"
    tmp=$(mktemp -d)
    # shellcheck disable=SC2046,SC2086 # one argument per folder
    tar xf "$full" -C "$tmp" $(printf "$TREE_TOP/%s " $dirs)
    tar cf "$sub.part" -C "$tmp" "$TREE_TOP" && mv "$sub.part" "$sub"
    rm -rf "$tmp"
  fi
  echo "$sub"
}

describe_machine() {
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') ($(nproc) cores)"
  echo "memory: $(free -g | awk '/^Mem:/ {print $2}') GiB; kernel $(uname -r); $(. /etc/os-release; echo "$PRETTY_NAME")"
  echo "umbrafs: $("$UMBRAFS" --version 2>&1 | head -1), binary of $(date -r "$UMBRAFS" '+%F %T'), tree at start: $UMBRAFS_REV"
  echo "peers: $(gocryptfs -version 2>&1 | cut -d';' -f1); securefs $(dpkg-query -W -f='${Version}' securefs 2>/dev/null); $(rclone version 2>/dev/null | head -1); fio $(fio --version)"
}

# record FS FIGURE VALUE: one raw result line of the current round (see RESULTS in run.sh).
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$ROUND" >>"$RESULTS"; }

# Run CMD and set ELAPSED to the seconds it took (its output discarded). A failure is reported and
# the run goes on: rclone mount cannot make the tree's symlinks, so tar fails there.
timed() {
  local t0 t1 rc=0
  t0=$(date +%s.%N)
  "$@" >/dev/null || rc=$?
  t1=$(date +%s.%N)
  [ $rc = 0 ] || echo "bench: $FS: '$*' exited with status $rc" >&2
  ELAPSED=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
}

mibs() { awk -v m="$1" -v s="$2" 'BEGIN { printf "%.1f", m / s }'; }

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# ---- drivers: fs_create_X BACK, fs_start_X BACK MNT (sets DAEMON_PID) --------------------------

fs_create_umbrafs() { "$UMBRAFS" init --scrypt-cost 1024 --password-file "$WORK/pw" "$1" >/dev/null; }
fs_start_umbrafs() {
  "$UMBRAFS" mount -f --password-file "$WORK/pw" "$1" "$2" 2>>"$WORK/umbrafs.log" &
  DAEMON_PID=$!
}

fs_create_gocryptfs() { gocryptfs -init -q -scryptn 10 -extpass "cat $WORK/pw" "$1"; }
fs_start_gocryptfs() {
  gocryptfs -fg -q -extpass "cat $WORK/pw" "$1" "$2" 2>>"$WORK/gocryptfs.log" &
  DAEMON_PID=$!
}

# securefs 0.13: format 4 ("lite") is the default of create; mount stays in the foreground.
fs_create_securefs() { securefs create --pass "$(cat "$WORK/pw")" "$1" >/dev/null; }
fs_start_securefs() {
  securefs mount --pass "$(cat "$WORK/pw")" "$1" "$2" >>"$WORK/securefs.log" 2>&1 &
  DAEMON_PID=$!
}

# umbrafs on a remote store: BACK is its URL; the cache folder is emptied at every stop (fs_stop),
# so that a cold read fetches from the server.
fs_create_umbrafs_remote() {
  env "${REMOTE_ENV[@]}" "$UMBRAFS" init --scrypt-cost 1024 --password-file "$WORK/pw" "$1" \
    >/dev/null
}
fs_start_umbrafs_remote() {
  env "${REMOTE_ENV[@]}" "$UMBRAFS" mount -f --cache-dir "$STORE_CACHE" --password-file "$WORK/pw" \
    "$1" "$2" 2>>"$WORK/$FS.log" &
  DAEMON_PID=$!
}

# rclone crypt (BACK is "benchcrypt:", set up by configure_rclone) with its VFS cache on the tmpfs,
# emptied at every stop. -v logs each upload, which rclone_wait_uploads counts.
fs_create_rclone() { :; }
fs_start_rclone() {
  touch "$WORK/$FS.log"
  RCLONE_LOG_FROM=$(($(wc -l <"$WORK/$FS.log") + 1))
  env "${REMOTE_ENV[@]}" rclone mount "$1" "$2" -v --vfs-cache-mode full --vfs-write-back 0s \
    --cache-dir "$STORE_CACHE" 2>>"$WORK/$FS.log" &
  DAEMON_PID=$!
}

# rclone uploads in the background and forgets what is still queued when it is unmounted
# (rclone#7309), so it is unmounted only when every "queuing for upload" line this mount logged has
# its "Copied (...)" line (rclone 1.60's rc vfs/stats counts none of them). The count must hold for
# three polls: the kernel sends the release that queues a file after close returns.
rclone_wait_uploads() {
  local counts stable=0 last='' since=$SECONDS
  while [ $stable -lt 3 ]; do
    counts=$(awk -v from="$RCLONE_LOG_FROM" 'NR >= from && /queuing for upload/ { q++ }
      NR >= from && /Copied \(/ { c++ }
      END { print q + 0, c + 0 }' "$WORK/$FS.log")
    if [ "${counts% *}" -le "${counts#* }" ]; then stable=$((stable + 1)); else stable=0; fi
    [ "$counts" = "$last" ] || { last=$counts since=$SECONDS; }
    if [ $((SECONDS - since)) -gt 120 ]; then
      echo "bench: $FS: rclone uploads stuck at $counts (queued, done) for 2 min; unmounting" >&2
      return 0
    fi
    sleep 0.02
  done
}

# ---- mount life cycle ------------------------------------------------------------------------

PEAK_KIB=0

wait_mounted() {
  local mnt=$1
  for _ in $(seq 1 200); do
    mountpoint -q "$mnt" && return 0
    kill -0 "$DAEMON_PID" 2>/dev/null || { echo "bench: $FS daemon died (see $WORK/*.log)" >&2; return 1; }
    sleep 0.1
  done
  echo "bench: $FS did not mount $mnt within 20 s" >&2
  return 1
}

fs_start() { "fs_start_$DRIVER" "$BACK" "$MNT"; wait_mounted "$MNT"; }

# Add the daemon's peak resident memory (VmHWM) to PEAK_KIB; fails once the daemon has exited.
note_peak_rss() {
  local key kib _
  while read -r key kib _; do
    [ "$key" = VmHWM: ] || continue
    [ "$kib" -le "$PEAK_KIB" ] || PEAK_KIB=$kib
    return 0
  done 2>/dev/null <"/proc/$DAEMON_PID/status"
  return 1
}

# Unmount and wait until the daemon has exited (umbrafs uploads its queue first), noting its peak
# memory until then. Does nothing when not mounted.
fs_stop() {
  [ -n "$DAEMON_PID" ] || return 0
  [ "$DRIVER" != rclone ] || rclone_wait_uploads
  note_peak_rss || true
  fusermount3 -u "$MNT"
  while note_peak_rss; do sleep 0.02; done
  wait "$DAEMON_PID" 2>/dev/null || true
  DAEMON_PID=
  rm -rf "$STORE_CACHE"
  return 0
}

# A write counts until its data is stored: on a remote store, until the mount is stopped (see
# fs_stop). The next remount_cold then finds it stopped.
stored() {
  local rc=0
  "$@" || rc=$?
  [ "$REMOTE_STORE" = 0 ] || fs_stop
  return $rc
}

# Cold: a new daemon and no page cache, neither of the mount nor of the backing store.
remount_cold() { fs_stop; drop_caches; fs_start; }

cleanup_all() {
  local m
  for m in "$WORK"/*-mnt; do
    mountpoint -q "$m" 2>/dev/null && fusermount3 -u "$m"
  done
  # An interrupted local suite: once its daemon has exited, give the tmpfs its memory back (its
  # backing folder can hold a 1 GiB fio file). A remote daemon is not waited for: it would upload
  # its queue first.
  if [ "${REMOTE_STORE:-1}" = 0 ] && [ -n "${MNT:-}" ] && ! mountpoint -q "$MNT"; then
    [ -z "${DAEMON_PID:-}" ] || wait "$DAEMON_PID" 2>/dev/null || true
    rm -rf "$MNT" "$BACK" "$STORE_CACHE"
  fi
  [ -n "${STOP_SERVERS:-}" ] && eval "$STOP_SERVERS"
  return 0
}

# ---- workloads ---------------------------------------------------------------------------------

fio_iops() { # fio_iops randread|randwrite FILE
  local rw=$1 file=$2 out
  out=$(fio --name=bench --filename="$file" --size="$FIO_SIZE" --rw="$rw" --bs=4k \
    --ioengine=psync --iodepth=1 --runtime="$FIO_SECONDS" --time_based --end_fsync=1 \
    --output-format=json)
  $PY -c 'import json, sys; j = json.load(sys.stdin)["jobs"][0]
print(round(j["read"]["iops"] + j["write"]["iops"]))' <<<"$out"
}

# One file system through the whole workload: run_suite NAME DRIVER [URL]. Without URL it gets a
# fresh backing folder on the tmpfs; with one it works on that remote store, where writes count
# until the data is on the server (stored) and the server's requests are counted per phase. The
# folders are named after the round, so no round can see another's files or mount.
run_suite() {
  FS=$1 DRIVER=$2 BACK=${3:-$WORK/$1-r$ROUND-back}
  MNT=$WORK/$FS-r$ROUND-mnt STORE_CACHE=$WORK/$FS-r$ROUND-cache PEAK_KIB=0 DAEMON_PID='' REMOTE_STORE=0
  local tree=$MNT/$TREE_TOP
  [ -z "${3:-}" ] || REMOTE_STORE=1
  rm -rf "$MNT" "$STORE_CACHE"; mkdir -p "$MNT"
  [ $REMOTE_STORE = 1 ] || { rm -rf "$BACK"; mkdir -p "$BACK"; }
  "fs_create_$DRIVER" "$BACK"
  fs_start

  log "$FS: streaming write ($DD_MIB MiB, fsync)"
  phase_begin
  timed stored dd if=/dev/zero of="$MNT/stream" bs=1M count="$DD_MIB" conv=fsync status=none
  record "$FS" write_mibs "$(mibs "$DD_MIB" "$ELAPSED")"
  phase_end write
  remount_cold
  check_size "$MNT/stream" $((DD_MIB << 20))
  log "$FS: streaming read, cold then warm"
  phase_begin
  timed dd if="$MNT/stream" of=/dev/null bs=1M status=none
  record "$FS" read_cold_mibs "$(mibs "$DD_MIB" "$ELAPSED")"
  phase_end read_cold
  timed dd if="$MNT/stream" of=/dev/null bs=1M status=none
  record "$FS" read_warm_mibs "$(mibs "$DD_MIB" "$ELAPSED")"
  cmp -s "$MNT/stream" <(head -c $((DD_MIB << 20)) /dev/zero) ||
    echo "bench: $FS: $MNT/stream does not read back as the zeros written" >&2
  rm -f "$MNT/stream"

  # shellcheck disable=SC2153 # TREE_TAR is run.sh's
  log "$FS: untar $(basename "$TREE_TAR")"
  phase_begin
  timed stored tar xf "$TREE_TAR" -C "$MNT"
  record "$FS" untar_s "$ELAPSED"
  phase_end untar
  remount_cold
  log "$FS: ls -lR, read every file, rm -rf (cold mount)"
  phase_begin
  timed ls -lR "$tree"
  record "$FS" ls_lR_s "$ELAPSED"
  phase_end ls_lR
  phase_begin
  # shellcheck disable=SC2016 # $1 is the argument of sh -c
  timed sh -c 'find "$1" -type f -print0 | xargs -0 cat' sh "$tree"
  record "$FS" read_all_s "$ELAPSED"
  phase_end read_all
  [ $REMOTE_STORE = 0 ] || record "$FS" tree_files "$(find "$tree" -type f | wc -l)"
  phase_begin
  timed stored rm -rf "$tree"
  record "$FS" rm_rf_s "$ELAPSED"
  phase_end rm_rf

  log "$FS: fio 4 KiB random read and write on a $FIO_SIZE file, ${FIO_SECONDS} s each"
  [ -n "$DAEMON_PID" ] || fs_start
  dd if=/dev/zero of="$MNT/fio.dat" bs=1M count="$(numfmt --from=iec "$FIO_SIZE" | awk '{print $1/1048576}')" \
    status=none
  remount_cold
  record "$FS" randread_iops "$(fio_iops randread "$MNT/fio.dat")"
  record "$FS" randwrite_iops "$(fio_iops randwrite "$MNT/fio.dat")"

  fs_stop
  record "$FS" peak_rss_mib "$(awk -v k="$PEAK_KIB" 'BEGIN { printf "%.1f", k / 1024 }')"
  rm -rf "$MNT"
  [ $REMOTE_STORE = 1 ] || rm -rf "$BACK"
}

# After a remount the streaming file must have its full size: a read of data that never reached
# the server must not pass for a fast one. (Its content is compared after the reads.)
check_size() {
  local size
  size=$(stat -c %s "$1" 2>/dev/null || echo missing)
  [ "$size" = "$2" ] || echo "bench: $FS: $1 has size $size after the remount, not $2" >&2
}

run_local_suite() {
  case $1 in
    umbrafs|gocryptfs|securefs) run_suite "$1" "$1" ;;
    *) echo "bench: unknown file system $1 (umbrafs, gocryptfs or securefs)" >&2; exit 2 ;;
  esac
}

# ---- optional: umbrafs and rclone crypt over WebDAV (Apache) and S3 (radosgw), the project's test
# servers on the loopback ----

start_remote_servers() {
  local servers=$ROOT/tests/servers env
  # the stop commands first: a server that failed half-way is stopped too
  STOP_SERVERS="$servers/stop-apache-webdav.sh 18480 >/dev/null 2>&1;"
  env=$("$servers/start-apache-webdav.sh" 18480 "$WORK/webdav-data")
  eval "$env"
  STOP_SERVERS+="$servers/stop-radosgw.sh $WORK/radosgw >/dev/null 2>&1"
  env=$(START_TIMEOUT=120 MEMSTORE_BYTES=$((6 << 30)) \
    "$servers/start-radosgw.sh" 18490 "$WORK/radosgw" BENCHKEY BENCHSECRET bench)
  eval "$env"
  # Only these servers' credentials count: the machine's CA bundles (which also make rclone's S3
  # client refuse its plain-http transport), profiles and endpoints are dropped.
  REMOTE_ENV=(-u AWS_CA_BUNDLE -u CURL_CA_BUNDLE -u AWS_PROFILE -u AWS_DEFAULT_PROFILE
    -u AWS_SESSION_TOKEN -u AWS_ENDPOINT_URL_S3 -u AWS_CONFIG_FILE -u AWS_SHARED_CREDENTIALS_FILE
    -u AWS_DEFAULT_REGION -u UMBRAFS_WEBDAV_USER -u UMBRAFS_HTTP_TRIES
    -u UMBRAFS_HTTP_RETRY_BASE_MS
    "UMBRAFS_WEBDAV_PASSWORD=$WEBDAV_PASS" "AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY_ID"
    "AWS_SECRET_ACCESS_KEY=$S3_SECRET_ACCESS_KEY" "AWS_REGION=$S3_REGION" "AWS_ENDPOINT_URL=$S3_ENDPOINT")
}

# The server's log of the requests it answered (Apache's access log; radosgw's log, where the
# beast lines are the requests), and a grep pattern for the requests in it.
server_log() {
  case $SERVER_KIND in
    webdav) echo "$WEBDAV_RUN_DIR/access.log" ;;
    s3) echo "$S3_RUN_DIR/log/client.rgw.a.log" ;;
  esac
}
server_request_pattern() { [ "$SERVER_KIND" = s3 ] && echo ' beast: ' || echo '.'; }

# On a remote store: keep the requests of a phase in $WORK/requests/FS-PHASE.log and record
# their number.
phase_begin() { [ "$REMOTE_STORE" = 0 ] || PHASE_FROM=$(($(wc -l <"$(server_log)") + 1)); }
phase_end() {
  [ "$REMOTE_STORE" = 1 ] || return 0
  local lines=$WORK/requests/$FS-$1.log
  mkdir -p "$WORK/requests"
  tail -n +"$PHASE_FROM" "$(server_log)" | grep -e "$(server_request_pattern)" >"$lines" || true
  record "$FS" "req_$1" "$(wc -l <"$lines")"
}

# The URL of a fresh vault folder for umbrafs on the given server kind.
umbrafs_store() {
  case $1 in
    webdav) local hostport=${WEBDAV_URL#http://}
      echo "webdav://$WEBDAV_USER@${hostport%/}/bench-umbrafs-$RANDOM" ;;
    s3) echo "s3://bench/umbrafs-$RANDOM" ;;
  esac
}

# Point the rclone remote "benchcrypt:" at a fresh folder of the given server kind.
configure_rclone() {
  export RCLONE_CONFIG_BENCHDAV_TYPE=webdav RCLONE_CONFIG_BENCHDAV_URL=$WEBDAV_URL \
    RCLONE_CONFIG_BENCHDAV_VENDOR=other RCLONE_CONFIG_BENCHDAV_USER=$WEBDAV_USER \
    RCLONE_CONFIG_BENCHDAV_PASS
  RCLONE_CONFIG_BENCHDAV_PASS=$(rclone obscure "$WEBDAV_PASS")
  export RCLONE_CONFIG_BENCHS3_TYPE=s3 RCLONE_CONFIG_BENCHS3_PROVIDER=Ceph \
    RCLONE_CONFIG_BENCHS3_ENDPOINT=$S3_ENDPOINT RCLONE_CONFIG_BENCHS3_ACCESS_KEY_ID=$S3_ACCESS_KEY_ID \
    RCLONE_CONFIG_BENCHS3_SECRET_ACCESS_KEY=$S3_SECRET_ACCESS_KEY RCLONE_CONFIG_BENCHS3_REGION=$S3_REGION
  export RCLONE_CONFIG_BENCHCRYPT_TYPE=crypt RCLONE_CONFIG_BENCHCRYPT_PASSWORD
  RCLONE_CONFIG_BENCHCRYPT_PASSWORD=$(rclone obscure "$(cat "$WORK/pw")")
  case $1 in
    webdav) export RCLONE_CONFIG_BENCHCRYPT_REMOTE=benchdav:bench-$RANDOM ;;
    s3) export RCLONE_CONFIG_BENCHCRYPT_REMOTE=benchs3:bench/run-$RANDOM ;;
  esac
}

# Each of TOOLS (umbrafs, rclone) on each server, umbrafs first.
run_remote_suites() {
  local tools=$1 kind tool
  start_remote_servers
  for kind in webdav s3; do
    SERVER_KIND=$kind
    for tool in ${tools//,/ }; do
      case $tool in
        umbrafs) run_suite "umbrafs-$kind" umbrafs_remote "$(umbrafs_store "$kind")" ;;
        rclone) configure_rclone "$kind"; run_suite "rclone-$kind" rclone benchcrypt: ;;
        *) echo "bench: unknown remote file system $tool (umbrafs or rclone)" >&2; exit 2 ;;
      esac
    done
  done
  SERVER_KIND=
}
