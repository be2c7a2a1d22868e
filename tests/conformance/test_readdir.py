"""readdir(3) / getdents(2): every name once, with '.' and '..', the right
d_type and an inode number stat agrees with; the errno cases."""
import errno
import os
import subprocess

import pytest

from conftest import check, fails, name_too_long


def kinds(path):
    with os.scandir(path) as entries:
        return {e.name: "l" if e.is_symlink() else "d" if e.is_dir(follow_symlinks=False)
                else "f" for e in entries}


def test_lists_every_kind_of_entry(ctx):
    ctx.make("file")
    ctx.mkdir("dir")
    os.symlink("file", ctx.dir / "link")
    os.symlink("dir", ctx.dir / "dirlink")
    long_name = "L" * 255
    ctx.make(long_name)
    ctx.make("ünï cödé")
    assert kinds(ctx.dir) == {"file": "f", "dir": "d", "link": "l", "dirlink": "l",
                              long_name: "f", "ünï cödé": "f"}


def test_dot_and_dot_dot(ctx):
    ctx.mkdir("d")
    out = subprocess.run(["ls", "-a1", str(ctx.dir / "d")], capture_output=True, check=True,
                         text=True).stdout.split()
    assert out == [".", ".."]
    assert os.stat(ctx.dir / "d" / "..").st_ino == os.stat(ctx.dir).st_ino
    assert os.stat(ctx.dir / "d" / ".").st_ino == os.stat(ctx.dir / "d").st_ino


def test_inode_numbers_of_entries(ctx):
    for i in range(20):
        ctx.make(f"f{i}")
    ctx.mkdir("d")
    os.symlink("f0", ctx.dir / "l")
    with os.scandir(ctx.dir) as entries:
        inos = {e.name: (e.inode(), os.lstat(e.path).st_ino) for e in entries}
    for name, (d_ino, st_ino) in inos.items():
        assert d_ino == st_ino, name
    assert len({st_ino for _, st_ino in inos.values()}) == len(inos)


def test_listing_follows_changes(ctx):
    for i in range(50):
        ctx.make(f"n{i:02d}")
    assert sorted(os.listdir(ctx.dir)) == [f"n{i:02d}" for i in range(50)]
    for i in range(0, 50, 2):
        os.unlink(ctx.dir / f"n{i:02d}")
    os.rename(ctx.dir / "n01", ctx.dir / "renamed")
    want = sorted([f"n{i:02d}" for i in range(3, 50, 2)] + ["renamed"])
    assert sorted(os.listdir(ctx.dir)) == want


def test_an_open_directory_stream_survives_changes(ctx):
    for i in range(10):
        ctx.make(f"n{i}")
    with os.scandir(ctx.dir) as it:
        first = next(it).name
        for i in range(10):
            if f"n{i}" != first:
                os.unlink(ctx.dir / f"n{i}")
        rest = [e.name for e in it]
    assert first not in rest and len(rest) < 10


def test_reading_a_directory_needs_read_permission(ctx):
    d = ctx.mkdir("d")
    ctx.make("d/f")
    os.chmod(d, 0o311)
    check(ctx.denied(errno.EACCES), os.listdir, d)
    os.chmod(d, 0o644)  # names without search permission: listed, not stat-able
    assert os.listdir(d) == ["f"]
    check(ctx.denied(errno.EACCES), os.stat, d / "f")


def test_readdir_errors(ctx):
    ctx.make("f")
    fails(errno.ENOTDIR, os.listdir, ctx.dir / "f")
    fails(errno.ENOENT, os.listdir, ctx.dir / "missing")
    fails(errno.ENAMETOOLONG, os.listdir, ctx.dir / name_too_long())


@pytest.mark.users("root")
def test_inode_numbers_across_remount(ctx):
    """ext4 keeps inode numbers; umbrafs numbers nodes as the kernel looks
    them up, so after a remount they are only still unique, not the same."""
    for name in "abc":
        ctx.make(name)
    before = {n: os.lstat(ctx.dir / n).st_ino for n in "abc"}
    ctx.remount()
    after = {n: os.lstat(ctx.dir / n).st_ino for n in "abc"}
    assert len(set(after.values())) == 3
    if ctx.plain:
        assert after == before
