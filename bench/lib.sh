# Helpers of bench/run.sh (sourced): tools and data, one driver per file system, the workloads.
# Uses the globals run.sh sets: UMBRAFS WORK CACHE RESULTS TREE_TAR DD_MIB FIO_SIZE FIO_SECONDS ROOT.

PY=/usr/bin/python3
TREE_TOP=linux-source-6.1
# The tree subsets (folders of linux-source-6.1): full ~31.6k files / ~177 MB, quick ~5.9k / ~37 MB.
TREE_DIRS_full="arch Documentation include"
TREE_DIRS_quick="include"

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
    # shellcheck disable=SC2046 # one argument per folder
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

record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$RESULTS"; }

# Seconds the command took (its output is discarded).
timed() {
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >/dev/null
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
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

# rclone crypt ("benchcrypt:", set up by configure_rclone) with a VFS cache on the tmpfs, emptied
# at every stop so that a cold read goes to the server.
fs_create_rclone() { :; }
fs_start_rclone() {
  # AWS_CA_BUNDLE (set on some machines) makes rclone's S3 client refuse its own HTTP transport
  env -u AWS_CA_BUNDLE rclone mount benchcrypt: "$2" --vfs-cache-mode full --vfs-write-back 0s \
    --cache-dir "$WORK/rclone-cache" 2>>"$WORK/rclone.log" &
  DAEMON_PID=$!
}

# ---- mount life cycle ------------------------------------------------------------------------

PEAK_KIB=0

wait_mounted() {
  local mnt=$1 i
  for i in $(seq 1 200); do
    mountpoint -q "$mnt" && return 0
    kill -0 "$DAEMON_PID" 2>/dev/null || { echo "bench: $FS daemon died (see $WORK/*.log)" >&2; return 1; }
    sleep 0.1
  done
  echo "bench: $FS did not mount $mnt within 20 s" >&2
  return 1
}

fs_start() { "fs_start_$DRIVER" "$BACK" "$MNT"; wait_mounted "$MNT"; }

# Unmount after noting the daemon's peak resident memory (VmHWM).
fs_stop() {
  local hwm
  hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$DAEMON_PID/status" 2>/dev/null || echo 0)
  [ "${hwm:-0}" -gt "$PEAK_KIB" ] && PEAK_KIB=$hwm
  fusermount3 -u "$MNT"
  wait "$DAEMON_PID" 2>/dev/null || true
  [ "$DRIVER" = rclone ] && rm -rf "$WORK/rclone-cache"
  return 0
}

# Cold: a new daemon and no page cache, neither of the mount nor of the backing store.
remount_cold() { fs_stop; drop_caches; fs_start; }

cleanup_all() {
  local m
  for m in "$WORK"/*-mnt; do
    mountpoint -q "$m" 2>/dev/null && fusermount3 -u "$m"
  done
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

# One file system through the whole workload, from a fresh backing folder.
run_suite() {
  FS=$1 DRIVER=$2
  BACK=$WORK/$FS-back MNT=$WORK/$FS-mnt PEAK_KIB=0
  local t tree=$MNT/$TREE_TOP
  rm -rf "$BACK" "$MNT"; mkdir -p "$BACK" "$MNT"
  "fs_create_$DRIVER" "$BACK"
  fs_start

  log "$FS: streaming write ($DD_MIB MiB, fsync)"
  t=$(timed dd if=/dev/zero of="$MNT/stream" bs=1M count="$DD_MIB" conv=fsync status=none)
  record "$FS" write_mibs "$(mibs "$DD_MIB" "$t")"
  remount_cold
  log "$FS: streaming read, cold then warm"
  t=$(timed dd if="$MNT/stream" of=/dev/null bs=1M status=none)
  record "$FS" read_cold_mibs "$(mibs "$DD_MIB" "$t")"
  t=$(timed dd if="$MNT/stream" of=/dev/null bs=1M status=none)
  record "$FS" read_warm_mibs "$(mibs "$DD_MIB" "$t")"
  rm -f "$MNT/stream"

  log "$FS: untar $(basename "$TREE_TAR")"
  record "$FS" untar_s "$(timed tar xf "$TREE_TAR" -C "$MNT")"
  remount_cold
  log "$FS: ls -lR, read every file, rm -rf (cold mount)"
  record "$FS" ls_lR_s "$(timed ls -lR "$tree")"
  record "$FS" read_all_s "$(timed sh -c 'find "$1" -type f -print0 | xargs -0 cat' sh "$tree")"
  record "$FS" rm_rf_s "$(timed rm -rf "$tree")"

  log "$FS: fio 4 KiB random read and write on a $FIO_SIZE file, ${FIO_SECONDS} s each"
  dd if=/dev/zero of="$MNT/fio.dat" bs=1M count="$(numfmt --from=iec "$FIO_SIZE" | awk '{print $1/1048576}')" \
    status=none
  remount_cold
  record "$FS" randread_iops "$(fio_iops randread "$MNT/fio.dat")"
  record "$FS" randwrite_iops "$(fio_iops randwrite "$MNT/fio.dat")"

  fs_stop
  record "$FS" peak_rss_mib "$(awk -v k="$PEAK_KIB" 'BEGIN { printf "%.1f", k / 1024 }')"
  rm -rf "$BACK" "$MNT"
}

run_local_suite() {
  case $1 in
    umbrafs|gocryptfs|securefs) run_suite "$1" "$1" ;;
    *) echo "bench: unknown file system $1 (umbrafs, gocryptfs or securefs)" >&2; exit 2 ;;
  esac
}

# ---- optional: rclone crypt over WebDAV (Apache) and S3 (radosgw), the project's test servers ----

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

run_remote_suites() {
  local kind
  start_remote_servers
  for kind in webdav s3; do
    configure_rclone "$kind"
    run_suite "rclone-$kind" rclone
  done
}
