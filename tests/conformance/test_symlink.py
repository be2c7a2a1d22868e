"""symlink(2), readlink(2): a link holding its target byte for byte, owned
by the caller; the parent's mtime and ctime move on; the errno cases."""
import errno
import os
import stat
import time

import pytest

from conftest import check, fails, name_too_long, tick, times

TARGETS = ["f", "../up", "/abs/olute/path", "ünï cödé", "dir/", "a" * 1024, "x/" * 2047]


def test_symlink_target_size_owner_and_times(ctx):
    for i, target in enumerate(TARGETS):
        before = times(ctx.dir)
        start = time.time_ns()
        tick()
        link = ctx.dir / f"l{i}"
        os.symlink(target, link)
        assert os.readlink(link) == target
        st = os.lstat(link)
        assert stat.S_ISLNK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o777
        assert st.st_size == len(os.fsencode(target))
        assert (st.st_uid, st.st_gid) == (ctx.uid, ctx.gid)
        assert min(st.st_mtime_ns, st.st_ctime_ns) > start
        _, mtime, ctime = times(ctx.dir)
        assert mtime > before[1] and ctime > before[2], target


def test_symlinks_resolve(ctx):
    ctx.make("f", b"through")
    ctx.mkdir("d")
    ctx.make("d/g", b"deeper")
    os.symlink("f", ctx.dir / "rel")
    os.symlink(str(ctx.dir / "f"), ctx.dir / "abs")
    os.symlink("d", ctx.dir / "dl")
    os.symlink("../f", ctx.dir / "d" / "up")
    os.symlink("rel", ctx.dir / "chain")
    for name in ("rel", "abs", "chain", "d/up"):
        assert (ctx.dir / name).read_bytes() == b"through", name
    assert (ctx.dir / "dl" / "g").read_bytes() == b"deeper"
    assert sorted(os.listdir(ctx.dir / "dl")) == ["g", "up"]


def test_symlink_over_an_existing_name(ctx):
    ctx.make("f")
    ctx.mkdir("d")
    os.symlink("x", ctx.dir / "l")
    for name in ("f", "d", "l"):
        fails(errno.EEXIST, os.symlink, "y", ctx.dir / name)
    assert os.readlink(ctx.dir / "l") == "x"


def test_symlink_errors_of_the_path(ctx):
    ctx.make("f")
    fails(errno.ENOENT, os.symlink, "x", ctx.dir / "missing" / "l")
    fails(errno.ENOTDIR, os.symlink, "x", ctx.dir / "f" / "l")
    fails(errno.ENAMETOOLONG, os.symlink, "x", ctx.dir / name_too_long())
    fails(errno.ENAMETOOLONG, os.symlink, "x" * 4096, ctx.dir / "l")
    fails(errno.ENOENT, os.symlink, "", ctx.dir / "empty")


def test_readlink_errors(ctx):
    ctx.make("f")
    ctx.mkdir("d")
    fails(errno.EINVAL, os.readlink, ctx.dir / "f")
    fails(errno.EINVAL, os.readlink, ctx.dir / "d")
    fails(errno.ENOENT, os.readlink, ctx.dir / "missing")
    fails(errno.ENOTDIR, os.readlink, ctx.dir / "f" / "x")


def test_symlink_loops(ctx):
    os.symlink("self", ctx.dir / "self")
    os.symlink("b", ctx.dir / "a")
    os.symlink("a", ctx.dir / "b")
    fails(errno.ELOOP, os.stat, ctx.dir / "self")
    fails(errno.ELOOP, os.stat, ctx.dir / "a")
    fails(errno.ELOOP, os.stat, ctx.dir / "a" / "x")
    assert os.readlink(ctx.dir / "a") == "b"


def test_symlink_needs_write_and_search_permission(ctx):
    ro = ctx.mkdir("ro", mode=0o555)
    noexec = ctx.mkdir("noexec", mode=0o666)
    check(ctx.denied(errno.EACCES), os.symlink, "x", ro / "l")
    check(ctx.denied(errno.EACCES), os.symlink, "x", noexec / "l")


@pytest.mark.users("root")
def test_symlink_persists_across_remount(ctx):
    for i, target in enumerate(TARGETS):
        os.symlink(target, ctx.dir / f"l{i}")
    ctx.remount()
    for i, target in enumerate(TARGETS):
        assert os.readlink(ctx.dir / f"l{i}") == target
