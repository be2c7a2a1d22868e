#!/usr/bin/env bash
# Install the Debian 12 packages umbrafs builds and tests with (run as root).
# Idempotent: prints nothing and changes nothing when all of them are present.
set -euo pipefail

packages=(
  # build
  build-essential meson ninja-build pkg-config
  libfuse3-dev libssl-dev libcurl4-openssl-dev libxml2-dev libjson-c-dev libutf8proc-dev
  # run and test
  fuse3 python3 python3-pytest valgrind attr curl bash-completion
  # fuzzing (scripts/fuzz.sh): clang with libFuzzer and the sanitizer runtimes
  clang libclang-rt-14-dev llvm
  # servers of the remote-store tests: WebDAV (Apache) and S3 (Ceph radosgw)
  apache2 apache2-utils radosgw ceph-mon ceph-osd ceph-common
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "setup-debian.sh: missing packages: ${missing[*]}; run me as root" >&2
  exit 1
fi

# The tests start their own servers on 127.0.0.1; never let a package start
# the system apache2 or ceph services while installing (policy-rc.d: 101 = deny).
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod +x "$policy"
  trap 'rm -f "$policy"' EXIT
fi

echo "setup-debian.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
