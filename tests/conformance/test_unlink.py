"""unlink(2): remove a name; the parent's mtime and ctime move on; an open
file lives on; the errno cases and sticky directories."""
import errno
import os

from conftest import OTHER, check, fails, name_too_long, tick, times


def test_unlink_moves_parent_times_on(ctx):
    for name in ("f", "l"):
        if name == "f":
            ctx.make(name)
        else:
            os.symlink("f", ctx.dir / name)
        before = times(ctx.dir)
        tick()
        os.unlink(ctx.dir / name)
        assert not os.path.lexists(ctx.dir / name)
        _, mtime, ctime = times(ctx.dir)
        assert mtime > before[1] and ctime > before[2], name


def test_unlink_of_a_symlink_keeps_its_target(ctx):
    ctx.make("f", b"kept")
    ctx.mkdir("d")
    os.symlink("f", ctx.dir / "lf")
    os.symlink("d", ctx.dir / "ld")
    os.unlink(ctx.dir / "lf")
    os.unlink(ctx.dir / "ld")
    assert sorted(os.listdir(ctx.dir)) == ["d", "f"]


def test_unlink_of_a_file_the_user_cannot_read(ctx):
    f = ctx.make("f", b"x", 0o000)
    os.unlink(f)
    assert not os.path.lexists(f)


def test_open_file_lives_on_with_no_links(ctx):
    f = ctx.dir / "f"
    f.write_bytes(b"still here")  # no chmod: the kernel holds no attributes of it
    fd = os.open(f, os.O_RDWR)
    try:
        os.unlink(f)
        assert os.pread(fd, 100, 0) == b"still here"
        os.pwrite(fd, b"!", 10)
        st = os.fstat(fd)
        assert (st.st_nlink, st.st_size) == (0, 11)
    finally:
        os.close(fd)


def test_unlink_errors(ctx):
    ctx.make("f")
    ctx.mkdir("d")
    fails(errno.EISDIR, os.unlink, ctx.dir / "d")
    fails(errno.ENOENT, os.unlink, ctx.dir / "missing")
    fails(errno.ENOENT, os.unlink, ctx.dir / "missing" / "f")
    fails(errno.ENOTDIR, os.unlink, ctx.dir / "f" / "x")
    fails(errno.ENAMETOOLONG, os.unlink, ctx.dir / name_too_long())
    assert sorted(os.listdir(ctx.dir)) == ["d", "f"]


def test_unlink_needs_write_and_search_permission(ctx):
    ro = ctx.mkdir("ro")
    ctx.make("ro/f")
    os.chmod(ro, 0o555)
    noexec = ctx.mkdir("noexec")
    ctx.make("noexec/f")
    os.chmod(noexec, 0o666)
    check(ctx.denied(errno.EACCES), os.unlink, ro / "f")
    check(ctx.denied(errno.EACCES), os.unlink, noexec / "f")


def test_unlink_in_a_sticky_directory(ctx):
    with ctx.root():
        sticky = ctx.mkdir("sticky", mode=0o1777, owner=(OTHER, OTHER))
        (sticky / "theirs").write_bytes(b"t")
        os.chmod(sticky / "theirs", 0o666)
        os.chown(sticky / "theirs", OTHER, OTHER)
    (sticky / "mine").write_bytes(b"m")
    os.symlink("x", sticky / "mylink")
    check(ctx.denied(errno.EPERM), os.unlink, sticky / "theirs")
    os.unlink(sticky / "mine")
    os.unlink(sticky / "mylink")
    assert os.listdir(sticky) == ([] if ctx.user == "root" else ["theirs"])


def test_sticky_directory_owner_may_unlink_anything(ctx):
    sticky = ctx.mkdir("sticky", mode=0o1777)
    with ctx.root():
        (sticky / "theirs").write_bytes(b"t")
        os.chown(sticky / "theirs", OTHER, OTHER)
    os.unlink(sticky / "theirs")
    assert os.listdir(sticky) == []
