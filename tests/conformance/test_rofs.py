"""A read-only mount (-o ro): every call that would change something is
EROFS, for root and for others alike; reading works."""
import errno
import os
import stat

from conftest import OTHER, open_close, RENAME_NOREPLACE, UTIME_NOW, fails, renameat2, utimensat

MUTATIONS = {
    "open O_WRONLY": lambda r: open_close(r / "file", os.O_WRONLY),
    "open O_RDWR": lambda r: open_close(r / "file", os.O_RDWR),
    "open O_TRUNC": lambda r: open_close(r / "file", os.O_RDONLY | os.O_TRUNC),
    "open O_CREAT new": lambda r: open_close(r / "new", os.O_CREAT | os.O_WRONLY, 0o644),
    "mkdir": lambda r: os.mkdir(r / "newdir"),
    "rmdir": lambda r: os.rmdir(r / "empty"),
    "unlink": lambda r: os.unlink(r / "file"),
    "rename": lambda r: os.rename(r / "file", r / "moved"),
    "renameat2": lambda r: renameat2(r / "file", r / "moved", RENAME_NOREPLACE),
    "symlink": lambda r: os.symlink("x", r / "newlink"),
    "link": lambda r: os.link(r / "file", r / "hard"),
    "mknod": lambda r: os.mknod(r / "node", stat.S_IFREG | 0o600),
    "mkfifo": lambda r: os.mkfifo(r / "fifo"),
    "chmod": lambda r: os.chmod(r / "file", 0o600),
    "chown": lambda r: os.chown(r / "file", OTHER, OTHER),
    "lchown": lambda r: os.lchown(r / "link", OTHER, OTHER),
    "utimensat": lambda r: utimensat(r / "file", 1, 2),
    "utimensat now": lambda r: utimensat(r / "file", UTIME_NOW, UTIME_NOW),
    "truncate": lambda r: os.truncate(r / "file", 0),
    "setxattr": lambda r: os.setxattr(r / "file", "user.x", b"1"),
}


def test_every_mutating_call_is_erofs(ro):
    for what, call in MUTATIONS.items():
        try:
            call(ro)
        except OSError as e:
            assert e.errno == errno.EROFS, f"{what}: {errno.errorcode[e.errno]}, not EROFS"
        else:
            raise AssertionError(f"{what} succeeded on a read-only mount")


def test_reading_works(ro):
    assert (ro / "file").read_bytes() == b"read only"
    assert (ro / "dir" / "inner").read_bytes() == b"inner"
    assert sorted(os.listdir(ro)) == ["dir", "empty", "file", "link"]
    assert os.readlink(ro / "link") == "file"
    assert stat.S_IMODE(os.stat(ro / "file").st_mode) == 0o666
    fails(errno.ENOENT, os.stat, ro / "missing")
