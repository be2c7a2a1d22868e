"""A full disk under a local store: every operation that needs space fails with
ENOSPC (never EIO), one log line says why, nothing half-made is left in the
vault, a file whose append failed keeps its old content, and all works again
once space is freed."""
import errno
import os
import subprocess

import pytest

from conftest import init_vault, needs_umbrafs, run_umbrafs, write_password

# Local store only: the store lives on a small tmpfs of its own.
pytestmark = needs_umbrafs

FULL_LINE = "No space left on device: writes fail until space is freed"


@pytest.fixture
def small_store(tmp_path):
    store = tmp_path / "small"
    store.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", store], check=True)
    yield store
    subprocess.run(["umount", "-l", store], check=True)


def enospc(action, *args):
    with pytest.raises(OSError) as e:
        action(*args)
    assert e.value.errno == errno.ENOSPC, f"{action.__name__}{args}: {e.value}"


def fill_with_files(mnt):
    """Create empty files until the store is full; returns their names."""
    made = []
    for i in range(100000):
        path = mnt / f"f{i:05}"
        try:
            path.touch()
        except OSError as e:
            assert e.errno == errno.ENOSPC, f"creating file {i}: {e}"
            return made
        made.append(path.name)
    pytest.fail("the 1 MiB store never filled up")


def append_and_sync(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def test_full_store_fails_cleanly_and_recovers(small_store, tmp_path, mount_factory):
    vault = init_vault(small_store, write_password(tmp_path / "password"))
    m = mount_factory(vault, expect_errors=True)
    part = os.urandom(40000)
    (m.mnt / "keep").write_bytes(b"keep")
    (m.mnt / "part").write_bytes(part)

    made = fill_with_files(m.mnt)
    enospc(os.mkdir, m.mnt / "newdir")
    enospc(os.mkdir, m.mnt / ("L" * 200))   # a shortened name: a .c9s folder
    enospc(os.symlink, "target", m.mnt / "link")
    enospc(append_and_sync, m.mnt / "part", os.urandom(1 << 20))
    assert m.log_text().count(FULL_LINE) == 1, m.log_text()
    m.stop()

    fsck = run_umbrafs("fsck", "--password-file", vault.password_file, small_store)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    m = mount_factory(vault)
    assert (m.mnt / "part").read_bytes() == part
    assert (m.mnt / "keep").read_bytes() == b"keep"
    assert sorted(p.name for p in m.mnt.iterdir()) == sorted(
        ["keep", "part"] + made)

    for name in made:
        (m.mnt / name).unlink()
    os.mkdir(m.mnt / "newdir")
    os.symlink("target", m.mnt / "link")
    append_and_sync(m.mnt / "part", b"more")
    assert (m.mnt / "part").read_bytes() == part + b"more"
