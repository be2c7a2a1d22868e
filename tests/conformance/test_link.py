"""link(2): the vault format has no hard links, so umbrafs answers EPERM
(as link(2) documents for file systems without them), and nothing is made.
ext4 makes the link; the errors of the path come first either way."""
import errno
import os

from conftest import check, fails, name_too_long


def test_link_of_a_file(ctx):
    f = ctx.make("f", b"data")
    check(ctx.differs(umbrafs=errno.EPERM, ext4=None), os.link, f, ctx.dir / "g")
    if ctx.plain:
        assert os.stat(f).st_nlink == 2
    else:
        assert not os.path.lexists(ctx.dir / "g")
        assert os.stat(f).st_nlink == 1
    assert f.read_bytes() == b"data"


def test_link_of_a_symlink_and_into_a_subdir(ctx):
    ctx.make("f")
    os.mkdir(ctx.dir / "d")
    os.symlink("f", ctx.dir / "l")
    expected = ctx.differs(umbrafs=errno.EPERM, ext4=None)
    check(expected, os.link, ctx.dir / "l", ctx.dir / "d" / "l2", follow_symlinks=False)
    check(expected, os.link, ctx.dir / "f", ctx.dir / "d" / "f2")


def test_link_of_a_directory_is_eperm(ctx):
    os.mkdir(ctx.dir / "d")
    fails(errno.EPERM, os.link, ctx.dir / "d", ctx.dir / "e")


def test_link_errors_of_the_path(ctx):
    f = ctx.make("f")
    ctx.make("g")
    fails(errno.EEXIST, os.link, f, ctx.dir / "g")
    fails(errno.ENOENT, os.link, ctx.dir / "missing", ctx.dir / "h")
    fails(errno.ENOENT, os.link, f, ctx.dir / "missing" / "h")
    fails(errno.ENOTDIR, os.link, f, ctx.dir / "f" / "h")
    fails(errno.ENAMETOOLONG, os.link, f, ctx.dir / name_too_long())


def test_link_into_an_unwritable_dir(ctx):
    f = ctx.make("f")
    d = ctx.mkdir("d", mode=0o555)
    expected = ctx.denied(errno.EACCES) or ctx.differs(umbrafs=errno.EPERM, ext4=None)
    check(expected, os.link, f, d / "g")
