"""chown(2), lchown(2), fchown(2): set owner and group; ctime moves on. Only
root gives files away; an owner may change the group to one of its own."""
import errno
import os
import stat

import pytest

from conftest import NOBODY, OTHER, check, fails, name_too_long, tick, times


def owner_of(path, follow=True):
    st = os.stat(path) if follow else os.lstat(path)
    return st.st_uid, st.st_gid


@pytest.mark.users("root")
def test_root_gives_files_and_dirs_away(ctx):
    f = ctx.make("f")
    d = ctx.mkdir("d")
    for path in (f, d):
        before = times(path)
        tick()
        os.chown(path, OTHER, OTHER + 1)
        assert owner_of(path) == (OTHER, OTHER + 1)
        _, mtime, ctime = times(path)
        assert ctime > before[2] and mtime == before[1]
        os.chown(path, -1, NOBODY)
        assert owner_of(path) == (OTHER, NOBODY)
        os.chown(path, NOBODY, -1)
        assert owner_of(path) == (NOBODY, NOBODY)


def test_owner_sets_group_to_its_own(ctx):
    f = ctx.make("f")
    before = times(f)
    tick()
    os.chown(f, ctx.uid, ctx.gid)
    assert owner_of(f) == (ctx.uid, ctx.gid)
    assert times(f)[2] > before[2]
    os.chown(f, -1, -1)
    assert owner_of(f) == (ctx.uid, ctx.gid)


def test_giving_away_or_taking_a_foreign_group(ctx):
    f = ctx.make("f")
    check(ctx.denied(errno.EPERM), os.chown, f, OTHER, -1)
    check(ctx.denied(errno.EPERM), os.chown, f, -1, OTHER)
    want = (ctx.uid, ctx.gid) if ctx.user == "nobody" else (OTHER, OTHER)
    assert owner_of(f) == want


def test_chown_of_a_foreign_file(ctx):
    f = ctx.make("f", mode=0o666, owner=(OTHER, OTHER))
    check(ctx.denied(errno.EPERM), os.chown, f, ctx.uid, ctx.gid)
    check(ctx.denied(errno.EPERM), os.chown, f, -1, -1 if ctx.user == "root" else ctx.gid)


def test_chown_clears_setuid_and_setgid_of_executables(ctx):
    """Linux since 2.2.13: also when root changes the owner."""
    f = ctx.make("f", mode=0o6755)
    os.chown(f, ctx.uid, ctx.gid)
    assert stat.S_IMODE(os.stat(f).st_mode) == 0o755


def test_chown_follows_symlinks_lchown_does_not(ctx):
    f = ctx.make("f")
    os.symlink("f", ctx.dir / "l")
    link_owner = owner_of(ctx.dir / "l", follow=False)
    assert link_owner == (ctx.uid, ctx.gid)
    if ctx.user == "root":
        os.chown(ctx.dir / "l", OTHER, OTHER)
        assert owner_of(f) == (OTHER, OTHER)
        assert owner_of(ctx.dir / "l", follow=False) == link_owner
        os.lchown(ctx.dir / "l", NOBODY, OTHER)
        assert owner_of(ctx.dir / "l", follow=False) == (NOBODY, OTHER)
        assert owner_of(f) == (OTHER, OTHER)
    else:
        before = times(ctx.dir / "l", follow=False)
        tick()
        os.lchown(ctx.dir / "l", -1, ctx.gid)
        assert times(ctx.dir / "l", follow=False)[2] > before[2]
        fails(errno.EPERM, os.lchown, ctx.dir / "l", OTHER, -1)


def test_fchown_through_open_file(ctx):
    f = ctx.make("f", b"x")
    fd = os.open(f, os.O_RDONLY)
    try:
        check(ctx.denied(errno.EPERM), os.fchown, fd, OTHER, OTHER)
        want = (OTHER, OTHER) if ctx.user == "root" else (NOBODY, NOBODY)
        assert (os.fstat(fd).st_uid, os.fstat(fd).st_gid) == want
    finally:
        os.close(fd)
    assert owner_of(f) == want


def test_chown_errors_of_the_path(ctx):
    ctx.make("f")
    fails(errno.ENOENT, os.chown, ctx.dir / "missing", ctx.uid, -1)
    fails(errno.ENOTDIR, os.chown, ctx.dir / "f" / "x", ctx.uid, -1)
    fails(errno.ENAMETOOLONG, os.chown, ctx.dir / name_too_long(), ctx.uid, -1)
    os.symlink("missing", ctx.dir / "dangling")
    fails(errno.ENOENT, os.chown, ctx.dir / "dangling", ctx.uid, -1)


def test_chown_needs_search_permission(ctx):
    d = ctx.mkdir("d")
    ctx.make("d/f")
    os.chmod(d, 0o666)
    check(ctx.denied(errno.EACCES), os.chown, d / "f", ctx.uid, ctx.gid)


@pytest.mark.users("root")
def test_chown_persists_across_remount(ctx):
    f = ctx.make("f")
    d = ctx.mkdir("d")
    os.symlink("f", ctx.dir / "l")
    os.chown(f, OTHER, OTHER + 1)
    os.chown(d, OTHER + 2, OTHER + 3)
    os.lchown(ctx.dir / "l", OTHER + 4, OTHER + 5)
    ctx.remount()
    assert owner_of(f) == (OTHER, OTHER + 1)
    assert owner_of(d) == (OTHER + 2, OTHER + 3)
    assert owner_of(ctx.dir / "l", follow=False) == (OTHER + 4, OTHER + 5)
