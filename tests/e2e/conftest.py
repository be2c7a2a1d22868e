"""Fixtures of the end-to-end tests: vaults made with `umbrafs init`, real FUSE
mounts of them (`umbrafs mount -f`, stderr to a log file), and the offline
walker (tests/tools/umbrafs-walk) that checks a store by FORMAT.md.

Stores: a test module opts in to running on the remote stores with
`pytestmark = pytest.mark.stores("local", "webdav", "s3")` (a test can narrow
that with its own marker); its `vault`/`mounted` fixtures are then made once
per store: a folder under tmp_path, a fresh collection of an Apache mod_dav
server, or a fresh key prefix of a Ceph radosgw bucket. The servers run on
127.0.0.1, started on first use and stopped at the end of the session
(remote_servers.py). Without the marker a test runs on the local store only.
A remote store's cache folder (--cache-dir) is in the test's tmp_path.

Environment:
  UMBRAFS        path of the umbrafs binary (required; meson passes it)
  UMBRAFS_WALK   path of the umbrafs-walk binary (required; meson passes it)
  UMBRAFS_E2E_STORES
                 comma-separated stores to test (default local,webdav,s3)
  UMBRAFS_E2E_WEBDAV_PORT, UMBRAFS_E2E_S3_PORT
                 first port to try for each server (28080, 28480; the next free
                 one is taken)
  CI             when set, missing server programs fail the remote tests
                 instead of skipping them (scripts/setup-debian.sh installs them)
  UMBRAFS_E2E_PLAIN_DIR
                 check the tests themselves: the `mounted` fixture yields a
                 fresh folder under this directory instead of a mount, and
                 tests that need umbrafs or its store are skipped.
Run: /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/e2e
"""
import hashlib
import os
import pathlib
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import unicodedata

import pytest

import remote_servers
from remote_servers import RemoteStore

HERE = pathlib.Path(__file__).resolve().parent
VAULTS = HERE.parent / "vaults"
PLAINTEXT_TREE = VAULTS / "plaintext-tree"


class Sample:
    """A checked-in vault made by another implementation, and what it holds."""

    def __init__(self, folder, password, paths=None, known_problems=()):
        self.folder = VAULTS / folder
        self.password_file = VAULTS / password
        self.paths = paths                    # subset of PLAINTEXT_TREE; None: all of it
        self.known_problems = known_problems  # walker PROBLEM lines the maker caused

    def expected_tree(self):
        tree = tree_of(PLAINTEXT_TREE)
        return tree if self.paths is None else {p: tree[p] for p in self.paths}

    def unexpected(self, problems):
        return [p for p in problems if not any(k in p for k in self.known_problems)]


SAMPLE_VAULTS = {
    "cryptolib": Sample("vault-cryptolib-SIV_GCM", "password-cryptolib.txt"),
    # pycryptomator stored sub/café.txt under its NFD name and wrote the root's
    # dirid.c9r with a header that does not authenticate (readers must not need it)
    "pycryptomator": Sample(
        "vault-pycryptomator-SIV_GCM", "password-pycryptomator.txt",
        paths=["empty.bin", "hello.txt", "sub", "sub/café.txt", "sub/deeper",
               "sub/deeper/exact64k.bin", "sub/rand100k.bin"],
        known_problems=["8qJY1wKw8GRKAvhBenSAcQwjtFR5e0bppcs=.c9r: not the canonical",
                        "d/2R/PAFUIO5R22H4U2GNAMQASADFOUIJIA/dirid.c9r: header"]),
}
CTRMAC_VAULT = (VAULTS / "mangocubes-SIV_CTRMAC", VAULTS / "password-mangocubes.txt")

PASSWORD = "e2e pässwörd"
PLAIN_DIR = os.environ.get("UMBRAFS_E2E_PLAIN_DIR")
UMBRAFS = os.environ.get("UMBRAFS")
UMBRAFS_WALK = os.environ.get("UMBRAFS_WALK")
MOUNT_TIMEOUT = 10
SANITIZER_MARKS = ("AddressSanitizer", "runtime error:", "LeakSanitizer")
# error lines of the umbrafs log ("umbrafs: error: ..."), and any ERROR
ERROR_MARKS = ("ERROR", "umbrafs: error:")

ALL_STORES = ("local", "webdav", "s3")
SELECTED_STORES = [s for s in os.environ.get("UMBRAFS_E2E_STORES", ",".join(ALL_STORES))
                   .split(",") if s]

needs_umbrafs = pytest.mark.skipif(
    bool(PLAIN_DIR), reason="needs umbrafs itself (UMBRAFS_E2E_PLAIN_DIR is set)")


def pytest_generate_tests(metafunc):
    """One test per store the test's `stores` marker names (and the run selects)."""
    marker = metafunc.definition.get_closest_marker("stores")
    if marker is None or "store_kind" not in metafunc.fixturenames or PLAIN_DIR:
        return
    unknown = set(marker.args) - set(ALL_STORES)
    assert not unknown, f"{metafunc.definition.nodeid}: unknown stores {unknown}"
    metafunc.parametrize("store_kind", [s for s in marker.args if s in SELECTED_STORES],
                         indirect=True)


def pytest_collection_modifyitems(config, items):
    """Keep the tests of the selected stores only: a test without a store
    parameter is a local one (so UMBRAFS_E2E_STORES=webdav,s3 runs just the
    remote half, and =local no remote test at all)."""
    if PLAIN_DIR:
        return
    def store_of(item):
        callspec = getattr(item, "callspec", None)
        return callspec.params.get("store_kind", "local") if callspec else "local"
    keep = [item for item in items if store_of(item) in SELECTED_STORES]
    if len(keep) < len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep


def pytest_configure(config):
    config.addinivalue_line("markers", "stores(*kinds): the stores a test runs on "
                            "(local, webdav, s3); without it: local only")
    if PLAIN_DIR:
        return
    unknown = set(SELECTED_STORES) - set(ALL_STORES)
    if unknown:
        raise pytest.UsageError(f"UMBRAFS_E2E_STORES: unknown stores {sorted(unknown)}")
    for var, what in (("UMBRAFS", "fs/umbrafs"), ("UMBRAFS_WALK", "tests/tools/umbrafs-walk")):
        path = os.environ.get(var)
        if not path or not os.access(path, os.X_OK):
            raise pytest.UsageError(
                f"{var} must name the built {what} executable (got {path!r}); "
                f"run `meson test -C BUILD e2e`, or set {var}=BUILD/{what}")
    for var in remote_servers.SCRUBBED_ENV:
        os.environ.pop(var, None)  # the remote servers' own variables are set when they start
    signal.signal(signal.SIGTERM, stop_on_sigterm)


def stop_on_sigterm(signum, frame):
    """meson's timeout sends SIGTERM: end as on ^C, so that the session's
    fixtures unmount and stop the servers."""
    raise KeyboardInterrupt(f"signal {signum}")


def require_fuse():
    if os.geteuid() != 0:
        pytest.skip("end-to-end mounts need root (mount options, chown, other users)")
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        pytest.skip("/dev/fuse is missing or not accessible")
    if not shutil.which("fusermount3"):
        pytest.skip("fusermount3 is not installed (Debian package fuse3)")


def run_umbrafs(*args, timeout=60, env=None, **kwargs):
    """Run the CLI to completion; stdout/stderr as text."""
    return subprocess.run([UMBRAFS, *map(str, args)], capture_output=True, text=True,
                          errors="replace", timeout=timeout, env=env,
                          stdin=subprocess.DEVNULL, **kwargs)


def write_password(path, password=PASSWORD):
    path.write_bytes(password.encode())
    return path


def as_store(store):
    """A local store as a Path; a RemoteStore as it is."""
    return store if isinstance(store, RemoteStore) else pathlib.Path(store)


def is_remote(store):
    return isinstance(store, RemoteStore)


class Vault:
    def __init__(self, store, password_file):
        self.store = as_store(store)
        self.password_file = pathlib.Path(password_file)


def init_vault(store, password_file):
    r = run_umbrafs("init", "--scrypt-cost", "1024", "--password-file", password_file, store)
    assert r.returncode == 0, f"umbrafs init failed ({r.returncode}): {r.stderr}"
    return Vault(store, password_file)


def copy_vault(src, dst):
    """A writable copy of a checked-in vault (never mount the original)."""
    shutil.copytree(src, dst, symlinks=True)
    for root, dirs, files in os.walk(dst):
        for name in dirs + files:
            p = os.path.join(root, name)
            os.chmod(p, stat.S_IMODE(os.lstat(p).st_mode) | stat.S_IWUSR)
    return pathlib.Path(dst)


@pytest.fixture
def password_file(tmp_path):
    return write_password(tmp_path / "password")


class ServerPool:
    """The remote servers of the session: each started on first use, all
    stopped at the end; a server that could not start fails (or, with its
    programs missing outside CI, skips) every test that needs it."""

    def __init__(self):
        self.base = pathlib.Path(tempfile.mkdtemp(prefix="umbrafs-e2e-servers-"))
        os.chmod(self.base, 0o755)  # apache's workers (www-data) reach their data below
        self.started = {}
        self.refused = {}  # kind -> (pytest.skip or pytest.fail, reason)

    def get(self, kind):
        if kind not in self.started and kind not in self.refused:
            self._start(kind)
        if kind in self.refused:
            outcome, reason = self.refused[kind]
            outcome(reason)
        return self.started[kind]

    def _start(self, kind):
        missing = remote_servers.missing_programs(kind)
        if missing:
            reason = (f"the {kind} server cannot run: {', '.join(missing)} missing "
                      "(scripts/setup-debian.sh installs them)")
            self.refused[kind] = (pytest.fail if os.environ.get("CI") else pytest.skip, reason)
            return
        folder = self.base / kind
        folder.mkdir(mode=0o755)
        server = remote_servers.SERVER_CLASSES[kind](folder)
        t0 = time.monotonic()
        for attempt in (1, 2):  # a second chance: a Ceph start can fail by bad luck
            try:
                server.start()
                break
            except Exception as e:  # after the second: reported for every test of this store
                if attempt == 2:
                    self.refused[kind] = (pytest.fail, f"the {kind} server did not start: {e}")
                    return
        print(f"\n# {kind} server on 127.0.0.1:{server.port}, "
              f"started in {time.monotonic() - t0:.1f} s")
        os.environ.update(server.env())
        self.started[kind] = server

    def stop_all(self):
        errors = []
        for kind, server in self.started.items():
            try:
                server.stop()
            except Exception as e:
                errors.append(f"{kind}: {e}")
        shutil.rmtree(self.base, ignore_errors=True)
        assert not errors, f"stopping the servers: {errors}"


@pytest.fixture(scope="session")
def server_pool():
    pool = ServerPool()
    try:
        yield pool
    finally:
        pool.stop_all()


@pytest.fixture
def store_kind(request):
    """The store of this test: parametrized by the `stores` marker, else local."""
    return getattr(request, "param", "local")


@pytest.fixture
def new_store(request, store_kind, tmp_path):
    """new_store(hint="store") -> a fresh, empty store of this test's kind: a
    Path (local) or a RemoteStore with its own cache folder in tmp_path."""
    def make(hint="store"):
        if store_kind == "local":
            return tmp_path / hint
        server = request.getfixturevalue("server_pool").get(store_kind)
        return server.new_store(f"{request.node.name}-{hint}", tmp_path)

    return make


@pytest.fixture
def vault(new_store, password_file):
    require_fuse()
    return init_vault(new_store(), password_file)


class Mount:
    """umbrafs mount -f of one store, its stderr appended to a log file."""

    def __init__(self, store, password_file, mnt, log, options=("default_permissions",),
                 expect_errors=False, cache_dir=None, url=None, env=None, stop_timeout=30):
        self.store = as_store(store)
        self.password_file = pathlib.Path(password_file)
        self.mnt = pathlib.Path(mnt)
        self.log = pathlib.Path(log)
        self.options = tuple(options)
        self.expect_errors = expect_errors  # corruption tests: ERROR lines allowed
        # remote stores: the cache folder (default: the store's own), the URL to
        # mount it by (default: the store's) and variables to add (an endpoint)
        self.cache_dir = cache_dir or getattr(self.store, "cache_dir", None)
        self.url = url or str(self.store)
        self.env = env
        self.stop_timeout = stop_timeout  # unmounting waits for the uploads
        self.proc = None

    def start(self):
        self.mnt.mkdir(parents=True, exist_ok=True)
        args = [UMBRAFS, "mount", "-f", "--password-file", str(self.password_file)]
        if self.options:
            args += ["-o", ",".join(self.options)]
        if self.cache_dir:
            args += ["--cache-dir", str(self.cache_dir)]
        env = dict(os.environ, **self.env) if self.env else None
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(args + [self.url, str(self.mnt)], env=env,
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + MOUNT_TIMEOUT
        while not os.path.ismount(self.mnt):
            if self.proc.poll() is not None:
                pytest.fail(f"umbrafs mount exited {self.proc.returncode} before mounting:\n"
                            + self.log_text())
            if time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                pytest.fail(f"{self.mnt} not mounted after {MOUNT_TIMEOUT} s:\n"
                            + self.log_text())
            time.sleep(0.02)
        return self

    def log_text(self):
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def alive(self):
        """The daemon still runs and the mount still answers."""
        if self.proc is None or self.proc.poll() is not None:
            return False
        try:
            os.listdir(self.mnt)
            os.statvfs(self.mnt)
        except OSError:
            return False
        return os.path.ismount(self.mnt)

    def stop(self):
        """Unmount; the daemon must exit 0 with a clean log."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        unmount(self.mnt)
        try:
            rc = proc.wait(timeout=self.stop_timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail(f"umbrafs did not exit after unmount:\n{self.log_text()}")
        assert rc == 0, f"umbrafs exited {rc} after unmount:\n{self.log_text()}"
        self.check_log()

    def check_log(self):
        """No sanitizer report in the log, nor an error unless expected."""
        log = self.log_text()
        for mark in SANITIZER_MARKS + (() if self.expect_errors else ERROR_MARKS):
            assert mark not in log, f"'{mark}' in the umbrafs log:\n{log}"

    def remount(self):
        self.stop()
        return self.start()

    def kill(self):
        """SIGKILL the daemon (a crash: no flush, no unmount), then detach the
        dead mount as an administrator would (fusermount3 -u -z)."""
        proc, self.proc = self.proc, None
        proc.kill()
        proc.wait(timeout=10)
        r = subprocess.run(["fusermount3", "-u", "-z", str(self.mnt)], capture_output=True,
                           text=True)
        assert not os.path.ismount(self.mnt), f"still mounted after the kill: {r.stderr}"

    def wait_for_log(self, *needles, timeout=5):
        """True once one line of the log holds every needle."""
        deadline = time.monotonic() + timeout
        while True:
            if any(all(n in line for n in needles) for line in self.log_text().splitlines()):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)


def unmount(mnt):
    """fusermount3 -u, retried while the mount is busy."""
    deadline = time.monotonic() + 10
    while True:
        r = subprocess.run(["fusermount3", "-u", str(mnt)], capture_output=True, text=True)
        if r.returncode == 0 or not os.path.ismount(mnt):
            return
        if time.monotonic() > deadline:
            subprocess.run(["fusermount3", "-uz", str(mnt)], capture_output=True)
            pytest.fail(f"fusermount3 -u {mnt} failed: {r.stderr}")
        time.sleep(0.1)


class PlainMount:
    """Stands in for a mount when the tests check themselves on a plain folder."""

    def __init__(self, path):
        self.mnt = pathlib.Path(path)
        self.store = None
        self.log = None

    def remount(self):
        os.sync()
        return self

    def alive(self):
        return True

    def log_text(self):
        return ""


@pytest.fixture
def mount_factory(tmp_path):
    """mount_factory(vault, options=..., expect_errors=..., mnt=...) -> a started Mount;
    all are unmounted (and their exit code and log checked) at teardown."""
    require_fuse()
    mounts = []

    def make(vault, mnt=None, **kwargs):
        n = len(mounts)
        m = Mount(vault.store, vault.password_file, mnt or tmp_path / f"mnt{n}",
                  tmp_path / f"umbrafs{n}.log", **kwargs)
        mounts.append(m)
        return m.start()

    yield make
    for m in mounts:
        m.stop()


@pytest.fixture
def mounted(mount_factory_or_plain):
    """A fresh vault, mounted with default_permissions."""
    return mount_factory_or_plain()


@pytest.fixture
def mount_factory_or_plain(request, tmp_path, store_kind):
    if PLAIN_DIR:
        made = []

        def plain():
            made.append(tempfile.mkdtemp(dir=PLAIN_DIR, prefix="e2e-"))
            return PlainMount(made[-1])

        yield plain
        for d in made:
            shutil.rmtree(d, ignore_errors=True)
        return
    factory = request.getfixturevalue("mount_factory")
    new_store = request.getfixturevalue("new_store")
    password = write_password(tmp_path / "password")
    yield lambda **kw: factory(init_vault(new_store(), password), **kw)


# ---------------------------------------------------------------- trees


def file_digest(path):
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
            size += len(block)
    return size, h.hexdigest()


def nfc_keys(tree):
    return {unicodedata.normalize("NFC", k): v for k, v in tree.items()}


def tree_of(root):
    """{relative path: ('d',) | ('f', size, sha256) | ('l', target)} of a real tree."""
    root = os.fspath(root)
    tree = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                tree[rel] = ("l", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                tree[rel] = ("d",)
            elif stat.S_ISREG(st.st_mode):
                tree[rel] = ("f", *file_digest(p))
            else:
                tree[rel] = ("?", st.st_mode)
    return tree


def _unescape(field):
    """Inverse of the walker's escaping (\\xHH); str like os.fsdecode gives."""
    raw = field.encode("utf-8", "surrogateescape")
    out = bytearray()
    i = 0
    while i < len(raw):
        if raw[i:i + 2] == b"\\x":
            out.append(int(raw[i + 2:i + 4], 16))
            i += 4
        else:
            out.append(raw[i])
            i += 1
    return os.fsdecode(bytes(out))


class WalkResult:
    def __init__(self, proc):
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.problems = [l for l in proc.stderr.splitlines() if l.startswith("PROBLEM:")]
        self.tree = {}
        for line in proc.stdout.splitlines():
            kind, rest = line.split(" ", 1)
            if kind == "f":
                path, size, digest = rest.rsplit(" ", 2)
                self.tree[_unescape(path)] = ("f", int(size), digest)
            elif kind == "l":
                path, target = rest.split(" ", 1)
                self.tree[_unescape(path)] = ("l", _unescape(target))
            else:
                self.tree[_unescape(rest)] = ("d",)

    def assert_clean(self):
        assert self.returncode == 0 and not self.problems, (
            f"walker exit {self.returncode}:\n{self.stderr}")


def store_view(store):
    """A local folder holding the store's objects as the server has them."""
    return store.local_view() if is_remote(store) else pathlib.Path(store)


def walk(store, password_file, markers=()):
    args = [UMBRAFS_WALK, "--password-file", str(password_file), str(store_view(store))]
    for m in markers:
        args += ["--marker", m]
    proc = subprocess.run(args, capture_output=True, text=True, errors="surrogateescape",
                          timeout=300)
    assert proc.returncode in (0, 1), f"walker usage error:\n{proc.stderr}"
    return WalkResult(proc)


def store_files(store):
    """Relative paths of every regular file of a store."""
    store = pathlib.Path(store)
    return {str(p.relative_to(store)) for p in store.rglob("*") if p.is_file()
            and not p.is_symlink()}
