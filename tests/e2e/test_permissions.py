"""Permissions as a non-root user on a mount with allow_other,default_permissions:
the kernel enforces mode/uid/gid that umbrafs keeps for each node."""
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import textwrap

import pytest

from conftest import init_vault, needs_umbrafs, write_password

# Local store only: remote stores keep no mode or owner (chmod/chown are ignored).
pytestmark = needs_umbrafs

NOBODY = 65534


@pytest.fixture
def shared_mount(mount_factory):
    """A mount on a path that uid 65534 can reach (pytest's tmp_path is 0700)."""
    base = pathlib.Path(tempfile.mkdtemp(prefix="umbrafs-e2e-perm-"))
    os.chmod(base, 0o755)
    try:
        vault = init_vault(base / "store", write_password(base / "password"))
        m = mount_factory(vault, mnt=base / "mnt",
                          options=("allow_other", "default_permissions"))
        os.chmod(m.mnt, 0o755)
        yield m
        m.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def as_nobody(script):
    """Run python code as uid/gid 65534 without supplementary groups; the
    script prints one result per line."""
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], user=NOBODY,
                       group=NOBODY, extra_groups=[], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


PROBE = """
    import errno, os, sys
    def attempt(fn, *args):
        try:
            fn(*args)
            print("ok")
        except OSError as e:
            print(errno.errorcode[e.errno])
    def write(path, data):
        with open(path, "wb") as f:
            f.write(data)
    def read(path):
        with open(path, "rb") as f:
            return f.read()
"""


def test_nobody_works_in_own_dir_and_is_refused_elsewhere(shared_mount):
    m = shared_mount.mnt
    os.mkdir(m / "nobody")
    os.chown(m / "nobody", NOBODY, NOBODY)
    os.mkdir(m / "rootdir", 0o755)
    os.chmod(m / "rootdir", 0o755)
    (m / "secret").write_bytes(b"root only")
    os.chmod(m / "secret", 0o600)
    (m / "public").write_bytes(b"everyone")
    os.chmod(m / "public", 0o644)

    results = as_nobody(PROBE + f"""
    base = {str(m)!r}
    attempt(write, base + "/nobody/mine", b"written by nobody" * 5000)
    assert read(base + "/nobody/mine") == b"written by nobody" * 5000
    attempt(os.mkdir, base + "/nobody/subdir")
    attempt(os.rename, base + "/nobody/mine", base + "/nobody/subdir/moved")
    attempt(write, base + "/rootdir/intruder", b"x")
    attempt(os.mkdir, base + "/rootdir/intruder-dir")
    attempt(read, base + "/secret")
    attempt(read, base + "/public")
    attempt(write, base + "/public", b"overwrite")
    attempt(os.chmod, base + "/public", 0o666)
    attempt(os.unlink, base + "/public")
    """)
    assert results == ["ok", "ok", "ok",                    # own dir: write, mkdir, rename
                       "EACCES", "EACCES",                  # root's 0755 dir
                       "EACCES",                            # root's 0600 file
                       "ok", "EACCES",                      # 0644: read yes, write no
                       "EPERM",                             # chmod of another's file
                       "EACCES"]                            # unlink in root's dir
    st = os.stat(m / "nobody" / "subdir" / "moved")
    assert (st.st_uid, st.st_gid) == (NOBODY, NOBODY)
    assert not (m / "rootdir" / "intruder").exists()
    assert (m / "public").read_bytes() == b"everyone"
    shared_mount.remount()
    st = os.stat(m / "nobody" / "subdir" / "moved")
    assert (st.st_uid, st.st_gid) == (NOBODY, NOBODY)
    assert stat_mode(m / "secret") == 0o600


def stat_mode(path):
    return os.stat(path).st_mode & 0o7777


def test_without_allow_other_others_are_refused(mount_factory):
    """Mounted without allow_other, the kernel keeps other users out entirely."""
    base = pathlib.Path(tempfile.mkdtemp(prefix="umbrafs-e2e-perm-"))
    os.chmod(base, 0o755)
    try:
        vault = init_vault(base / "store", write_password(base / "password"))
        m = mount_factory(vault, mnt=base / "mnt", options=("default_permissions",))
        (m.mnt / "public").write_bytes(b"x")
        os.chmod(m.mnt / "public", 0o644)
        results = as_nobody(PROBE + f"""
    attempt(read, {str(m.mnt / "public")!r})
    """)
        assert results == ["EACCES"]
        m.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)
