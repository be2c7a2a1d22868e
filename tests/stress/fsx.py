#!/usr/bin/python3
"""fsx: a model-based random operation tester for umbrafs.

Seeded, reproducible sequences of open/read/write at odd offsets and sizes,
truncate up and down, fsync, rename, unlink and rename while open,
mkdir/rmdir and unmount+remount run both on a mount (the target) and on a
mirror folder on tmpfs (the model). After every step the results (return
value, errno, bytes read) and the sizes of all open files must agree; every
CHECK_EVERY steps and after every remount the whole trees are compared byte
for byte. A handful of names (6 files, 3 folders) makes operations collide.

On a mismatch fsx shrinks the sequence (shortest failing prefix by binary
search, then removal of single operations and runs of them) and prints
    SEED=<n> OPS=[...]
which `fsx.py --replay` (or fsx.replay) runs again.

Library: Fsx(target, model_dir).run(ops) or .run_generated(seed, count);
find_and_shrink(seed, count, new_target). A target is anything with .mnt,
.remount() and .stop() (the Mount of tests/e2e/conftest.py).

CLI (needs root, /dev/fuse, UMBRAFS or --umbrafs):
    fsx.py --store DIR --mount MNT --seed N --ops N [--soak] [--replay OPS]
"""
import argparse
import ast
import errno
import hashlib
import os
import pathlib
import random
import shutil
import stat
import sys
import tempfile
import time

CHUNK = 32768
FILES = ("f0", "f1", "f2", "d0/f3", "d0/f4", "d0/d2/f5")
DIRS = ("d0", "d1", "d0/d2")
NAMES = FILES + DIRS + ("d1/f0", "d1/d0")   # rename targets also move across folders
FD_OPS = ("close", "read", "write", "ftrunc", "fsync")
SLOTS = 4                                    # file descriptors kept open across steps
CHECK_EVERY = 10
REMOUNT_EVERY = 200
MAX_FILE = 320 * 1024

OPEN_FLAGS = {
    "r": os.O_RDONLY,
    "rw": os.O_RDWR,
    "rwc": os.O_RDWR | os.O_CREAT,
    "rwct": os.O_RDWR | os.O_CREAT | os.O_TRUNC,
    "rwcx": os.O_RDWR | os.O_CREAT | os.O_EXCL,
    "wca": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
}

# POSIX lets rename/rmdir of a non-empty folder fail with either
EQUIVALENT_ERRNO = {errno.EEXIST: errno.ENOTEMPTY}


try:                                    # what pytest.fail raises, when pytest is there
    import pytest
    _FAILED = (pytest.fail.Exception,)
except ImportError:
    _FAILED = ()


class Mismatch(Exception):
    def __init__(self, step, op, what):
        super().__init__(f"step {step} {op!r}: {what}")
        self.step = step


# ------------------------------------------------------------------ operations


def data_of(dseed, size):
    return random.Random(dseed).randbytes(size)


def _outcome(call, equivalent=None):
    try:
        return ("ok", call())
    except OSError as e:
        code = (equivalent or {}).get(e.errno, e.errno)
        return ("err", errno.errorcode.get(code, code))


class Side:
    """One tree (the mount or the model) and its open file descriptors."""

    def __init__(self, root):
        self.root = root
        self.fds = {}

    def path(self, rel):
        return os.path.join(self.root, rel)

    def close_all(self):
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()

    def apply(self, op):
        kind, args = op[0], op[1:]
        if kind in ("close", "read", "write", "ftrunc", "fsync", "fstat") and \
                args[0] not in self.fds:
            return ("noslot",)
        return getattr(self, "op_" + kind)(*args)

    def op_open(self, slot, rel, flags):
        if slot in self.fds:
            os.close(self.fds.pop(slot))
        r = _outcome(lambda: os.open(self.path(rel), OPEN_FLAGS[flags], 0o644))
        if r[0] == "ok":
            self.fds[slot] = r[1]
            return ("ok",)
        return r

    def op_close(self, slot):
        return _outcome(lambda: os.close(self.fds.pop(slot)))

    def op_read(self, slot, off, size):
        return _outcome(lambda: os.pread(self.fds[slot], size, off))

    def op_write(self, slot, off, size, dseed):
        return _outcome(lambda: os.pwrite(self.fds[slot], data_of(dseed, size), off))

    def op_ftrunc(self, slot, size):
        return _outcome(lambda: os.ftruncate(self.fds[slot], size))

    def op_fsync(self, slot):
        return _outcome(lambda: os.fsync(self.fds[slot]))

    def op_fstat(self, slot):
        def size():   # folders' sizes differ between file systems
            st = os.fstat(self.fds[slot])
            return "d" if stat.S_ISDIR(st.st_mode) else st.st_size
        return _outcome(size)

    def op_trunc(self, rel, size):
        return _outcome(lambda: os.truncate(self.path(rel), size))

    def op_rename(self, src, dst):
        return _outcome(lambda: os.rename(self.path(src), self.path(dst)), EQUIVALENT_ERRNO)

    def op_unlink(self, rel):
        return _outcome(lambda: os.unlink(self.path(rel)))

    def op_mkdir(self, rel):
        return _outcome(lambda: os.mkdir(self.path(rel), 0o755))

    def op_rmdir(self, rel):
        return _outcome(lambda: os.rmdir(self.path(rel)), EQUIVALENT_ERRNO)

    def op_stat(self, rel):
        def kind_and_size():
            st = os.lstat(self.path(rel))
            return ("d",) if stat.S_ISDIR(st.st_mode) else ("f", st.st_size)
        return _outcome(kind_and_size)

    def op_list(self, rel):
        return _outcome(lambda: sorted(os.listdir(self.path(rel))))


def tree_digest(root):
    """{path: ('d',) | ('f', size, sha256)} of a tree, for whole-tree checks."""
    tree = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs:
            tree[os.path.relpath(os.path.join(dirpath, name), root)] = ("d",)
        for name in files:
            p = os.path.join(dirpath, name)
            with open(p, "rb") as f:
                data = f.read()
            tree[os.path.relpath(p, root)] = ("f", len(data), hashlib.sha256(data).hexdigest())
    return tree


class Fsx:
    """Runs operations on a target mount and a model folder, checking each step."""

    def __init__(self, target, model_dir):
        self.target = target
        self.mount = Side(str(target.mnt))
        self.model = Side(str(model_dir))
        self.steps = 0

    def run(self, ops):
        try:
            for i, op in enumerate(ops):
                self.step(i, op)
            self.remount(len(ops), ("remount",))   # the store, not the kernel cache, at the end
        finally:
            self.mount.close_all()
            self.model.close_all()

    def run_generated(self, seed, count):
        """Run count generated operations; the list run so far is self.ops."""
        gen = Generator(seed)
        self.ops = []
        try:
            for i in range(count):
                self.ops.append(gen.next_op(self.model))
                self.step(i, self.ops[-1])
            self.remount(count, ("remount",))
        finally:
            self.mount.close_all()
            self.model.close_all()

    def step(self, i, op):
        self.steps += 1
        if op[0] == "remount":
            self.remount(i, op)
            return
        want, got = self.model.apply(op), self.mount.apply(op)
        if want != got:
            raise Mismatch(i, op, f"model {_short(want)}, mount {_short(got)}")
        for slot in sorted(self.model.fds):
            want, got = self.model.op_fstat(slot), self.mount.op_fstat(slot)
            if want != got:
                raise Mismatch(i, op, f"size of slot {slot}: model {want}, mount {got}")
        if (i + 1) % CHECK_EVERY == 0:
            self.compare_trees(i, op)

    def remount(self, i, op):
        self.mount.close_all()
        self.model.close_all()
        self.target.remount()
        self.compare_trees(i, op)

    def compare_trees(self, i, op):
        want, got = tree_digest(self.model.root), tree_digest(self.mount.root)
        if want != got:
            diff = sorted(k for k in want.keys() | got.keys() if want.get(k) != got.get(k))
            raise Mismatch(i, op, "trees differ: " + ", ".join(
                f"{k}: model {want.get(k)} mount {got.get(k)}" for k in diff))


def _short(result):
    if result[0] == "ok" and len(result) > 1 and isinstance(result[1], bytes):
        return f"ok {len(result[1])} bytes sha256 {hashlib.sha256(result[1]).hexdigest()[:12]}"
    return repr(result)


# ------------------------------------------------------------------ generation


def pick_size(rng):
    r = rng.random()
    if r < 0.35:
        return rng.randrange(0, 5000)
    if r < 0.7:
        return max(0, rng.randrange(0, 10) * CHUNK + rng.choice((-1, 0, 1)))
    return rng.randrange(0, MAX_FILE)


def pick_offset(rng, size):
    r = rng.random()
    if r < 0.3:
        return max(0, size + rng.randrange(-40, 40))
    if r < 0.6:
        return max(0, rng.randrange(0, 10) * CHUNK + rng.choice((-1, 0, 1, 13)))
    return rng.randrange(0, MAX_FILE)


WEIGHTS = {"open": 8, "close": 4, "read": 14, "write": 20, "ftrunc": 5, "trunc": 3,
           "fsync": 4, "rename": 6, "unlink": 4, "mkdir": 3, "rmdir": 3, "stat": 3, "list": 3}


class Generator:
    """Seeded operations that look at the model (which slots are open, how
    long the files are) to stay mostly valid; the list they make replays alone."""

    def __init__(self, seed, remount_every=REMOUNT_EVERY):
        self.rng = random.Random(seed)
        self.remount_every = remount_every
        self.made = 0

    def next_op(self, model):
        rng = self.rng
        self.made += 1
        if self.remount_every and self.made % self.remount_every == 0:
            return ("remount",)
        kind = rng.choices(list(WEIGHTS), list(WEIGHTS.values()))[0]
        slot = rng.randrange(SLOTS)
        if kind in FD_OPS and model.fds and rng.random() < 0.9:
            slot = rng.choice(sorted(model.fds))       # mostly work on open files
        elif kind in FD_OPS:
            kind = "open"
        size = _size_or_zero(model, slot)
        if kind == "open":
            return (kind, slot, rng.choice(FILES + ("d0",)), rng.choice(list(OPEN_FLAGS)))
        if kind in ("close", "fsync"):
            return (kind, slot)
        if kind == "read":
            return (kind, slot, pick_offset(rng, size), pick_size(rng))
        if kind == "write":
            return (kind, slot, pick_offset(rng, size), min(pick_size(rng), 100000),
                    rng.randrange(1 << 30))
        if kind in ("ftrunc", "trunc"):
            new = pick_offset(rng, size) if rng.random() < 0.5 else pick_size(rng)
            return (kind, slot, new) if kind == "ftrunc" else (kind, rng.choice(FILES), new)
        if kind == "rename":
            if rng.random() < 0.7:                     # like for like, mostly
                pool = DIRS + ("d1/d0",) if rng.random() < 0.3 else FILES + ("d1/f0",)
            else:
                pool = NAMES
            return (kind, rng.choice(pool), rng.choice(pool))
        if kind == "unlink":
            return (kind, rng.choice(FILES))
        if kind in ("mkdir", "rmdir"):
            return (kind, rng.choice(DIRS))
        if kind == "stat":
            return (kind, rng.choice(NAMES))
        return (kind, rng.choice(("",) + DIRS))


def _size_or_zero(model, slot):
    try:
        return os.fstat(model.fds[slot]).st_size
    except (KeyError, OSError):
        return 0


# ------------------------------------------------------------------ running and shrinking


def _model_dir():
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    return tempfile.mkdtemp(prefix="fsx-model-", dir=base)


def run_once(ops, new_target, seed=None):
    """Run ops (or, with seed, ops generated from it) on a fresh target and
    model: (list of ops run, None or the Mismatch). A daemon that exits badly
    or logs an error at unmount is a mismatch too."""
    target, model = new_target(), _model_dir()
    fsx = Fsx(target, model)
    found = None
    try:
        if seed is None:
            fsx.run(ops)
        else:
            fsx.run_generated(seed, ops)
    except Mismatch as m:
        found = m
    finally:
        shutil.rmtree(model, ignore_errors=True)
        try:
            target.stop()
        except (AssertionError, *_FAILED) as e:
            found = found or Mismatch(fsx.steps, ("unmount",), str(e)[:2000])
    return (ops if seed is None else fsx.ops), found


def first_mismatch(ops, new_target):
    return run_once(ops, new_target)[1]


def shrink(ops, new_target, budget_s=60.0):
    """A short list of operations that still mismatches (ops itself does)."""
    deadline = time.monotonic() + budget_s

    def fails(candidate):
        return first_mismatch(candidate, new_target) is not None

    lo, hi = 0, len(ops)                # ops[:lo] passes (assumed), ops[:hi] fails
    while hi - lo > 1 and time.monotonic() < deadline:
        mid = (lo + hi) // 2
        if fails(ops[:mid]):
            hi = mid
        else:
            lo = mid
    ops = ops[:hi]
    run = max(1, len(ops) // 2)
    while run >= 1 and time.monotonic() < deadline:
        i = 0
        while i < len(ops) and time.monotonic() < deadline:
            candidate = ops[:i] + ops[i + run:]
            if candidate and fails(candidate):
                ops = candidate
            else:
                i += run
        run //= 2
    return ops


def replay_line(seed, ops):
    return f"SEED={seed} OPS={ops!r}"


def find_and_shrink(seed, count, new_target, shrink_budget_s=60.0, out=sys.stdout):
    """Run count operations generated from seed: (ops run, None) if they pass,
    else (ops run, replay line of the shrunk failing sequence)."""
    ops, m = run_once(count, new_target, seed=seed)
    if m is None:
        return len(ops), None
    print(f"fsx: seed {seed}: mismatch at {m}", file=out)
    failing = ops[:m.step + 1]
    short = shrink(failing, new_target, shrink_budget_s)
    why = first_mismatch(short, new_target)
    line = replay_line(seed, short)
    print(f"fsx: shrunk to {len(short)} ops ({why}):\n{line}", file=out)
    return len(ops), line


def parse_replay(text):
    """OPS from 'SEED=n OPS=[...]' or a bare list literal."""
    text = text.strip()
    if "OPS=" in text:
        text = text.split("OPS=", 1)[1]
    return ast.literal_eval(text)


# ------------------------------------------------------------------ command line


def _cli_target_factory(args):
    """Fresh vaults under --store, mounted at --mount, with the e2e Mount."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import stresslib
    e2e = stresslib.e2e
    store_root = os.path.abspath(args.store)
    os.makedirs(store_root, exist_ok=True)
    password = e2e.write_password(pathlib.Path(store_root) / "password")
    made = [0]

    def new_target():
        made[0] += 1
        store = os.path.join(store_root, f"vault{made[0]}")
        shutil.rmtree(store, ignore_errors=True)
        vault = e2e.init_vault(store, password)
        return e2e.Mount(vault.store, vault.password_file, args.mount,
                         os.path.join(store_root, "umbrafs.log")).start()
    return new_target


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--store", required=True, help="folder for the vaults made (one per run)")
    p.add_argument("--mount", required=True, help="mount point")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--ops", type=int, default=2000)
    p.add_argument("--soak", action="store_true",
                   help="seed, seed+1, ... until --total ops (default: forever) or a mismatch")
    p.add_argument("--total", type=int, default=0, help="with --soak: stop after this many ops")
    p.add_argument("--replay", help="run 'SEED=n OPS=[...]' (as printed) instead")
    p.add_argument("--umbrafs", help="umbrafs binary (default $UMBRAFS)")
    p.add_argument("--walker", help="umbrafs-walk binary (default $UMBRAFS_WALK)")
    args = p.parse_args(argv)
    if args.umbrafs:
        os.environ["UMBRAFS"] = args.umbrafs
    if args.walker:
        os.environ["UMBRAFS_WALK"] = args.walker
    new_target = _cli_target_factory(args)
    if args.replay:
        m = first_mismatch(parse_replay(args.replay), new_target)
        print(f"fsx replay: {m or 'no mismatch'}")
        return 1 if m else 0
    seed, total = args.seed, 0
    while True:
        steps, line = find_and_shrink(seed, args.ops, new_target)
        total += steps
        print(f"fsx: seed {seed}: {steps} ops, {'mismatch' if line else 'ok'}"
              f" ({total} ops in all)", flush=True)
        if line or not args.soak or (args.total and total >= args.total):
            return 1 if line else 0
        seed += 1


if __name__ == "__main__":
    sys.exit(main())
