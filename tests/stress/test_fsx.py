"""fsx on a fresh vault per seed: operations on the mount and on a tmpfs
mirror must agree after every step (see fsx.py).

UMBRAFS_FSX_SEED  first seed (default 1); UMBRAFS_FSX_SEEDS how many (default 3)
UMBRAFS_FSX_OPS   operations per seed (default 2000)
"""
import os

import pytest

import fsx
from stresslib import e2e

SEED = int(os.environ.get("UMBRAFS_FSX_SEED", "1"))
SEEDS = int(os.environ.get("UMBRAFS_FSX_SEEDS", "3"))
OPS = int(os.environ.get("UMBRAFS_FSX_OPS", "2000"))
# remote stores are slower: fewer operations there
REMOTE_SEEDS = int(os.environ.get("UMBRAFS_FSX_REMOTE_SEEDS", "1"))
REMOTE_OPS = int(os.environ.get("UMBRAFS_FSX_REMOTE_OPS", "600"))


@pytest.fixture
def new_target(new_store, tmp_path, password_file):
    """new_target() -> a fresh vault of this test's store, mounted (fsx stops it)."""
    e2e.require_fuse()
    made = []

    def make():
        made.append(None)
        n = len(made)
        vault = e2e.init_vault(new_store(f"store{n}"), password_file)
        return e2e.Mount(vault.store, vault.password_file, tmp_path / "mnt",
                         tmp_path / f"umbrafs{n}.log").start()
    return make


@pytest.mark.stores("local", "webdav", "s3")
def test_fsx(store_kind, new_target):
    seeds, count = (SEEDS, OPS) if store_kind == "local" else (REMOTE_SEEDS, REMOTE_OPS)
    total, failures = 0, []
    for seed in range(SEED, SEED + seeds):
        ran, line = fsx.find_and_shrink(seed, count, new_target)
        total += ran
        if line:
            failures.append(line)
    print(f"\nfsx {store_kind}: {total} ops, {len(failures)} mismatches")
    assert not failures, "fsx mismatches (replay with fsx.py --replay):\n" + "\n".join(failures)


def test_fsx_fstat_of_a_removed_open_directory(new_target):
    short = fsx.parse_replay("SEED=113 OPS=[('mkdir', 'd0'), ('open', 1, 'd0', 'r'), "
                             "('rmdir', 'd0')]")
    mismatch = fsx.first_mismatch(short, new_target)
    assert mismatch is None, str(mismatch)


class PlainTarget:
    """A plain folder standing in for a mount (no umbrafs needed)."""

    def __init__(self, path):
        self.mnt = path

    def remount(self):
        return self

    def stop(self):
        pass


def test_fsx_catches_and_shrinks_a_planted_bug(tmp_path, monkeypatch):
    """fsx itself: a target whose writes across the 64 KiB mark lose a byte
    must be caught, and shrunk to a short replayable sequence."""
    real_write = fsx.Side.op_write

    def buggy_write(side, slot, off, size, dseed):
        r = real_write(side, slot, off, size, dseed)
        if side.root.startswith(str(tmp_path / "target")) and off < 65536 < off + size:
            os.pwrite(side.fds[slot], b"\0", 65536)
        return r

    monkeypatch.setattr(fsx.Side, "op_write", buggy_write)
    made = []

    def new_target():
        made.append(tmp_path / "target" / str(len(made)))
        made[-1].mkdir(parents=True)
        return PlainTarget(str(made[-1]))

    ops, line = fsx.find_and_shrink(SEED, 2000, new_target, shrink_budget_s=30)
    assert line, f"a byte lost after 64 KiB went unnoticed in {ops} ops"
    short = fsx.parse_replay(line)
    assert len(short) <= 4, f"not shrunk: {line}"
    assert fsx.first_mismatch(short, new_target), "the shrunk sequence does not fail"
