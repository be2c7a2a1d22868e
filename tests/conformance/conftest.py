"""POSIX conformance tests of umbrafs, one file per system call family in the
manner of pjdfstest: each call's success cases with their effect on the
times of the node and its parent, and its documented errno cases.

Every test that takes `ctx` runs twice: as root and as uid/gid 65534
(nobody, no supplementary groups). The test body runs under that identity
(effective and file-system uid switched in this process, so a call is one
syscall, not a subprocess); `ctx.root()` switches back for setting things up.
Expectations that depend on the caller are written `ctx.denied(ERRNO)`:
that errno for nobody, success for root, whose capabilities override it.

The vault is mounted once per session with allow_other,default_permissions
(the kernel checks permissions against the mode and owner umbrafs stores);
each test gets a fresh directory owned by its user. A second, small vault is
mounted read-only for the EROFS cases.

Where umbrafs legitimately differs from ext4 the test says so with
`ctx.differs(umbrafs=..., ext4=...)`; run the suite on a plain folder to
check the ext4 side:  UMBRAFS_E2E_PLAIN_DIR=/some/ext4/dir pytest-3 tests/conformance

Environment: UMBRAFS, UMBRAFS_WALK, UMBRAFS_E2E_PLAIN_DIR as for tests/e2e
(its conftest.py provides the vault and mount helpers used here).
Run: /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/conformance
"""
import collections
import contextlib
import ctypes
import errno
import importlib.util
import itertools
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

E2E_DIR = pathlib.Path(__file__).resolve().parent.parent / "e2e"
# tests/e2e/conftest.py would clash with this module's name ("conftest"),
# so it is loaded from its path under a name of its own.
sys.path.insert(0, str(E2E_DIR))
_spec = importlib.util.spec_from_file_location("umbrafs_e2e_conftest", E2E_DIR / "conftest.py")
e2e = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(e2e)

PLAIN_DIR = e2e.PLAIN_DIR
NOBODY = 65534
OTHER = 4242           # an owner that is neither root nor the test's user
USERS = ("root", "nobody")
TICK = 0.02            # longer than the kernel's coarse clock step (1/HZ)

UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2
AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2


def pytest_configure(config):
    config.addinivalue_line("markers", "users(*names): run only as these of root, nobody")
    e2e.pytest_configure(config)


def pytest_generate_tests(metafunc):
    if "user" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("users")
        metafunc.parametrize("user", marker.args if marker else USERS)


# ------------------------------------------------------------ identities


@contextlib.contextmanager
def identity(uid, gid, groups=()):
    """Run the block with effective uid/gid and supplementary groups switched
    (root keeps 0 as its saved uid, so it can always come back)."""
    saved = (os.geteuid(), os.getegid(), os.getgroups())
    os.seteuid(0)
    os.setgroups(list(groups))
    os.setegid(gid)
    os.seteuid(uid)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setgroups(saved[2])
        os.setegid(saved[1])
        os.seteuid(saved[0])


# ---------------------------------------------------------------- mounts


class Tree:
    """A mounted file system (or a plain folder standing in for one)."""

    def __init__(self, mnt, mount=None, cleanup=()):
        self.mnt = pathlib.Path(mnt)
        self.mount = mount          # the e2e Mount, None on a plain folder
        self.cleanup = list(cleanup)

    def remount(self):
        if self.mount:
            self.mount.remount()
        else:
            os.sync()

    def close(self):
        if self.mount:
            self.mount.stop()
            walked = e2e.walk(self.mount.store, self.mount.password_file)
            walked.assert_clean()
        for undo in reversed(self.cleanup):
            undo()


def _base_dir(prefix):
    base = pathlib.Path(tempfile.mkdtemp(prefix=prefix, dir=PLAIN_DIR))
    os.chmod(base, 0o755)  # nobody must reach the mount point
    return base


def _mount(base, name, options):
    vault = e2e.init_vault(base / f"{name}-store", e2e.write_password(base / f"{name}-pw"))
    m = e2e.Mount(vault.store, vault.password_file, base / name, base / f"{name}.log",
                  options=options)
    return m.start()


def _tree(prefix, options):
    base = _base_dir(prefix)
    if PLAIN_DIR:
        os.mkdir(base / "mnt", 0o755)
        tree = Tree(base / "mnt")
    else:
        e2e.require_fuse()
        m = _mount(base, "mnt", options)
        os.chmod(m.mnt, 0o755)
        tree = Tree(m.mnt, m)
    return base, tree


@pytest.fixture(scope="session")
def shared_tree():
    base, tree = _tree("umbrafs-conformance-", ("allow_other", "default_permissions"))
    yield tree
    tree.close()
    shutil.rmtree(base, ignore_errors=True)


def fill_ro_tree(root):
    """What the read-only mount holds: root-owned nodes nobody may read."""
    (root / "file").write_bytes(b"read only")
    os.chmod(root / "file", 0o666)
    os.mkdir(root / "dir", 0o777)
    os.mkdir(root / "empty", 0o777)
    (root / "dir" / "inner").write_bytes(b"inner")
    os.symlink("file", root / "link")
    os.chmod(root, 0o777)


@pytest.fixture(scope="session")
def ro_tree():
    """A tree mounted read-only (-o ro); on a plain folder a read-only bind mount."""
    base = _base_dir("umbrafs-conformance-ro-")
    if PLAIN_DIR:
        src, mnt = base / "src", base / "ro"
        os.mkdir(src)
        os.mkdir(mnt)
        fill_ro_tree(src)
        subprocess.run(["mount", "--bind", str(src), str(mnt)], check=True)
        subprocess.run(["mount", "-o", "remount,bind,ro", str(mnt)], check=True)
        tree = Tree(mnt, cleanup=[lambda: subprocess.run(["umount", str(mnt)], check=True)])
    else:
        e2e.require_fuse()
        m = _mount(base, "ro", ("default_permissions",))
        fill_ro_tree(m.mnt)
        m.stop()
        m.options = ("ro", "allow_other", "default_permissions")
        tree = Tree(m.start().mnt, m)
    yield tree
    tree.close()
    shutil.rmtree(base, ignore_errors=True)


# ------------------------------------------------------------ per test

_serial = itertools.count()


class Ctx:
    """What a test works with: its user, a fresh directory owned by it."""

    def __init__(self, tree, user, dir):
        self.tree = tree
        self.user = user
        self.uid = self.gid = 0 if user == "root" else NOBODY
        self.dir = dir
        self.plain = PLAIN_DIR is not None

    def root(self):
        """Switch to root for a block (setting up what the user may not)."""
        return identity(0, 0)

    def denied(self, err):
        """err for the unprivileged user; root's capabilities override it."""
        return None if self.user == "root" else err

    def differs(self, umbrafs, ext4):
        """umbrafs legitimately differs from ext4 here: what this run expects."""
        return ext4 if self.plain else umbrafs

    def remount(self):
        with self.root():
            self.tree.remount()

    def make(self, name, data=b"", mode=0o644, owner=None):
        """A file under the test dir; owner (uid, gid) set by root."""
        p = self.dir / name
        p.write_bytes(data)
        os.chmod(p, mode)
        if owner:
            with self.root():
                os.chown(p, *owner)
        return p

    def mkdir(self, name, mode=0o755, owner=None):
        p = self.dir / name
        os.mkdir(p)
        os.chmod(p, mode)
        if owner:
            with self.root():
                os.chown(p, *owner)
        return p


def require_mounted(tree):
    """A mount lost by an earlier failure must not turn into the folder under it."""
    if tree.mount and not tree.mount.alive():
        pytest.fail(f"{tree.mnt} is no longer mounted (see the first failure)")


def _ctx(tree, user):
    require_mounted(tree)
    d = tree.mnt / f"t{next(_serial):04d}-{user}"
    os.mkdir(d, 0o755)
    uid = 0 if user == "root" else NOBODY
    os.chown(d, uid, uid)
    old_umask = os.umask(0)
    try:
        with identity(uid, uid):
            yield Ctx(tree, user, d)
    finally:
        os.umask(old_umask)


@pytest.fixture
def ctx(shared_tree, user):
    yield from _ctx(shared_tree, user)


@pytest.fixture
def ro(ro_tree, user):
    """The read-only tree, the test body running as user."""
    require_mounted(ro_tree)
    uid = 0 if user == "root" else NOBODY
    with identity(uid, uid):
        yield ro_tree.mnt


# ---------------------------------------------------------- assertions


def check(expected, fn, *args, **kwargs):
    """fn(*args) must fail with expected (an errno or a tuple of them), or
    succeed when expected is None; returns what fn returned."""
    if expected is None:
        return fn(*args, **kwargs)
    expected = expected if isinstance(expected, tuple) else (expected,)
    with pytest.raises(OSError) as info:
        fn(*args, **kwargs)
    got = info.value.errno
    assert got in expected, (
        f"{getattr(fn, '__name__', fn)}{tuple(map(str, args))}: "
        f"errno {errno.errorcode.get(got, got)}, expected "
        f"{'/'.join(errno.errorcode[e] for e in expected)}")
    return None


def open_close(path, flags, mode=0o644):
    os.close(os.open(path, flags, mode))


def fails(err, fn, *args, **kwargs):
    assert err is not None
    check(err, fn, *args, **kwargs)


def tick():
    """Let the clock move on, so a changed timestamp differs from the old one."""
    time.sleep(TICK)


def times(path, follow=True):
    st = os.stat(path) if follow else os.lstat(path)
    return st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns


def assert_changed(path, before, mtime=True, ctime=True, follow=True):
    """mtime and ctime of path moved on since before (or stayed, when False)."""
    _, m, c = times(path, follow)
    assert (m > before[1]) == mtime, f"{path}: mtime {before[1]} -> {m}"
    assert (c > before[2]) == ctime, f"{path}: ctime {before[2]} -> {c}"


def name_too_long():
    return "n" * 256


_libc = ctypes.CDLL(None, use_errno=True)


def _raise_errno(path):
    e = ctypes.get_errno()
    raise OSError(e, os.strerror(e), str(path))


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def utimensat(path, atime, mtime, follow=True):
    """utimensat(2) with UTIME_NOW / UTIME_OMIT: each time is ns, or one of
    those two; (None, None) passes NULL (both now)."""
    def ts(t):
        if t in (UTIME_NOW, UTIME_OMIT):
            return _Timespec(0, t)
        return _Timespec(t // 1_000_000_000, t % 1_000_000_000)

    arg = None if atime is None else (_Timespec * 2)(ts(atime), ts(mtime))
    flags = 0 if follow else AT_SYMLINK_NOFOLLOW
    if _libc.utimensat(AT_FDCWD, os.fsencode(path), arg, flags) != 0:
        _raise_errno(path)


def utimensat_raw(path, sec, nsec):
    """utimensat with the same raw timespec for both times (bad nsec tests)."""
    arg = (_Timespec * 2)(_Timespec(sec, nsec), _Timespec(sec, nsec))
    if _libc.utimensat(AT_FDCWD, os.fsencode(path), arg, 0) != 0:
        _raise_errno(path)


def renameat2(old, new, flags):
    if _libc.renameat2(AT_FDCWD, os.fsencode(old), AT_FDCWD, os.fsencode(new),
                       ctypes.c_uint(flags)) != 0:
        _raise_errno(old)


# ------------------------------------------------------- per-category counts

_outcomes = {}  # nodeid -> "passed" | "failed" | "skipped"


def pytest_runtest_logreport(report):
    if report.failed:
        _outcomes[report.nodeid] = "failed"
    elif report.skipped:
        _outcomes.setdefault(report.nodeid, "skipped")
    elif report.when == "call":
        _outcomes.setdefault(report.nodeid, "passed")


def category_counts():
    """{user: {category: Counter of outcomes}} of the tests run so far."""
    counts = collections.defaultdict(lambda: collections.defaultdict(collections.Counter))
    for nodeid, outcome in _outcomes.items():
        category = pathlib.Path(nodeid.split("::")[0]).stem.removeprefix("test_")
        user = "nobody" if "[nobody" in nodeid else "root"
        counts[user][category][outcome] += 1
    return counts


def pytest_terminal_summary(terminalreporter):
    counts = category_counts()
    for user in USERS:
        parts = []
        for category, c in sorted(counts.get(user, {}).items()):
            parts.append(f"{category} {c['passed']}/{c['passed'] + c['failed']}"
                         + (f" ({c['skipped']} skipped)" if c["skipped"] else ""))
        if parts:
            terminalreporter.write_line(f"conformance as {user}: " + ", ".join(parts))
