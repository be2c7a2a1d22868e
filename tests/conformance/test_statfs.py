"""statvfs(3) / fstatvfs(3): sizes of the store, names up to 255 bytes."""
import errno
import os

from conftest import fails


def test_statvfs_is_consistent(ctx):
    st = os.statvfs(ctx.dir)
    assert st.f_bsize > 0 and st.f_frsize > 0 and st.f_namemax == 255
    assert st.f_blocks > 0 and st.f_blocks >= st.f_bfree >= st.f_bavail
    assert st.f_files >= st.f_ffree
    assert not st.f_flag & os.ST_RDONLY


def test_fstatvfs_of_files_and_dirs_agree(ctx):
    f = ctx.make("f", b"x")
    by_path = os.statvfs(f)
    fd = os.open(f, os.O_RDONLY)
    try:
        by_fd = os.fstatvfs(fd)
    finally:
        os.close(fd)
    for field in ("f_bsize", "f_frsize", "f_blocks", "f_namemax", "f_files"):
        assert getattr(by_fd, field) == getattr(by_path, field), field
    assert os.statvfs(ctx.dir).f_blocks == by_path.f_blocks


def test_statvfs_errors(ctx):
    ctx.make("f")
    fails(errno.ENOENT, os.statvfs, ctx.dir / "missing")
    fails(errno.ENOTDIR, os.statvfs, ctx.dir / "f" / "x")


def test_statvfs_of_a_read_only_mount(ro):
    assert os.statvfs(ro).f_flag & os.ST_RDONLY
