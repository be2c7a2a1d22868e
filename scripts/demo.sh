#!/usr/bin/env bash
# The umbrafs demo, on Debian 12 as root: install the build dependencies,
# build and install umbrafs, create a vault, mount it, write a file into it.
# Re-runnable: an existing vault and password are reused, a mounted vault is
# left mounted.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

demo=/root/umbrafs-demo
vault=$demo/vault
mnt=$demo/mnt
password_file=$demo/password
umbrafs=/usr/local/bin/umbrafs

# Whether something is mounted on $1 (per the kernel's table, so that a
# mount whose daemon died counts too).
is_mounted() {
  findmnt -rn --mountpoint "$1" >/dev/null
}

scripts/setup-debian.sh

echo "== building umbrafs (build/)"
meson_setup build --prefix=/usr/local
quietly ninja -C build
echo "== installing to /usr/local"
quietly meson install -C build

mkdir -p "$demo"
chmod 700 "$demo"
if [ ! -f "$password_file" ]; then
  (umask 077 && head -c 18 /dev/urandom | base64 >"$password_file")
fi
echo "== vault password: in $password_file"

if is_mounted "$mnt" && ! stat "$mnt" >/dev/null 2>&1; then
  echo "== $mnt: stale mount (its umbrafs process is gone); unmounting it"
  fusermount3 -u -z "$mnt"
fi

if is_mounted "$mnt"; then
  echo "== $vault is already mounted at $mnt"
else
  if [ -f "$vault/vault.cryptomator" ]; then
    echo "== reusing the vault $vault"
  else
    echo "== creating the vault $vault"
    "$umbrafs" init --password-file "$password_file" "$vault"
  fi
  mkdir -p "$mnt"
  echo "== mounting it at $mnt"
  "$umbrafs" mount --password-file "$password_file" "$vault" "$mnt"
fi

echo "Hello from umbrafs, written $(date)." >"$mnt/hello.txt"
echo "== $mnt (plaintext):"
ls -la "$mnt"
cat "$mnt/hello.txt"
echo "== $vault (ciphertext):"
find "$vault" | sort | head -n 20
echo
echo "To unmount:  fusermount3 -u $mnt"
