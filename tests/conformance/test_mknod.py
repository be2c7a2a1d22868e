"""mknod(2), mkfifo(3), bind(2) of a UNIX socket: the vault format has only
regular files, directories and symlinks, so umbrafs makes regular files and
answers EPERM for FIFOs, sockets and devices (as mknod(2) documents for
file systems that do not support the type). ext4 makes them all (devices
need CAP_MKNOD, which nobody lacks: EPERM on both)."""
import errno
import os
import socket
import stat

from conftest import check, fails, name_too_long


def test_mknod_regular_file(ctx):
    os.mknod(ctx.dir / "f", stat.S_IFREG | 0o640)
    st = os.stat(ctx.dir / "f")
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o640
    assert (st.st_uid, st.st_gid, st.st_size) == (ctx.uid, ctx.gid, 0)
    fails(errno.EEXIST, os.mknod, ctx.dir / "f", stat.S_IFREG | 0o640)


def test_mkfifo(ctx):
    check(ctx.differs(umbrafs=errno.EPERM, ext4=None), os.mkfifo, ctx.dir / "fifo", 0o644)
    if ctx.plain:
        assert stat.S_ISFIFO(os.lstat(ctx.dir / "fifo").st_mode)
    else:
        assert not os.path.lexists(ctx.dir / "fifo")


def test_devices(ctx):
    expected = ctx.denied(errno.EPERM) or ctx.differs(umbrafs=errno.EPERM, ext4=None)
    check(expected, os.mknod, ctx.dir / "chr", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    check(expected, os.mknod, ctx.dir / "blk", stat.S_IFBLK | 0o600, os.makedev(7, 0))
    assert sorted(os.listdir(ctx.dir)) == ([] if expected else ["blk", "chr"])


def test_unix_socket(ctx):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        check(ctx.differs(umbrafs=errno.EPERM, ext4=None), s.bind, str(ctx.dir / "sock"))
    assert os.path.lexists(ctx.dir / "sock") == ctx.plain


def test_mknod_errors_of_the_path(ctx):
    ctx.make("f")
    fails(errno.EEXIST, os.mkfifo, ctx.dir / "f")
    fails(errno.ENOENT, os.mkfifo, ctx.dir / "missing" / "p")
    fails(errno.ENOTDIR, os.mkfifo, ctx.dir / "f" / "p")
    fails(errno.ENAMETOOLONG, os.mknod, ctx.dir / name_too_long(), stat.S_IFREG | 0o600)
    ro = ctx.mkdir("ro", mode=0o555)
    check(ctx.denied(errno.EACCES), os.mknod, ro / "f", stat.S_IFREG | 0o600)
