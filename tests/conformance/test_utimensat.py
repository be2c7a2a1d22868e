"""utimensat(2): explicit times (owner or root only, else EPERM), UTIME_NOW
(also anyone who may write, else EACCES), UTIME_OMIT; ctime moves on."""
import errno
import os
import time

import pytest

from conftest import (OTHER, UTIME_NOW, UTIME_OMIT, check, fails, name_too_long, tick, times,
                      utimensat, utimensat_raw)

A, M = 1_000_000_123, 2_000_000_456


def test_explicit_times_to_the_nanosecond(ctx):
    f = ctx.make("f")
    d = ctx.mkdir("d")
    for path in (f, d):
        before = times(path)
        tick()
        utimensat(path, A, M)
        atime, mtime, ctime = times(path)
        assert (atime, mtime) == (A, M) and ctime > before[2]


def test_times_before_1970_and_after_2038(ctx):
    f = ctx.make("f")
    for a, m in ((-86400 * 1_000_000_000, -1_000_000_000 + 5), (2**33 * 1_000_000_000, 7)):
        utimensat(f, a, m)
        assert times(f)[:2] == (a, m)


def test_utime_now_and_null(ctx):
    f = ctx.make("f")
    for args in ((UTIME_NOW, UTIME_NOW), (None, None)):
        utimensat(f, A, M)
        start = time.time_ns()
        tick()
        utimensat(f, *args)
        atime, mtime, ctime = times(f)
        assert min(atime, mtime, ctime) > start, args


def test_utime_omit(ctx):
    f = ctx.make("f")
    utimensat(f, A, M)
    utimensat(f, UTIME_OMIT, M + 1)
    assert times(f)[:2] == (A, M + 1)
    utimensat(f, A + 1, UTIME_OMIT)
    assert times(f)[:2] == (A + 1, M + 1)
    before = times(f)
    tick()
    utimensat(f, UTIME_OMIT, UTIME_OMIT)
    assert times(f) == before


def test_symlink_times_with_nofollow(ctx):
    f = ctx.make("f")
    os.symlink("f", ctx.dir / "l")
    target_before = times(f)
    utimensat(ctx.dir / "l", A, M, follow=False)
    assert times(ctx.dir / "l", follow=False)[:2] == (A, M)
    assert times(f)[:2] == target_before[:2]
    utimensat(ctx.dir / "l", A + 2, M + 2)
    assert times(f)[:2] == (A + 2, M + 2)


def test_by_a_non_owner(ctx):
    """Explicit times: owner or CAP_FOWNER, else EPERM. UTIME_NOW: also who
    may write the file, else EACCES."""
    writable = ctx.make("w", mode=0o666, owner=(OTHER, OTHER))
    readonly = ctx.make("r", mode=0o644, owner=(OTHER, OTHER))
    check(ctx.denied(errno.EPERM), utimensat, writable, A, M)
    check(ctx.denied(errno.EPERM), utimensat, writable, UTIME_NOW, M)
    start = time.time_ns()
    tick()
    utimensat(writable, UTIME_NOW, UTIME_NOW)
    assert min(times(writable)[:2]) > start
    utimensat(writable, None, None)
    check(ctx.denied(errno.EACCES), utimensat, readonly, UTIME_NOW, UTIME_NOW)
    check(ctx.denied(errno.EACCES), utimensat, readonly, None, None)
    check(ctx.denied(errno.EPERM), utimensat, readonly, A, M)


def test_owner_without_write_permission(ctx):
    f = ctx.make("f", mode=0o000)
    utimensat(f, A, M)
    assert times(f)[:2] == (A, M)
    utimensat(f, UTIME_NOW, UTIME_NOW)
    assert times(f)[1] > M


def test_utimensat_errors(ctx):
    f = ctx.make("f")
    fails(errno.EINVAL, utimensat_raw, f, 0, 1_000_000_000)
    fails(errno.EINVAL, utimensat_raw, f, 0, -1)
    fails(errno.ENOENT, utimensat, ctx.dir / "missing", A, M)
    fails(errno.ENOTDIR, utimensat, ctx.dir / "f" / "x", A, M)
    fails(errno.ENAMETOOLONG, utimensat, ctx.dir / name_too_long(), A, M)
    d = ctx.mkdir("d")
    ctx.make("d/g")
    os.chmod(d, 0o666)
    check(ctx.denied(errno.EACCES), utimensat, d / "g", A, M)


@pytest.mark.users("root")
def test_times_persist_across_remount(ctx):
    f = ctx.make("f")
    d = ctx.mkdir("d")
    os.symlink("f", ctx.dir / "l")
    utimensat(f, A, M)
    utimensat(d, A + 1, M + 1)
    utimensat(ctx.dir / "l", A + 2, M + 2, follow=False)
    ctx.remount()
    assert times(f)[:2] == (A, M)
    assert times(d)[:2] == (A + 1, M + 1)
    assert times(ctx.dir / "l", follow=False)[:2] == (A + 2, M + 2)
