"""Fixtures of the end-to-end tests: vaults made with `umbrafs init`, real FUSE
mounts of them (`umbrafs mount -f`, stderr to a log file), and the offline
walker (tests/tools/umbrafs-walk) that checks a store by FORMAT.md.

Environment:
  UMBRAFS        path of the umbrafs binary (required; meson passes it)
  UMBRAFS_WALK   path of the umbrafs-walk binary (required; meson passes it)
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
import stat
import subprocess
import tempfile
import time
import unicodedata

import pytest

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

needs_umbrafs = pytest.mark.skipif(
    bool(PLAIN_DIR), reason="needs umbrafs itself (UMBRAFS_E2E_PLAIN_DIR is set)")


def pytest_configure(config):
    if PLAIN_DIR:
        return
    for var, what in (("UMBRAFS", "fs/umbrafs"), ("UMBRAFS_WALK", "tests/tools/umbrafs-walk")):
        path = os.environ.get(var)
        if not path or not os.access(path, os.X_OK):
            raise pytest.UsageError(
                f"{var} must name the built {what} executable (got {path!r}); "
                f"run `meson test -C BUILD e2e`, or set {var}=BUILD/{what}")


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


class Vault:
    def __init__(self, store, password_file):
        self.store = pathlib.Path(store)
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


@pytest.fixture
def vault(tmp_path, password_file):
    require_fuse()
    return init_vault(tmp_path / "store", password_file)


class Mount:
    """umbrafs mount -f of one store, its stderr appended to a log file."""

    def __init__(self, store, password_file, mnt, log, options=("default_permissions",),
                 expect_errors=False):
        self.store = pathlib.Path(store)
        self.password_file = pathlib.Path(password_file)
        self.mnt = pathlib.Path(mnt)
        self.log = pathlib.Path(log)
        self.options = tuple(options)
        self.expect_errors = expect_errors  # corruption tests: ERROR lines allowed
        self.proc = None

    def start(self):
        self.mnt.mkdir(parents=True, exist_ok=True)
        args = [UMBRAFS, "mount", "-f", "--password-file", str(self.password_file)]
        if self.options:
            args += ["-o", ",".join(self.options)]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(args + [str(self.store), str(self.mnt)],
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
            rc = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail(f"umbrafs did not exit after unmount:\n{self.log_text()}")
        log = self.log_text()
        assert rc == 0, f"umbrafs exited {rc} after unmount:\n{log}"
        for mark in SANITIZER_MARKS + (() if self.expect_errors else ERROR_MARKS):
            assert mark not in log, f"'{mark}' in the umbrafs log:\n{log}"

    def remount(self):
        self.stop()
        return self.start()

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
def mount_factory_or_plain(request, tmp_path):
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
    password = write_password(tmp_path / "password")
    yield lambda **kw: factory(init_vault(tmp_path / "store", password), **kw)


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


def walk(store, password_file, markers=()):
    args = [UMBRAFS_WALK, "--password-file", str(password_file), str(store)]
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
