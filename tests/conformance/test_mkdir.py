"""mkdir(2): a new directory with the mode asked (less the umask), owned by
the caller, its times now; the parent's mtime and ctime move on."""
import errno
import os
import stat
import time

import pytest

from conftest import OTHER, check, fails, name_too_long, tick, times


def test_mkdir_mode_owner_and_times(ctx):
    for mode in (0o755, 0o700, 0o000, 0o1777, 0o751):
        before_parent = times(ctx.dir)
        start = time.time_ns()
        tick()
        d = ctx.dir / f"d{mode:o}"
        os.mkdir(d, mode)
        st = os.stat(d)
        assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == mode
        assert (st.st_uid, st.st_gid) == (ctx.uid, ctx.gid)
        assert min(st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns) > start
        _, mtime, ctime = times(ctx.dir)
        assert mtime > before_parent[1] and ctime > before_parent[2], oct(mode)


def test_mkdir_applies_umask_and_ignores_setuid_setgid(ctx):
    old = os.umask(0o027)
    try:
        os.mkdir(ctx.dir / "a", 0o777)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(ctx.dir / "a").st_mode) == 0o750
    os.mkdir(ctx.dir / "b", 0o6755)  # Linux keeps only the permissions and S_ISVTX
    assert stat.S_IMODE(os.stat(ctx.dir / "b").st_mode) == 0o755


def test_mkdir_in_setgid_dir_inherits_group_and_setgid(ctx):
    """Linux (and ext4): a directory made in a set-group-ID directory takes
    its group and is set-group-ID itself."""
    parent = ctx.mkdir("shared")
    with ctx.root():
        os.chown(parent, ctx.uid, OTHER)
        os.chmod(parent, 0o2777)
    os.mkdir(parent / "sub", 0o755)
    st = os.stat(parent / "sub")
    assert st.st_gid == OTHER
    assert stat.S_IMODE(st.st_mode) == 0o2755


def test_mkdir_names_up_to_255_bytes(ctx):
    os.mkdir(ctx.dir / ("d" * 255))
    os.mkdir(ctx.dir / ("é" * 127))  # 254 bytes
    assert os.path.isdir(ctx.dir / ("d" * 255)) and os.path.isdir(ctx.dir / ("é" * 127))
    fails(errno.ENAMETOOLONG, os.mkdir, ctx.dir / name_too_long())
    fails(errno.ENAMETOOLONG, os.mkdir, ctx.dir / ("é" * 128))


def test_mkdir_over_an_existing_name(ctx):
    ctx.make("f")
    os.mkdir(ctx.dir / "d")
    os.symlink("d", ctx.dir / "l")
    os.symlink("nowhere", ctx.dir / "dangling")
    for name in ("f", "d", "l", "dangling"):
        fails(errno.EEXIST, os.mkdir, ctx.dir / name)
    assert not os.path.exists(ctx.dir / "nowhere")


def test_mkdir_errors_of_the_path(ctx):
    ctx.make("f")
    fails(errno.ENOENT, os.mkdir, ctx.dir / "missing" / "d")
    fails(errno.ENOTDIR, os.mkdir, ctx.dir / "f" / "d")
    os.symlink("loop", ctx.dir / "loop")
    fails(errno.ELOOP, os.mkdir, ctx.dir / "loop" / "d")


def test_mkdir_needs_write_and_search_permission(ctx):
    ro = ctx.mkdir("ro", mode=0o555)
    noexec = ctx.mkdir("noexec", mode=0o666)
    check(ctx.denied(errno.EACCES), os.mkdir, ro / "d")
    check(ctx.denied(errno.EACCES), os.mkdir, noexec / "d")
    foreign = ctx.mkdir("foreign", mode=0o755, owner=(OTHER, OTHER))
    check(ctx.denied(errno.EACCES), os.mkdir, foreign / "d")


def test_directory_link_count(ctx):
    """ext4 counts a directory's subdirectories in its st_nlink; umbrafs
    cannot know them without listing, and gives 2 (as btrfs gives 1)."""
    d = ctx.mkdir("d")
    assert os.stat(d).st_nlink == 2
    os.mkdir(d / "a")
    os.mkdir(d / "b")
    assert os.stat(d).st_nlink == ctx.differs(umbrafs=2, ext4=4)


@pytest.mark.users("root")
def test_mkdir_persists_across_remount(ctx):
    os.mkdir(ctx.dir / "d", 0o705)
    os.chown(ctx.dir / "d", OTHER, OTHER)
    os.mkdir(ctx.dir / "d" / "e", 0o700)
    ctx.remount()
    st = os.stat(ctx.dir / "d")
    assert stat.S_IMODE(st.st_mode) == 0o705 and (st.st_uid, st.st_gid) == (OTHER, OTHER)
    assert os.listdir(ctx.dir / "d") == ["e"]
