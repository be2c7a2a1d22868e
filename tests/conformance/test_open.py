"""open(2) and creat: O_CREAT makes a file with the mode asked (less the
umask) owned by the caller and moves the parent's mtime/ctime on; O_TRUNC
empties a file and moves its mtime/ctime on; and the errno cases."""
import errno
import os
import stat
import time

from conftest import OTHER, check, fails, name_too_long, open_close, tick, times


def test_create_mode_owner_and_times(ctx):
    for mode in (0o644, 0o600, 0o000, 0o4755, 0o1644):
        before_parent = times(ctx.dir)
        start = time.time_ns()
        tick()
        f = ctx.dir / f"f{mode:o}"
        open_close(f, os.O_CREAT | os.O_WRONLY, mode)
        st = os.stat(f)
        assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == mode
        assert (st.st_uid, st.st_gid, st.st_size) == (ctx.uid, ctx.gid, 0)
        assert min(st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns) > start
        _, mtime, ctime = times(ctx.dir)
        assert mtime > before_parent[1] and ctime > before_parent[2], oct(mode)


def test_create_applies_umask(ctx):
    old = os.umask(0o077)
    try:
        open_close(ctx.dir / "f", os.O_CREAT | os.O_WRONLY, 0o666)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(ctx.dir / "f").st_mode) == 0o600


def test_create_in_setgid_dir_takes_its_group(ctx):
    parent = ctx.mkdir("shared")
    with ctx.root():
        os.chown(parent, ctx.uid, OTHER)
        os.chmod(parent, 0o2777)
    open_close(parent / "f", os.O_CREAT | os.O_WRONLY, 0o644)
    assert os.stat(parent / "f").st_gid == OTHER


def test_create_of_an_existing_file_changes_nothing(ctx):
    f = ctx.make("f", b"kept", 0o640)
    before, parent = times(f), times(ctx.dir)
    tick()
    open_close(f, os.O_CREAT | os.O_RDWR, 0o600)
    assert f.read_bytes() == b"kept" and stat.S_IMODE(os.stat(f).st_mode) == 0o640
    assert times(f)[1:] == before[1:] and times(ctx.dir)[1:] == parent[1:]


def test_create_through_a_dangling_symlink_makes_its_target(ctx):
    os.symlink("target", ctx.dir / "l")
    open_close(ctx.dir / "l", os.O_CREAT | os.O_WRONLY, 0o600)
    assert stat.S_ISREG(os.lstat(ctx.dir / "target").st_mode)


def test_trunc_empties_and_moves_times_on(ctx):
    f = ctx.make("f", b"x" * 100000)
    before = times(f)
    tick()
    open_close(f, os.O_WRONLY | os.O_TRUNC)
    assert os.stat(f).st_size == 0 and f.read_bytes() == b""
    _, mtime, ctime = times(f)
    assert mtime > before[1] and ctime > before[2]


def test_excl_over_any_existing_name(ctx):
    ctx.make("f")
    os.mkdir(ctx.dir / "d")
    os.symlink("f", ctx.dir / "l")
    os.symlink("nowhere", ctx.dir / "dangling")
    for name in ("f", "d", "l", "dangling"):
        fails(errno.EEXIST, open_close, ctx.dir / name, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    assert not os.path.lexists(ctx.dir / "nowhere")


def test_directories_open_only_for_reading(ctx):
    d = ctx.mkdir("d")
    for flags in (os.O_WRONLY, os.O_RDWR, os.O_WRONLY | os.O_TRUNC, os.O_CREAT | os.O_RDONLY):
        fails(errno.EISDIR, open_close, d, flags)
    open_close(d, os.O_RDONLY | os.O_DIRECTORY)


def test_open_errors_of_the_path(ctx):
    ctx.make("f")
    os.symlink("nowhere", ctx.dir / "dangling")
    fails(errno.ENOENT, open_close, ctx.dir / "missing", os.O_RDONLY)
    fails(errno.ENOENT, open_close, ctx.dir / "dangling", os.O_RDONLY)
    fails(errno.ENOENT, open_close, ctx.dir / "missing" / "f", os.O_CREAT | os.O_WRONLY)
    fails(errno.ENOTDIR, open_close, ctx.dir / "f" / "x", os.O_CREAT | os.O_WRONLY)
    fails(errno.ENOTDIR, open_close, ctx.dir / "f", os.O_RDONLY | os.O_DIRECTORY)
    fails(errno.ENAMETOOLONG, open_close, ctx.dir / name_too_long(), os.O_CREAT | os.O_WRONLY)
    fails(errno.ENAMETOOLONG, open_close, ctx.dir / ("d/" * 2100), os.O_RDONLY)


def test_symlinks_nofollow_and_loops(ctx):
    ctx.make("f")
    os.symlink("f", ctx.dir / "l")
    os.symlink("b", ctx.dir / "a")
    os.symlink("a", ctx.dir / "b")
    fails(errno.ELOOP, open_close, ctx.dir / "l", os.O_RDONLY | os.O_NOFOLLOW)
    fails(errno.ELOOP, open_close, ctx.dir / "a", os.O_RDONLY)
    fails(errno.ELOOP, open_close, ctx.dir / "a" / "x", os.O_CREAT | os.O_WRONLY)
    open_close(ctx.dir / "f", os.O_RDONLY | os.O_NOFOLLOW)


def test_open_needs_permission_for_the_access_asked(ctx):
    wo = ctx.make("wo", b"x", 0o200)
    ro = ctx.make("ro", b"x", 0o444)
    none = ctx.make("none", b"x", 0o000)
    check(ctx.denied(errno.EACCES), open_close, wo, os.O_RDONLY)
    check(ctx.denied(errno.EACCES), open_close, ro, os.O_WRONLY)
    check(ctx.denied(errno.EACCES), open_close, ro, os.O_RDONLY | os.O_TRUNC)
    check(ctx.denied(errno.EACCES), open_close, none, os.O_RDONLY)
    open_close(wo, os.O_WRONLY)
    open_close(ro, os.O_RDONLY)
    assert ro.read_bytes() == (b"" if ctx.user == "root" else b"x")


def test_create_needs_write_and_search_permission(ctx):
    ro = ctx.mkdir("ro", mode=0o555)
    noexec = ctx.mkdir("noexec")
    ctx.make("noexec/inside", mode=0o666)
    os.chmod(noexec, 0o666)
    check(ctx.denied(errno.EACCES), open_close, ro / "f", os.O_CREAT | os.O_WRONLY)
    check(ctx.denied(errno.EACCES), open_close, noexec / "f", os.O_CREAT | os.O_WRONLY)
    check(ctx.denied(errno.EACCES), open_close, noexec / "inside", os.O_RDONLY)


def test_foreign_files_by_their_mode(ctx):
    d = ctx.mkdir("d", mode=0o755, owner=(OTHER, OTHER))
    with ctx.root():
        (d / "private").write_bytes(b"p")
        os.chmod(d / "private", 0o600)
        (d / "public").write_bytes(b"q")
        os.chmod(d / "public", 0o606)
    check(ctx.denied(errno.EACCES), open_close, d / "private", os.O_RDONLY)
    open_close(d / "public", os.O_RDWR)
    check(ctx.denied(errno.EACCES), open_close, d / "new", os.O_CREAT | os.O_WRONLY)
