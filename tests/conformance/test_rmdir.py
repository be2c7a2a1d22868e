"""rmdir(2): remove an empty directory; the parent's mtime and ctime move
on; the errno cases and sticky directories."""
import errno
import os

from conftest import OTHER, check, fails, name_too_long, tick, times


def test_rmdir_moves_parent_times_on(ctx):
    d = ctx.mkdir("d")
    before = times(ctx.dir)
    tick()
    os.rmdir(d)
    assert not os.path.lexists(d) and os.listdir(ctx.dir) == []
    _, mtime, ctime = times(ctx.dir)
    assert mtime > before[1] and ctime > before[2]


def test_rmdir_of_a_directory_the_user_cannot_enter(ctx):
    d = ctx.mkdir("d", mode=0o000)
    os.rmdir(d)
    assert not os.path.lexists(d)


def test_rmdir_of_a_non_empty_directory(ctx):
    for child in ("file", "dir", "link"):
        d = ctx.mkdir(f"d-{child}")
        if child == "file":
            ctx.make(f"d-{child}/x")
        elif child == "dir":
            os.mkdir(d / "x")
        else:
            os.symlink("nowhere", d / "x")
        fails((errno.ENOTEMPTY, errno.EEXIST), os.rmdir, d)
        assert os.listdir(d) == ["x"]


def test_rmdir_of_what_is_not_a_directory(ctx):
    ctx.make("f")
    ctx.mkdir("d")
    os.symlink("d", ctx.dir / "l")
    fails(errno.ENOTDIR, os.rmdir, ctx.dir / "f")
    fails(errno.ENOTDIR, os.rmdir, ctx.dir / "l")
    fails(errno.ENOTDIR, os.rmdir, ctx.dir / "f" / "x")
    assert os.path.isdir(ctx.dir / "d")


def test_rmdir_errors_of_the_path(ctx):
    ctx.mkdir("d")
    fails(errno.ENOENT, os.rmdir, ctx.dir / "missing")
    fails(errno.ENOENT, os.rmdir, ctx.dir / "missing" / "d")
    fails(errno.ENAMETOOLONG, os.rmdir, ctx.dir / name_too_long())
    fails(errno.EINVAL, os.rmdir, f"{ctx.dir}/d/.")  # not pathlib: it drops "."
    fails(errno.ENOTEMPTY, os.rmdir, f"{ctx.dir}/d/..")


def test_rmdir_needs_write_and_search_permission(ctx):
    ro = ctx.mkdir("ro")
    os.mkdir(ro / "d")
    os.chmod(ro, 0o555)
    noexec = ctx.mkdir("noexec")
    os.mkdir(noexec / "d")
    os.chmod(noexec, 0o666)
    check(ctx.denied(errno.EACCES), os.rmdir, ro / "d")
    check(ctx.denied(errno.EACCES), os.rmdir, noexec / "d")


def test_rmdir_in_a_sticky_directory(ctx):
    with ctx.root():
        sticky = ctx.mkdir("sticky", mode=0o1777, owner=(OTHER, OTHER))
        os.mkdir(sticky / "theirs", 0o777)
        os.chown(sticky / "theirs", OTHER, OTHER)
    os.mkdir(sticky / "mine")
    check(ctx.denied(errno.EPERM), os.rmdir, sticky / "theirs")
    os.rmdir(sticky / "mine")
    assert os.listdir(sticky) == ([] if ctx.user == "root" else ["theirs"])


def test_sticky_directory_owner_may_remove_anything(ctx):
    sticky = ctx.mkdir("sticky", mode=0o1777)
    with ctx.root():
        os.mkdir(sticky / "theirs", 0o777)
        os.chown(sticky / "theirs", OTHER, OTHER)
    os.rmdir(sticky / "theirs")
    assert os.listdir(sticky) == []
