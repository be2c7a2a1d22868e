"""POSIX: each filesystem operation through a real mount, with its error cases,
on every store (local, WebDAV, S3). Runs against a plain folder too
(UMBRAFS_E2E_PLAIN_DIR) to check the tests."""
import ctypes
import errno
import mmap
import os
import pathlib
import random
import shutil
import signal
import stat
import subprocess
import threading

import pytest

from conftest import ALL_STORES, Mount, Vault, is_remote, needs_umbrafs, tree_of, walk

pytestmark = pytest.mark.stores(*ALL_STORES)

CHUNK = 32768


def raises_errno(expected, fn, *args, **kwargs):
    expected = expected if isinstance(expected, tuple) else (expected,)
    with pytest.raises(OSError) as info:
        fn(*args, **kwargs)
    assert info.value.errno in expected, (
        f"{fn.__name__}: errno {errno.errorcode.get(info.value.errno)}, "
        f"expected {[errno.errorcode[e] for e in expected]}")


def keeps_modes(m):
    """Remote stores have no modes: files show 0644 and folders 0755 whatever
    create, mkdir or chmod asked for."""
    return not is_remote(m.store)


def walk_clean(m):
    """After unmount, the store must pass the walker (umbrafs only)."""
    if m.store is not None:
        m.stop()
        result = walk(m.store, m.password_file)
        result.assert_clean()
        return result
    return None


# ------------------------------------------------------------ lookup, getattr


def test_lookup_missing(mounted):
    raises_errno(errno.ENOENT, os.stat, mounted.mnt / "missing")
    raises_errno(errno.ENOENT, os.stat, mounted.mnt / "missing" / "deeper")
    (mounted.mnt / "file").write_bytes(b"x")
    raises_errno(errno.ENOTDIR, os.stat, mounted.mnt / "file" / "child")
    raises_errno(errno.ENOENT, open, mounted.mnt / "missing", "rb")


def test_getattr_of_new_nodes(mounted):
    (mounted.mnt / "f").write_bytes(b"12345")
    os.mkdir(mounted.mnt / "d")
    os.symlink("f", mounted.mnt / "l")
    st = os.stat(mounted.mnt / "f")
    assert stat.S_ISREG(st.st_mode) and st.st_size == 5
    assert st.st_uid == os.getuid() and st.st_gid == os.getgid()
    assert stat.S_ISDIR(os.stat(mounted.mnt / "d").st_mode)
    st = os.lstat(mounted.mnt / "l")
    assert stat.S_ISLNK(st.st_mode) and st.st_size == 1
    assert stat.S_ISDIR(os.stat(mounted.mnt).st_mode)


# ------------------------------------------------------------------- setattr


# Local only: remote stores keep no mode or owner (chmod and chown are accepted
# and ignored), so there is nothing to persist.
@pytest.mark.stores("local")
def test_chmod_chown_utimes_persist(mounted):
    f, d = mounted.mnt / "f", mounted.mnt / "d"
    f.write_bytes(b"x")
    os.mkdir(d)
    os.chmod(f, 0o640)
    os.chmod(d, 0o711)
    os.chown(f, 1234, 5678)
    os.chown(d, 4321, 8765)
    os.utime(f, ns=(1_000_000_123, 2_000_000_456))
    os.utime(d, ns=(3_000_000_000, 4_000_000_789))
    for _ in range(2):
        st = os.stat(f)
        assert stat.S_IMODE(st.st_mode) == 0o640
        assert (st.st_uid, st.st_gid) == (1234, 5678)
        assert st.st_mtime_ns == 2_000_000_456
        st = os.stat(d)
        assert stat.S_IMODE(st.st_mode) == 0o711
        assert (st.st_uid, st.st_gid) == (4321, 8765)
        assert st.st_mtime_ns == 4_000_000_789
        mounted.remount()


def test_chmod_missing(mounted):
    raises_errno(errno.ENOENT, os.chmod, mounted.mnt / "missing", 0o600)


@pytest.mark.parametrize("new_size", [
    0, 1, 40000, 2 * CHUNK, 2 * CHUNK - 1, 2 * CHUNK + 1, 100000, 150000, 3 * CHUNK])
def test_truncate_to_any_size(mounted, new_size):
    data = os.urandom(100000)
    p = mounted.mnt / "t"
    p.write_bytes(data)
    os.truncate(p, new_size)
    want = data[:new_size] + b"\0" * max(0, new_size - len(data))
    assert os.stat(p).st_size == new_size
    assert p.read_bytes() == want
    mounted.remount()
    assert p.read_bytes() == want


def test_shrink_then_grow_reads_zeros_not_old_bytes(mounted):
    data = os.urandom(100000)
    p = mounted.mnt / "t"
    p.write_bytes(data)
    with open(p, "r+b") as f:
        os.ftruncate(f.fileno(), 40000)
        os.ftruncate(f.fileno(), 100000)
        f.seek(0)
        assert f.read() == data[:40000] + b"\0" * 60000
    mounted.remount()
    assert p.read_bytes() == data[:40000] + b"\0" * 60000


# ------------------------------------------------------------------- readdir


def test_readdir_dot_entries_and_all_names(mounted):
    names = {"a", "b.txt", "dir", "link", "with space", "ünïcödé"}
    for n in names - {"dir", "link"}:
        (mounted.mnt / n).write_bytes(n.encode())
    os.mkdir(mounted.mnt / "dir")
    os.symlink("a", mounted.mnt / "link")
    assert set(os.listdir(mounted.mnt)) == names
    ls = subprocess.run(["ls", "-1a", str(mounted.mnt)], capture_output=True, check=True,
                        env={"LC_ALL": "C.UTF-8"}).stdout.decode().split("\n")
    assert {".", ".."} <= set(ls)
    kinds = {e.name: (e.is_dir(follow_symlinks=False), e.is_symlink())
             for e in os.scandir(mounted.mnt)}
    assert kinds["dir"] == (True, False) and kinds["link"] == (False, True)
    assert kinds["a"] == (False, False)
    assert os.listdir(mounted.mnt / "dir") == []


def test_readdir_thousand_entries(mounted):
    d = mounted.mnt / "many"
    os.mkdir(d)
    names = {f"entry-{i:04d}-{'x' * (i % 50)}" for i in range(1000)}
    for n in names:
        os.close(os.open(d / n, os.O_CREAT | os.O_WRONLY, 0o644))
    assert set(os.listdir(d)) == names
    mounted.remount()
    assert set(os.listdir(d)) == names


def test_readdir_not_a_directory(mounted):
    (mounted.mnt / "f").write_bytes(b"")
    raises_errno(errno.ENOTDIR, os.listdir, mounted.mnt / "f")
    raises_errno(errno.ENOENT, os.listdir, mounted.mnt / "missing")


# --------------------------------------------------------------- create, open


def test_create_excl(mounted):
    p = mounted.mnt / "x"
    os.close(os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    if keeps_modes(mounted):
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    raises_errno(errno.EEXIST, os.open, p, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    os.mkdir(mounted.mnt / "d")
    raises_errno(errno.EEXIST, os.open, mounted.mnt / "d", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    raises_errno(errno.ENOENT, os.open, mounted.mnt / "no" / "x", os.O_CREAT | os.O_WRONLY)
    raises_errno(errno.EISDIR, os.open, mounted.mnt / "d", os.O_WRONLY)


def test_open_trunc(mounted):
    p = mounted.mnt / "x"
    p.write_bytes(os.urandom(70000))
    fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
    assert os.fstat(fd).st_size == 0
    os.write(fd, b"short")
    os.close(fd)
    assert p.read_bytes() == b"short"
    mounted.remount()
    assert p.read_bytes() == b"short"


def test_open_append(mounted):
    p = mounted.mnt / "x"
    head = os.urandom(CHUNK - 3)
    p.write_bytes(head)
    fd = os.open(p, os.O_WRONLY | os.O_APPEND)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, b"appended-1")
    os.write(fd, b"appended-2")
    os.close(fd)
    assert p.read_bytes() == head + b"appended-1appended-2"


def test_name_too_long(mounted):
    raises_errno(errno.ENAMETOOLONG, os.open, mounted.mnt / ("n" * 256),
                 os.O_CREAT | os.O_WRONLY)
    raises_errno(errno.ENAMETOOLONG, os.mkdir, mounted.mnt / ("é" * 128))
    (mounted.mnt / ("n" * 255)).write_bytes(b"ok")
    assert (mounted.mnt / ("n" * 255)).read_bytes() == b"ok"


def test_name_not_utf8(mounted):
    """The format keeps names as UTF-8: another name does not exist (ENOENT)
    and cannot be made (EILSEQ, "Invalid or incomplete multibyte or wide
    character"), whichever way one tries."""
    if not isinstance(mounted, Mount):
        pytest.skip("umbrafs only: ext4 takes any bytes")
    latin1 = bytes(mounted.mnt / "caf") + b"\xe9"
    (mounted.mnt / "ok").write_bytes(b"x")
    raises_errno(errno.ENOENT, os.stat, latin1)
    raises_errno(errno.EILSEQ, os.open, latin1, os.O_CREAT | os.O_WRONLY)
    raises_errno(errno.EILSEQ, os.mkdir, latin1)
    raises_errno(errno.EILSEQ, os.symlink, "ok", latin1)
    raises_errno(errno.EILSEQ, os.rename, mounted.mnt / "ok", latin1)
    assert os.listdir(mounted.mnt) == ["ok"]


# --------------------------------------------------------------- read, write


def test_random_io_matches_model(mounted):
    rng = random.Random(20240521)
    model = bytearray()
    p = mounted.mnt / "model.bin"
    fd = os.open(p, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        for step in range(300):
            off = rng.choice([rng.randrange(0, 6 * CHUNK),
                              rng.randrange(1, 6) * CHUNK + rng.randrange(-40, 40)])
            off = max(off, 0)
            if rng.random() < 0.6:
                n = rng.choice([1, 7, 4095, 4096, CHUNK - 1, CHUNK, CHUNK + 1,
                                rng.randrange(1, 3 * CHUNK)])
                data = rng.randbytes(n)
                assert os.pwrite(fd, data, off) == n
                if off > len(model):
                    model.extend(b"\0" * (off - len(model)))
                model[off:off + n] = data
            else:
                n = rng.randrange(1, 2 * CHUNK)
                assert os.pread(fd, n, off) == bytes(model[off:off + n]), f"step {step}"
            if step % 50 == 49:
                os.fsync(fd)
        assert os.fstat(fd).st_size == len(model)
    finally:
        os.close(fd)
    assert p.read_bytes() == model
    mounted.remount()
    assert p.read_bytes() == model


def test_sparse_write_past_eof_reads_zeros(mounted):
    p = mounted.mnt / "sparse"
    with open(p, "wb") as f:
        f.write(b"head")
        f.seek(5 * CHUNK + 100)
        f.write(b"tail")
    want = b"head" + b"\0" * (5 * CHUNK + 96) + b"tail"
    assert p.read_bytes() == want
    mounted.remount()
    assert os.stat(p).st_size == len(want)
    assert p.read_bytes() == want


def test_read_past_eof_is_empty(mounted):
    p = mounted.mnt / "f"
    p.write_bytes(b"abc")
    fd = os.open(p, os.O_RDONLY)
    assert os.pread(fd, 10, 3) == b""
    assert os.pread(fd, 10, 1 << 20) == b""
    assert os.pread(fd, 10, 1) == b"bc"
    os.close(fd)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stop_signal_unmounts_and_exits_0(mounted, sig, mount_factory, tmp_path):
    """systemctl stop (SIGTERM) or ^C stops the daemon as asked: it unmounts,
    uploads what is queued (remote stores) and exits 0."""
    if not isinstance(mounted, Mount):
        pytest.skip("umbrafs only")
    (mounted.mnt / "f").write_bytes(b"written just before the stop")
    proc, mounted.proc = mounted.proc, None
    proc.send_signal(sig)
    assert proc.wait(timeout=30) == 0, mounted.log_text()
    assert not os.path.ismount(mounted.mnt)
    assert "stopping on" in mounted.log_text()
    mounted.check_log()
    # a fresh cache folder: the file must come from the server
    fresh = tmp_path / "fresh-cache" if is_remote(mounted.store) else None
    m = mount_factory(Vault(mounted.store, mounted.password_file), cache_dir=fresh)
    assert (m.mnt / "f").read_bytes() == b"written just before the stop"


def test_forced_unmount_with_an_open_directory(mounted):
    """umount -f aborts the connection: the kernel then never sends the
    RELEASEDIR of a directory still open, and the daemon must still exit
    without leaking its handle (LeakSanitizer in the ASan build) or hanging."""
    if not isinstance(mounted, Mount):
        pytest.skip("umbrafs only")
    (mounted.mnt / "d").mkdir()
    fd = os.open(mounted.mnt / "d", os.O_RDONLY | os.O_DIRECTORY)
    proc, mounted.proc = mounted.proc, None
    try:
        subprocess.run(["umount", "-f", mounted.mnt], capture_output=True)
        rc = proc.wait(timeout=30)
    finally:
        os.close(fd)
        subprocess.run(["fusermount3", "-u", "-z", mounted.mnt], capture_output=True)
    assert rc >= 0, f"umbrafs died of signal {-rc}:\n{mounted.log_text()}"
    mounted.check_log()


def test_fsync_and_fdatasync(mounted):
    p = mounted.mnt / "f"
    fd = os.open(p, os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, b"durable")
    os.fsync(fd)
    os.fdatasync(fd)
    os.close(fd)
    dfd = os.open(mounted.mnt, os.O_RDONLY | os.O_DIRECTORY)
    os.fsync(dfd)
    os.close(dfd)
    assert p.read_bytes() == b"durable"


def test_write_updates_mtime_and_size(mounted):
    p = mounted.mnt / "f"
    p.write_bytes(b"a")
    os.utime(p, ns=(0, 0))
    with open(p, "ab") as f:
        f.write(b"bc")
    st = os.stat(p)
    assert st.st_size == 3 and st.st_mtime_ns > 0


# ------------------------------------------------------------- mkdir, rmdir


def test_mkdir_and_errors(mounted):
    d = mounted.mnt / "d"
    os.mkdir(d, 0o750)
    if keeps_modes(mounted):
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o750
    raises_errno(errno.EEXIST, os.mkdir, d)
    (mounted.mnt / "f").write_bytes(b"")
    raises_errno(errno.EEXIST, os.mkdir, mounted.mnt / "f")
    raises_errno(errno.ENOENT, os.mkdir, mounted.mnt / "no" / "d")
    raises_errno(errno.ENOTDIR, os.mkdir, mounted.mnt / "f" / "d")
    os.makedirs(mounted.mnt / "a" / "b" / "c")
    assert os.path.isdir(mounted.mnt / "a" / "b" / "c")


def test_rmdir_and_errors(mounted):
    d = mounted.mnt / "d"
    os.mkdir(d)
    (d / "f").write_bytes(b"x")
    raises_errno(errno.ENOTEMPTY, os.rmdir, d)
    os.mkdir(d / "sub")
    os.unlink(d / "f")
    raises_errno(errno.ENOTEMPTY, os.rmdir, d)
    os.rmdir(d / "sub")
    os.rmdir(d)
    assert not d.exists()
    (mounted.mnt / "f").write_bytes(b"")
    raises_errno(errno.ENOTDIR, os.rmdir, mounted.mnt / "f")
    raises_errno(errno.ENOENT, os.rmdir, mounted.mnt / "missing")
    walk_clean(mounted)


# -------------------------------------------------------------------- unlink


def test_unlink_and_errors(mounted):
    p = mounted.mnt / "f"
    p.write_bytes(b"x")
    os.unlink(p)
    assert not p.exists()
    raises_errno(errno.ENOENT, os.unlink, p)
    os.mkdir(mounted.mnt / "d")
    raises_errno((errno.EISDIR, errno.EPERM), os.unlink, mounted.mnt / "d")
    os.symlink("d", mounted.mnt / "l")
    os.unlink(mounted.mnt / "l")  # removes the link, not its target
    assert os.path.isdir(mounted.mnt / "d") and not os.path.lexists(mounted.mnt / "l")
    walk_clean(mounted)


def test_open_unlinked_file_still_reads_and_writes(mounted):
    p = mounted.mnt / "ghost"
    head = os.urandom(50000)
    p.write_bytes(head)
    fd = os.open(p, os.O_RDWR)
    try:
        os.unlink(p)
        assert "ghost" not in os.listdir(mounted.mnt)
        tail = os.urandom(40000)
        assert os.pwrite(fd, tail, len(head)) == len(tail)
        assert os.fstat(fd).st_size == len(head) + len(tail)
        assert os.pread(fd, 200000, 0) == head + tail
        p.write_bytes(b"a new file by the same name")
        assert os.pread(fd, 200000, 0) == head + tail
    finally:
        os.close(fd)
    assert p.read_bytes() == b"a new file by the same name"
    result = walk_clean(mounted)
    if result:
        assert set(result.tree) == {"ghost"}


# -------------------------------------------------------------------- rename


def test_rename_replaces_file(mounted):
    a, b = mounted.mnt / "a", mounted.mnt / "b"
    a.write_bytes(b"from a")
    b.write_bytes(b"old b" * 10000)
    os.rename(a, b)
    assert not a.exists() and b.read_bytes() == b"from a"
    mounted.remount()
    assert not a.exists() and b.read_bytes() == b"from a"


def test_rename_dir_across_dirs(mounted):
    for d in ("x", "y", "x/moving", "x/moving/inner"):
        os.mkdir(mounted.mnt / d)
    (mounted.mnt / "x/moving/inner/f").write_bytes(b"payload")
    os.rename(mounted.mnt / "x/moving", mounted.mnt / "y/moved")
    assert os.listdir(mounted.mnt / "x") == []
    assert (mounted.mnt / "y/moved/inner/f").read_bytes() == b"payload"
    (mounted.mnt / "y/moved/inner/g").write_bytes(b"after the move")
    mounted.remount()
    assert (mounted.mnt / "y/moved/inner/f").read_bytes() == b"payload"
    assert (mounted.mnt / "y/moved/inner/g").read_bytes() == b"after the move"
    walk_clean(mounted)


def forget_cached_inodes():
    """Make the kernel forget its inodes, as memory pressure does."""
    os.sync()
    pathlib.Path("/proc/sys/vm/drop_caches").write_text("2")


def test_inode_numbers_last(mounted):
    """st_ino outlives the kernel's inode cache, renames and remounts (tar
    compares a folder's before and after extracting into it; du counts a
    folder once per number), and no two entries share one. Files on a remote
    store keep theirs only while the kernel holds them."""
    m = mounted.mnt
    for d in ("top", "top/sub", "other"):
        os.mkdir(m / d)
    for f in ("top/a", "top/sub/b", "c"):
        (m / f).write_bytes(b"x")
    os.symlink("c", m / "link")
    lasting = ["top", "top/sub", "other"] + ([] if is_remote(mounted.store) else
                                             ["top/a", "top/sub/b", "c", "link"])
    before = {p: os.lstat(m / p).st_ino for p in lasting}
    every = [os.lstat(p).st_ino for p in [m, *m.rglob("*")]]
    assert len(set(every)) == len(every), every

    forget_cached_inodes()
    assert {p: os.lstat(m / p).st_ino for p in lasting} == before
    os.rename(m / "top", m / "other/moved")
    moved = {p: p.replace("top", "other/moved", 1) for p in lasting if p.startswith("top")}
    mounted.remount()
    for old, new in moved.items():
        assert os.lstat(m / new).st_ino == before[old], new
    for p in set(lasting) - set(moved):
        assert os.lstat(m / p).st_ino == before[p], p


def test_rename_errors(mounted):
    m = mounted.mnt
    (m / "f").write_bytes(b"f")
    os.mkdir(m / "empty")
    os.mkdir(m / "full")
    (m / "full" / "x").write_bytes(b"x")
    os.mkdir(m / "d")
    raises_errno(errno.EISDIR, os.rename, m / "f", m / "empty")
    raises_errno(errno.ENOTDIR, os.rename, m / "d", m / "f")
    raises_errno((errno.ENOTEMPTY, errno.EEXIST), os.rename, m / "d", m / "full")
    raises_errno(errno.ENOENT, os.rename, m / "missing", m / "g")
    raises_errno(errno.EINVAL, os.rename, m / "d", m / "d" / "inside")
    assert (m / "f").read_bytes() == b"f" and (m / "full" / "x").read_bytes() == b"x"


def test_rename_dir_over_empty_dir(mounted):
    m = mounted.mnt
    os.mkdir(m / "src")
    (m / "src" / "x").write_bytes(b"x")
    os.mkdir(m / "dst")
    os.rename(m / "src", m / "dst")
    assert not (m / "src").exists() and (m / "dst" / "x").read_bytes() == b"x"
    walk_clean(mounted)  # the replaced directory's content folder is gone


def test_rename_onto_itself(mounted):
    p = mounted.mnt / "same"
    p.write_bytes(b"unchanged")
    os.rename(p, p)
    assert p.read_bytes() == b"unchanged"
    os.mkdir(mounted.mnt / "dir")
    os.rename(mounted.mnt / "dir", mounted.mnt / "dir")
    assert os.path.isdir(mounted.mnt / "dir")


def test_rename_symlink(mounted):
    os.symlink("target/of/link", mounted.mnt / "l1")
    os.mkdir(mounted.mnt / "d")
    os.rename(mounted.mnt / "l1", mounted.mnt / "d" / "l2")
    assert os.readlink(mounted.mnt / "d" / "l2") == "target/of/link"


RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
AT_FDCWD = -100


def renameat2(old, new, flags):
    libc = ctypes.CDLL(None, use_errno=True)
    if not hasattr(libc, "renameat2"):
        pytest.skip("libc has no renameat2")
    rc = libc.renameat2(AT_FDCWD, os.fsencode(old), AT_FDCWD, os.fsencode(new),
                        ctypes.c_uint(flags))
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), str(old))


def test_rename_noreplace(mounted):
    a, b, c = (mounted.mnt / n for n in "abc")
    a.write_bytes(b"a")
    b.write_bytes(b"b")
    raises_errno(errno.EEXIST, renameat2, a, b, RENAME_NOREPLACE)
    assert a.read_bytes() == b"a" and b.read_bytes() == b"b"
    renameat2(a, c, RENAME_NOREPLACE)
    assert not a.exists() and c.read_bytes() == b"a"


def test_rename_exchange_swaps_or_refuses_cleanly(mounted):
    m = mounted.mnt
    (m / "a").write_bytes(b"a" * 70000)
    os.mkdir(m / "d")
    (m / "d" / "inner").write_bytes(b"inner")
    try:
        renameat2(m / "a", m / "d", RENAME_EXCHANGE)
    except OSError as e:
        assert e.errno == errno.EINVAL, errno.errorcode.get(e.errno)
        assert (m / "a").read_bytes() == b"a" * 70000
        assert (m / "d" / "inner").read_bytes() == b"inner"
        return
    assert (m / "d").read_bytes() == b"a" * 70000
    assert (m / "a" / "inner").read_bytes() == b"inner"
    mounted.remount()
    assert (m / "d").read_bytes() == b"a" * 70000
    assert (m / "a" / "inner").read_bytes() == b"inner"
    walk_clean(mounted)


def test_editor_save_by_rename(mounted):
    p = mounted.mnt / "document.txt"
    p.write_bytes(b"version 1")
    fd_old = os.open(p, os.O_RDONLY)
    tmp = mounted.mnt / ".document.txt.swp"
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    os.write(fd, b"version 2, longer than before")
    os.fsync(fd)
    os.close(fd)
    os.rename(tmp, p)
    dfd = os.open(mounted.mnt, os.O_RDONLY | os.O_DIRECTORY)
    os.fsync(dfd)
    os.close(dfd)
    assert os.read(fd_old, 100) == b"version 1"  # the replaced file lives on while open
    os.close(fd_old)
    assert p.read_bytes() == b"version 2, longer than before"
    assert os.listdir(mounted.mnt) == ["document.txt"]
    mounted.remount()
    assert p.read_bytes() == b"version 2, longer than before"
    walk_clean(mounted)


# ---------------------------------------------------------- symlink, readlink


@pytest.mark.parametrize("length", [1, 100, 1000, 4095])
def test_symlink_targets_up_to_4095_bytes(mounted, length):
    target = ("t/" * length)[:length]
    os.symlink(target, mounted.mnt / "l")
    assert os.readlink(mounted.mnt / "l") == target
    assert os.lstat(mounted.mnt / "l").st_size == length
    mounted.remount()
    assert os.readlink(mounted.mnt / "l") == target


def test_symlink_dangling_and_errors(mounted):
    m = mounted.mnt
    os.symlink("does/not/exist", m / "dangling")
    assert os.readlink(m / "dangling") == "does/not/exist"
    raises_errno(errno.ENOENT, os.stat, m / "dangling")
    assert stat.S_ISLNK(os.lstat(m / "dangling").st_mode)
    raises_errno(errno.EEXIST, os.symlink, "x", m / "dangling")
    (m / "f").write_bytes(b"through the link")
    os.symlink("/" + os.path.relpath(m / "f", "/"), m / "absolute")
    assert (m / "absolute").read_bytes() == b"through the link"
    raises_errno(errno.EINVAL, os.readlink, m / "f")
    raises_errno(errno.ENOENT, os.readlink, m / "missing")
    raises_errno(errno.ENAMETOOLONG, os.symlink, "x" * 4096, m / "too-long")


# -------------------------------------------------------------------- statfs


def test_statfs_is_sane(mounted):
    st = os.statvfs(mounted.mnt)
    assert st.f_bsize > 0 and st.f_frsize > 0
    assert st.f_blocks > 0 and st.f_blocks >= st.f_bfree >= st.f_bavail
    assert st.f_namemax == 255
    if isinstance(mounted.store, pathlib.Path):  # a local store: the folder's file system
        under = os.statvfs(mounted.store)
        total, store_total = st.f_blocks * st.f_frsize, under.f_blocks * under.f_frsize
        assert abs(total - store_total) <= store_total // 100


# ------------------------------------------------- unsupported: links, xattrs


@needs_umbrafs
def test_hard_link_is_eperm(mounted):
    (mounted.mnt / "f").write_bytes(b"x")
    raises_errno(errno.EPERM, os.link, mounted.mnt / "f", mounted.mnt / "g")
    assert not (mounted.mnt / "g").exists()


@needs_umbrafs
def test_xattrs_are_not_supported(mounted):
    p = mounted.mnt / "f"
    p.write_bytes(b"x")
    raises_errno(errno.ENOTSUP, os.setxattr, p, "user.test", b"1")
    raises_errno(errno.ENOTSUP, os.getxattr, p, "user.test")
    raises_errno(errno.ENOTSUP, os.listxattr, p)
    assert p.read_bytes() == b"x"


# --------------------------------------------------------- tools, threads, mmap


def test_cp_a_tree_then_diff(mounted):
    from conftest import PLAINTEXT_TREE
    dst = mounted.mnt / "copy"
    subprocess.run(["cp", "-a", str(PLAINTEXT_TREE), str(dst)], check=True)
    r = subprocess.run(["diff", "-r", "--no-dereference", str(PLAINTEXT_TREE), str(dst)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    for rel, node in tree_of(PLAINTEXT_TREE).items():
        a, b = os.lstat(PLAINTEXT_TREE / rel), os.lstat(dst / rel)
        assert a.st_mode == b.st_mode, rel
        if node[0] == "f":
            assert a.st_mtime_ns == b.st_mtime_ns, rel
    mounted.remount()
    assert tree_of(dst) == tree_of(PLAINTEXT_TREE)


def test_git_init_add_commit_fsck(mounted):
    if not shutil.which("git"):
        pytest.skip("git is not installed")
    repo = mounted.mnt / "repo"
    os.mkdir(repo)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(repo),
           "GIT_AUTHOR_NAME": "e2e", "GIT_AUTHOR_EMAIL": "e2e@example.org",
           "GIT_COMMITTER_NAME": "e2e", "GIT_COMMITTER_EMAIL": "e2e@example.org"}

    def git(*args):
        r = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True)
        assert r.returncode == 0, f"git {' '.join(args)}: {r.stdout}{r.stderr}"
        return r.stdout

    git("init", "-q")
    for i in range(20):
        (repo / f"file{i}.txt").write_text(f"content {i}\n" * (i * 500 + 1))
    os.mkdir(repo / "sub")
    (repo / "sub" / "bin").write_bytes(os.urandom(200000))
    git("add", "-A")
    git("commit", "-q", "-m", "first")
    (repo / "file3.txt").write_text("changed\n")
    git("commit", "-q", "-am", "second")
    git("gc", "-q")
    git("fsck", "--full", "--strict")
    assert git("status", "--porcelain") == ""
    mounted.remount()
    git("fsck", "--full", "--strict")
    assert git("log", "--format=%s") == "second\nfirst\n"


def test_concurrent_writers_on_different_files(mounted):
    size, n_files = 4 << 20, 8
    datas = [os.urandom(size) for _ in range(n_files)]
    errors = []

    def writer(i):
        try:
            rng = random.Random(i)
            with open(mounted.mnt / f"w{i}", "wb") as f:
                pos = 0
                while pos < size:
                    n = rng.randrange(1, 200000)
                    f.write(datas[i][pos:pos + n])
                    pos += n
                f.flush()
                os.fsync(f.fileno())
        except Exception as e:  # reported below, in the main thread
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(n_files)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i in range(n_files):
        assert (mounted.mnt / f"w{i}").read_bytes() == datas[i], i
    mounted.remount()
    for i in range(n_files):
        assert (mounted.mnt / f"w{i}").read_bytes() == datas[i], i


def test_mmap_read(mounted):
    data = os.urandom(3 * CHUNK + 123)
    p = mounted.mnt / "mapped"
    p.write_bytes(data)
    mounted.remount()
    with open(p, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        assert mm[:] == data
        assert mm[CHUNK - 5:CHUNK + 5] == data[CHUNK - 5:CHUNK + 5]
