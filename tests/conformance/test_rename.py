"""rename(2), renameat2(2): move or replace an entry atomically; the mtime
and ctime of both parents move on; the errno cases, sticky directories."""
import errno
import os
import stat

import pytest

from conftest import (OTHER, RENAME_EXCHANGE, RENAME_NOREPLACE, check, fails, name_too_long,
                      renameat2, tick, times)


def test_rename_file_moves_parents_times_on(ctx):
    a = ctx.mkdir("a")
    b = ctx.mkdir("b")
    f = ctx.make("a/f", b"payload", 0o640)
    before_a, before_b, before_f = times(a), times(b), times(f)
    tick()
    os.rename(f, b / "g")
    assert not os.path.lexists(f) and (b / "g").read_bytes() == b"payload"
    st = os.stat(b / "g")
    assert stat.S_IMODE(st.st_mode) == 0o640 and (st.st_uid, st.st_gid) == (ctx.uid, ctx.gid)
    for path, before in ((a, before_a), (b, before_b)):
        _, mtime, ctime = times(path)
        assert mtime > before[1] and ctime > before[2], path
    assert times(b / "g")[1] == before_f[1]  # the content did not change


def test_rename_moves_ctime_of_the_renamed_node(ctx):
    """POSIX leaves it open; Linux file systems (ext4) move the renamed node's
    ctime on. umbrafs does for files, whose object is what moves in the
    store, and not for symlinks and directories, whose attributes live on
    objects that stay as they are (symlink.c9r, the content folder)."""
    ctx.make("f")
    os.mkdir(ctx.dir / "d")
    os.symlink("f", ctx.dir / "l")
    kept_by_umbrafs = ctx.differs(umbrafs=False, ext4=True)
    for name, moves in (("f", True), ("l", kept_by_umbrafs), ("d", kept_by_umbrafs)):
        before = times(ctx.dir / name, follow=False)
        tick()
        os.rename(ctx.dir / name, ctx.dir / (name + "2"))
        assert (times(ctx.dir / (name + "2"), follow=False)[2] > before[2]) == moves, name


def test_rename_replaces_a_file(ctx):
    ctx.make("a", b"new")
    ctx.make("b", b"old" * 10000)
    fd = os.open(ctx.dir / "b", os.O_RDONLY)
    try:
        os.rename(ctx.dir / "a", ctx.dir / "b")
        assert os.read(fd, 3) == b"old"
    finally:
        os.close(fd)
    assert (ctx.dir / "b").read_bytes() == b"new" and os.listdir(ctx.dir) == ["b"]


def test_rename_directory_with_content(ctx):
    ctx.mkdir("x")
    ctx.mkdir("x/d")
    ctx.make("x/d/f", b"inside")
    ctx.mkdir("y")
    ctx.mkdir("y/empty")
    os.rename(ctx.dir / "x" / "d", ctx.dir / "y" / "empty")
    assert (ctx.dir / "y" / "empty" / "f").read_bytes() == b"inside"
    assert os.listdir(ctx.dir / "x") == []


def test_rename_symlink_not_its_target(ctx):
    ctx.make("f")
    os.symlink("f", ctx.dir / "l")
    os.rename(ctx.dir / "l", ctx.dir / "m")
    assert os.readlink(ctx.dir / "m") == "f" and os.path.isfile(ctx.dir / "f")


def test_rename_onto_itself_changes_nothing(ctx):
    f = ctx.make("f", b"same")
    os.rename(f, f)
    ctx.mkdir("d")
    os.rename(ctx.dir / "d", ctx.dir / "d")
    assert f.read_bytes() == b"same" and os.path.isdir(ctx.dir / "d")


def test_rename_kind_mismatches(ctx):
    ctx.make("f")
    ctx.mkdir("empty")
    ctx.mkdir("full")
    ctx.make("full/x")
    ctx.mkdir("d")
    fails(errno.EISDIR, os.rename, ctx.dir / "f", ctx.dir / "empty")
    fails(errno.ENOTDIR, os.rename, ctx.dir / "d", ctx.dir / "f")
    fails((errno.ENOTEMPTY, errno.EEXIST), os.rename, ctx.dir / "d", ctx.dir / "full")
    assert sorted(os.listdir(ctx.dir)) == ["d", "empty", "f", "full"]


def test_rename_directory_into_itself(ctx):
    ctx.mkdir("d")
    ctx.mkdir("d/sub")
    fails(errno.EINVAL, os.rename, ctx.dir / "d", ctx.dir / "d" / "inside")
    fails(errno.EINVAL, os.rename, ctx.dir / "d", ctx.dir / "d" / "sub" / "deeper")
    # pathlib would drop a trailing "."; ".." is only ever EBUSY on Linux
    fails(errno.EBUSY, os.rename, f"{ctx.dir}/d/.", ctx.dir / "e")
    fails(errno.EBUSY, os.rename, ctx.dir / "d" / "sub", f"{ctx.dir}/d/sub/..")


def test_rename_errors_of_the_path(ctx):
    ctx.make("f")
    fails(errno.ENOENT, os.rename, ctx.dir / "missing", ctx.dir / "g")
    fails(errno.ENOENT, os.rename, ctx.dir / "f", ctx.dir / "missing" / "g")
    fails(errno.ENOTDIR, os.rename, ctx.dir / "f" / "x", ctx.dir / "g")
    fails(errno.ENOTDIR, os.rename, ctx.dir / "f", ctx.dir / "f" / "g")
    fails(errno.ENAMETOOLONG, os.rename, ctx.dir / "f", ctx.dir / name_too_long())
    os.rename(ctx.dir / "f", ctx.dir / ("n" * 255))
    assert os.listdir(ctx.dir) == ["n" * 255]


def test_rename_noreplace(ctx):
    ctx.make("a", b"a")
    ctx.make("b", b"b")
    fails(errno.EEXIST, renameat2, ctx.dir / "a", ctx.dir / "b", RENAME_NOREPLACE)
    renameat2(ctx.dir / "a", ctx.dir / "c", RENAME_NOREPLACE)
    assert sorted(os.listdir(ctx.dir)) == ["b", "c"]
    assert (ctx.dir / "c").read_bytes() == b"a"


def test_rename_exchange_swaps_or_is_einval(ctx):
    """The CLI contract allows EINVAL for RENAME_EXCHANGE; ext4 swaps."""
    ctx.make("a", b"a")
    ctx.mkdir("b")
    check(ctx.differs(umbrafs=errno.EINVAL, ext4=None),
          renameat2, ctx.dir / "a", ctx.dir / "b", RENAME_EXCHANGE)
    swapped = ctx.plain
    assert os.path.isdir(ctx.dir / ("a" if swapped else "b"))
    assert (ctx.dir / ("b" if swapped else "a")).read_bytes() == b"a"


def test_rename_needs_write_permission_on_both_parents(ctx):
    ro = ctx.mkdir("ro", mode=0o755)
    ctx.make("ro/f")
    os.chmod(ro, 0o555)
    rw = ctx.mkdir("rw")
    ctx.make("rw/g")
    check(ctx.denied(errno.EACCES), os.rename, ro / "f", rw / "f")
    check(ctx.denied(errno.EACCES), os.rename, rw / "g", ro / "g")


def test_moving_a_directory_needs_write_permission_on_it(ctx):
    """Its '..' changes when it moves to another parent (not within one)."""
    ctx.mkdir("a")
    ctx.mkdir("b")
    d = ctx.mkdir("a/d", mode=0o555)
    os.rename(d, ctx.dir / "a" / "e")
    check(ctx.denied(errno.EACCES), os.rename, ctx.dir / "a" / "e", ctx.dir / "b" / "e")


def test_sticky_directory(ctx):
    """In a sticky directory only the owner of an entry (or of the
    directory, or root) may rename it or replace it."""
    with ctx.root():
        sticky = ctx.mkdir("sticky", mode=0o1777, owner=(OTHER, OTHER))
        (sticky / "theirs").write_bytes(b"t")
        os.chown(sticky / "theirs", OTHER, OTHER)
        os.chmod(sticky / "theirs", 0o666)
    (sticky / "mine").write_bytes(b"m")
    check(ctx.denied(errno.EPERM), os.rename, sticky / "theirs", sticky / "taken")
    if ctx.user == "nobody":  # replacing theirs is removing it
        fails(errno.EPERM, os.rename, sticky / "mine", sticky / "theirs")
    os.rename(sticky / "mine", sticky / "mine2")
    assert (sticky / "mine2").read_bytes() == b"m"
    assert sorted(os.listdir(sticky)) == ["mine2", "taken" if ctx.user == "root" else "theirs"]


@pytest.mark.users("root")
def test_rename_persists_across_remount(ctx):
    ctx.mkdir("a")
    ctx.mkdir("a/d")
    ctx.make("a/d/f", b"deep")
    ctx.make("x", b"x")
    os.rename(ctx.dir / "a" / "d", ctx.dir / "moved")
    os.rename(ctx.dir / "x", ctx.dir / "moved" / "x2")
    ctx.remount()
    assert sorted(os.listdir(ctx.dir)) == ["a", "moved"]
    assert (ctx.dir / "moved" / "f").read_bytes() == b"deep"
    assert (ctx.dir / "moved" / "x2").read_bytes() == b"x"
