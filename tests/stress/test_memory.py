"""The daemon's memory stays flat over a long run of random work: after a
warm-up, its resident size must not grow beyond a bound (tests/tools/rss_watch).

UMBRAFS_RSS_SECONDS  how long the work runs (default 40; a soak: hours)
"""
import os
import pathlib
import random
import sys
import time

import pytest

from stresslib import e2e

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tools"))
from rss_watch import RssWatch  # noqa: E402

SECONDS = float(os.environ.get("UMBRAFS_RSS_SECONDS", "40"))
WARMUP = min(10.0, SECONDS / 4)


def random_work(mnt, rng, until):
    """Create, write at odd offsets, read, rename, list and delete files and
    folders until the deadline; returns how many operations ran."""
    ops = 0
    names = [f"f{i}" for i in range(20)]
    os.makedirs(mnt / "d", exist_ok=True)
    while time.monotonic() < until:
        name = mnt / rng.choice(["", "d/"]) / rng.choice(names)
        kind = rng.randrange(6)
        try:
            if kind <= 1:
                with open(name, "ab" if kind else "wb") as f:
                    f.seek(rng.randrange(0, 200000))
                    f.write(os.urandom(rng.randrange(1, 70000)))
            elif kind == 2 and name.exists():
                name.read_bytes()
            elif kind == 3 and name.exists():
                name.rename(mnt / "d" / rng.choice(names))
            elif kind == 4:
                os.listdir(mnt / "d")
                os.listdir(mnt)
            elif name.exists():
                name.unlink()
        except FileNotFoundError:
            pass  # a rename target raced away: fine for this test
        ops += 1
    return ops


def test_daemon_memory_stays_flat(tmp_path, password_file):
    e2e.require_fuse()
    vault = e2e.init_vault(tmp_path / "store", password_file)
    m = e2e.Mount(vault.store, password_file, tmp_path / "mnt", tmp_path / "log").start()
    try:
        with RssWatch(m.proc.pid, warmup_s=WARMUP, window_s=WARMUP / 2,
                      bound_kib=16 * 1024) as watch:
            ops = random_work(m.mnt, random.Random(7), time.monotonic() + SECONDS)
        print(f"\nmemory: {ops} operations in {SECONDS:.0f} s")
        watch.check()
    finally:
        m.stop()
