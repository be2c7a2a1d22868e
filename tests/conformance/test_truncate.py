"""truncate(2), ftruncate(2): set the size, zeros past the old end; the
mtime and ctime move on; the errno cases."""
import errno
import os

import pytest

from conftest import OTHER, check, fails, name_too_long, tick, times

DATA = bytes(range(256)) * 400  # 102400 bytes: four chunks of 32 KiB, the last partial


@pytest.mark.parametrize("size", [0, 1, 32768, 70000, 102400, 200000])
def test_truncate_to_size(ctx, size):
    f = ctx.make("f", DATA)
    before = times(f)
    tick()
    os.truncate(f, size)
    assert os.stat(f).st_size == size
    assert f.read_bytes() == DATA[:size] + b"\0" * max(0, size - len(DATA))
    if size != len(DATA):
        _, mtime, ctime = times(f)
        assert mtime > before[1] and ctime > before[2]


def test_truncate_to_the_same_size(ctx):
    """POSIX asks for new mtime/ctime only "if the file size is changed";
    ext4 moves them on anyway, umbrafs leaves them (and the content) as is."""
    f = ctx.make("f", b"12345")
    before = times(f)
    tick()
    os.truncate(f, 5)
    moved = ctx.differs(umbrafs=False, ext4=True)
    _, mtime, ctime = times(f)
    assert (mtime > before[1], ctime > before[2]) == (moved, moved)
    assert f.read_bytes() == b"12345"


def test_ftruncate_through_open_file(ctx):
    f = ctx.make("f", DATA)
    fd = os.open(f, os.O_RDWR)
    try:
        os.ftruncate(fd, 10)
        assert os.fstat(fd).st_size == 10 and os.pread(fd, 100, 0) == DATA[:10]
        os.ftruncate(fd, 40000)
        assert os.pread(fd, 50000, 0) == DATA[:10] + b"\0" * 39990
    finally:
        os.close(fd)
    assert f.read_bytes() == DATA[:10] + b"\0" * 39990


def test_ftruncate_of_a_read_only_descriptor(ctx):
    f = ctx.make("f", b"data")
    fd = os.open(f, os.O_RDONLY)
    try:
        fails((errno.EINVAL, errno.EBADF), os.ftruncate, fd, 0)
    finally:
        os.close(fd)
    assert f.read_bytes() == b"data"


def test_truncate_follows_symlinks(ctx):
    f = ctx.make("f", b"long content")
    os.symlink("f", ctx.dir / "l")
    os.truncate(ctx.dir / "l", 4)
    assert f.read_bytes() == b"long"


def test_truncate_errors(ctx):
    ctx.make("f", b"x")
    ctx.mkdir("d")
    fails(errno.EISDIR, os.truncate, ctx.dir / "d", 0)
    fails(errno.ENOENT, os.truncate, ctx.dir / "missing", 0)
    fails(errno.ENOTDIR, os.truncate, ctx.dir / "f" / "x", 0)
    fails(errno.ENAMETOOLONG, os.truncate, ctx.dir / name_too_long(), 0)
    fails(errno.EINVAL, os.truncate, ctx.dir / "f", -1)
    assert (ctx.dir / "f").read_bytes() == b"x"


def test_truncate_needs_write_permission(ctx):
    mine = ctx.make("mine", b"mine", 0o444)
    theirs = ctx.make("theirs", b"theirs", 0o644, owner=(OTHER, OTHER))
    shared = ctx.make("shared", b"shared", 0o646, owner=(OTHER, OTHER))
    check(ctx.denied(errno.EACCES), os.truncate, mine, 0)
    check(ctx.denied(errno.EACCES), os.truncate, theirs, 0)
    os.truncate(shared, 2)
    assert shared.read_bytes() == b"sh"
    d = ctx.mkdir("d")
    ctx.make("d/f", b"x", 0o666)
    os.chmod(d, 0o666)
    check(ctx.denied(errno.EACCES), os.truncate, d / "f", 0)


@pytest.mark.users("root")
def test_truncate_persists_across_remount(ctx):
    f = ctx.make("f", DATA)
    os.truncate(f, 50000)
    ctx.remount()
    assert f.read_bytes() == DATA[:50000]
    os.truncate(f, 90000)
    ctx.remount()
    assert f.read_bytes() == DATA[:50000] + b"\0" * 40000
