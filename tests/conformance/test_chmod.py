"""chmod(2), fchmod(2): set the mode bits; ctime moves on, mtime does not."""
import errno
import os
import stat

from conftest import NOBODY, OTHER, check, fails, name_too_long, tick, times


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_chmod_sets_mode_and_ctime(ctx):
    f = ctx.make("f")
    d = ctx.mkdir("d")
    for path in (f, d):
        for mode in (0o000, 0o111, 0o444, 0o640, 0o777, 0o4755, 0o1755, 0o644):
            before = times(path)
            tick()
            os.chmod(path, mode)
            assert mode_of(path) == mode, (path, oct(mode))
            _, mtime, ctime = times(path)
            assert ctime > before[2] and mtime == before[1], (path, oct(mode))


def test_fchmod_through_open_file(ctx):
    f = ctx.make("f", b"data", 0o644)
    fd = os.open(f, os.O_RDONLY)
    try:
        os.fchmod(fd, 0o600)
        assert stat.S_IMODE(os.fstat(fd).st_mode) == 0o600
    finally:
        os.close(fd)
    assert mode_of(f) == 0o600


def test_fchmod_of_open_unlinked_file(ctx):
    """ext4 keeps the inode until the last close: its mode still changes."""
    f = ctx.make("f", b"data", 0o644)
    fd = os.open(f, os.O_RDWR)
    try:
        os.unlink(f)
        os.fchmod(fd, 0o600)
        assert stat.S_IMODE(os.fstat(fd).st_mode) == 0o600
    finally:
        os.close(fd)


def test_chmod_follows_symlink(ctx):
    f = ctx.make("f", mode=0o644)
    os.symlink("f", ctx.dir / "l")
    os.chmod(ctx.dir / "l", 0o600)
    assert mode_of(f) == 0o600
    assert stat.S_IMODE(os.lstat(ctx.dir / "l").st_mode) == 0o777


def test_chmod_setgid_dir_of_own_group(ctx):
    d = ctx.mkdir("d")
    os.chmod(d, 0o2775)
    assert mode_of(d) == 0o2775


def test_chmod_setgid_of_a_group_not_ones_own_is_dropped(ctx):
    """Linux: chmod by a non-member without CAP_FSETID silently clears S_ISGID."""
    f = ctx.make("f")
    with ctx.root():
        os.chown(f, ctx.uid, OTHER)
    os.chmod(f, 0o2755)
    assert mode_of(f) == (0o2755 if ctx.user == "root" else 0o755)


def test_chmod_errors_of_the_path(ctx):
    ctx.make("f")
    fails(errno.ENOENT, os.chmod, ctx.dir / "missing", 0o600)
    fails(errno.ENOENT, os.chmod, ctx.dir / "missing" / "x", 0o600)
    fails(errno.ENOTDIR, os.chmod, ctx.dir / "f" / "x", 0o600)
    fails(errno.ENAMETOOLONG, os.chmod, ctx.dir / name_too_long(), 0o600)
    os.symlink("loop", ctx.dir / "loop")
    fails(errno.ELOOP, os.chmod, ctx.dir / "loop", 0o600)


def test_chmod_needs_search_permission(ctx):
    d = ctx.mkdir("d")
    ctx.make("d/f", mode=0o644)
    os.chmod(d, 0o666)
    check(ctx.denied(errno.EACCES), os.chmod, d / "f", 0o600)


def test_chmod_by_non_owner(ctx):
    f = ctx.make("f", mode=0o666, owner=(OTHER, OTHER))
    d = ctx.mkdir("d", mode=0o777, owner=(OTHER, OTHER))
    check(ctx.denied(errno.EPERM), os.chmod, f, 0o600)
    check(ctx.denied(errno.EPERM), os.chmod, d, 0o700)
    with ctx.root():
        os.chown(f, NOBODY, OTHER)
    os.chmod(f, 0o640)  # the owner may, whatever the group
    assert mode_of(f) == 0o640


def test_chmod_persists_across_remount(ctx):
    f = ctx.make("f")
    d = ctx.mkdir("d")
    os.chmod(f, 0o4751)
    os.chmod(d, 0o1713)
    ctx.remount()
    assert mode_of(f) == 0o4751 and mode_of(d) == 0o1713


def test_write_by_non_owner_clears_setuid_and_setgid(ctx):
    """Linux: a write by someone without CAP_FSETID clears S_ISUID, and
    S_ISGID when group-executable; root's writes keep them."""
    f = ctx.make("f", b"x", 0o666, owner=(OTHER, OTHER))
    with ctx.root():
        os.chmod(f, 0o6777)
    with open(f, "ab") as out:
        out.write(b"more")
    assert mode_of(f) == (0o6777 if ctx.user == "root" else 0o777)
    assert f.read_bytes() == b"xmore"
