"""kill -9 of the daemon at a random moment of a workload (crash_writer.py),
then: the vault is consistent and every fsync'ed byte is there.

Each run: a fresh vault, mounted; the writer runs; after a seeded random
delay the daemon gets SIGKILL; the dead mount is detached (fusermount3 -u -z);
the walker checks the store (local); the vault is mounted again and checked
against the writer's journal; after a clean unmount the walker checks again.

What must hold (the contract), and what a kill may leave:
- Every completed directory operation (create, rename, unlink, mkdir, rmdir
  returned) is there: directory operations are durable when they return. The
  one in flight when the daemon died may have happened or not: both are
  accepted, nothing in between that shows in the mount.
- A file whose last change was an fsync reads back exactly as it was then.
- A file written after its last fsync ("dirty") keeps every fsync'ed byte of
  its whole chunks. Its last partial chunk is rewritten in place by the next
  append (the format has no journal; chunk positions are fixed) and a write
  torn by the kill may leave it unreadable: EIO there is allowed, wrong bytes
  never. Past the fsync'ed length, the writer's bytes or zeros (the kernel's
  writeback cache may send a later write before an earlier one, and umbrafs
  fills a gap with zeros) or EIO.
- Walker problems allowed: content problems (a torn header or chunk, a size
  that ends in a fragment of a chunk) of at most as many objects as there are
  dirty files, and leftovers that the mount never shows: an orphaned content
  folder of an interrupted mkdir/rmdir, a ".umbrafs-tmp-" file of an
  interrupted atomic write. Everything else (a name that does not decrypt, a
  missing content folder, a bad dir.c9r, ...) fails the test.

UMBRAFS_CRASH_RUNS  runs per store (default 20 local, 5 remote)
UMBRAFS_CRASH_SEED  first seed (default 1)
"""
import copy
import json
import os
import random
import subprocess
import sys
import time

import pytest

import crash_writer
import stresslib
from stresslib import e2e

CHUNK = crash_writer.CHUNK
RUNS = os.environ.get("UMBRAFS_CRASH_RUNS")
SEED = int(os.environ.get("UMBRAFS_CRASH_SEED", "1"))
WRITER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "crash_writer.py")

CONTENT_PROBLEMS = ("header:", ": chunk ", "fragment of a chunk", "shorter than a file header",
                    "ends in an empty chunk")
LEFTOVER_PROBLEMS = ("orphaned content folder", ".umbrafs-tmp-")

# mkdir and rmdir are several store steps (FORMAT.md 6 orders them: content
# folder first). A kill between them leaves a directory entry whose content
# folder is gone (listed as an empty directory, removable), a content folder
# whose dirid.c9r backup rmdir already removed (umbrafs does not need it), or
# an entry folder without dir.c9r (absent to lookups, cleared by the next
# creation of the name): umbrafs copes with all three, the walker reports
# them, fsck --repair mends them; allowed leftovers.
INTERRUPTED_DIR_OP_LEFTOVERS = ("content folder of directory '{}' is missing", "{}: cannot list",
                                "no dirid.c9r backup", "entry folder without dir.c9r")


# ---------------------------------------------------------------- the journal


class FileState:
    def __init__(self, file_id):
        self.id = file_id
        self.synced = 0          # bytes in the file at its last fsync
        self.dirty = False       # written (or being created) since


def read_journal(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.endswith("\n")]


def apply_namespace_op(files, dirs, op):
    kind, args = op[0], op[1:]
    if kind == "create":
        files[args[0]] = FileState(args[1])
    elif kind == "rename":
        files[args[1]] = files.pop(args[0])
    elif kind == "unlink":
        del files[args[0]]
    elif kind == "mkdir":
        dirs.add(args[0])
    elif kind == "rmdir":
        dirs.discard(args[0])


def pending_op(journal):
    """The namespace operation in flight when the writer stopped, or None."""
    pending = None
    for entry in journal:
        if entry[0] in ("try", "done"):
            pending = entry[1:] if entry[0] == "try" else None
    return pending


def expected_states(journal, copy_renames=False):
    """The states the vault may be in: (files, dirs) after every completed
    operation, and also after the one in flight if there is one. copy_renames:
    the store renames by copy then delete (S3), so a rename in flight may also
    have left both names."""
    files, dirs, pending = {}, set(), None
    for entry in journal:
        if entry[0] == "try":
            pending = entry[1:]
        elif entry[0] == "done":
            apply_namespace_op(files, dirs, pending)
            pending = None
        elif entry[0] == "dirty":
            files[entry[1]].dirty = True
        elif entry[0] == "sync":
            files[entry[1]].synced = entry[2]
            files[entry[1]].dirty = False
    states = [(files, dirs)]
    if pending:
        files2, dirs2 = copy.deepcopy(files), set(dirs)
        apply_namespace_op(files2, dirs2, pending)
        if pending[0] == "create":
            files2[pending[1]].dirty = True   # its header may be torn
        states.append((files2, dirs2))
        if pending[0] == "rename" and copy_renames:
            files3 = copy.deepcopy(files)
            files3[pending[2]] = copy.deepcopy(files[pending[1]])
            states.append((files3, set(dirs)))
    return states


# ---------------------------------------------------------------- checking the mount


def file_problems(path, rel, f, seed):
    chunks = stresslib.read_chunks(path)
    size = os.stat(path).st_size
    if chunks is None:
        return [] if f.dirty and f.synced < CHUNK else [f"{rel}: open failed with EIO"]
    if not f.dirty:
        data = b"".join(d or b"" for _, d in chunks)
        want = crash_writer.content(seed, f.id, f.synced)
        if any(d is None for _, d in chunks) or data != want:
            return [f"{rel}: fsync'ed {f.synced} bytes, read back {size} bytes "
                    f"{'with EIO' if any(d is None for _, d in chunks) else 'that differ'}"]
        return []
    if size < f.synced:
        return [f"{rel}: {size} bytes, fewer than the {f.synced} fsync'ed"]
    want = crash_writer.content(seed, f.id, size)
    whole = f.synced - f.synced % CHUNK          # fsync'ed bytes no later append rewrites
    problems = []
    for off, data in chunks:
        if data is None:
            if off + CHUNK <= whole:
                problems.append(f"{rel}: EIO at {off}, inside the fsync'ed {f.synced} bytes")
            continue
        for i, byte in enumerate(data):
            pos = off + i
            if byte != want[pos] and (pos < f.synced or byte != 0):
                problems.append(f"{rel}: wrong byte at {pos} (fsync'ed {f.synced} bytes)")
                break
    return problems


def tree_problems(mnt, state, seed):
    files, dirs = state
    seen_files, seen_dirs, problems = set(), set(), []

    def unlistable(e):
        problems.append(f"{os.path.relpath(e.filename, mnt)}: cannot list: {e.strerror}")

    for dirpath, dnames, fnames in os.walk(mnt, onerror=unlistable):
        rel = os.path.relpath(dirpath, mnt)
        for d in dnames:
            seen_dirs.add(os.path.normpath(os.path.join(rel, d)))
        for n in fnames:
            seen_files.add(os.path.normpath(os.path.join(rel, n)))
    if seen_dirs != dirs:
        problems.append(f"folders {sorted(seen_dirs)}, expected {sorted(dirs)}")
    if seen_files != set(files):
        problems.append(f"files {sorted(seen_files)}, expected {sorted(files)}")
    for rel in sorted(seen_files & set(files)):
        problems += file_problems(os.path.join(mnt, rel), rel, files[rel], seed)
    return problems


def interrupted_dir_op_leftover(problem, pending):
    return bool(pending) and pending[0] in ("mkdir", "rmdir") and any(
        k.format(pending[1]) in problem for k in INTERRUPTED_DIR_OP_LEFTOVERS)


def unexpected_walker_problems(problems, states, pending):
    problems = [p for p in problems if not interrupted_dir_op_leftover(p, pending)]
    dirty = max(sum(f.dirty for f in files.values()) for files, _ in states)
    content = [p for p in problems if any(k in p for k in CONTENT_PROBLEMS)]
    other = [p for p in problems if p not in content
             and not any(k in p for k in LEFTOVER_PROBLEMS)]
    if len(content) > dirty:
        other += [f"{len(content)} damaged objects but only {dirty} files were being written:"]
        other += content
    return other


# ---------------------------------------------------------------- one run


def kill_daemon(m):
    """SIGKILL the daemon and detach its dead mount."""
    proc, m.proc = m.proc, None
    proc.kill()
    proc.wait()
    subprocess.run(["fusermount3", "-u", "-z", str(m.mnt)], capture_output=True)
    assert not os.path.ismount(m.mnt), f"{m.mnt} still mounted after the kill"


def crash_once(store, password_file, tmp_path, seed, remote, copy_renames=False):
    rng = random.Random(seed)
    work = tmp_path / f"run{seed}"
    work.mkdir()
    vault = e2e.init_vault(store, password_file)
    mount = e2e.Mount(vault.store, vault.password_file, work / "mnt", work / "umbrafs.log",
                      expect_errors=True)
    mount.start()
    journal = work / "journal"
    writer = subprocess.Popen([sys.executable, WRITER, str(mount.mnt), str(journal), str(seed)],
                              stdin=subprocess.DEVNULL)
    started = time.monotonic()
    while not (journal.exists() and journal.stat().st_size) and writer.poll() is None \
            and time.monotonic() - started < 10:
        time.sleep(0.01)           # the kill falls in the workload, not before it
    time.sleep(rng.uniform(0.0, 1.0))
    kill_daemon(mount)
    writer.kill()   # what it does after the daemon died does not matter
    writer.wait()
    entries = read_journal(journal)
    states, pending = expected_states(entries, copy_renames), pending_op(entries)
    report = [f"seed {seed}: {len(entries)} journal lines"]
    if not remote:   # a remote store is only complete once the next mount uploaded the rest
        bad = unexpected_walker_problems(e2e.walk(vault.store, password_file).problems, states,
                                         pending)
        report += [f"walker after the kill: {p}" for p in bad]
    mount.start()
    try:
        tries = [tree_problems(str(mount.mnt), s, seed) for s in states]
    finally:
        mount.stop()
    report += [p for p in min(tries, key=len) if not interrupted_dir_op_leftover(p, pending)]
    for line in mount.log_text().splitlines():
        if any(k in line for k in e2e.SANITIZER_MARKS):
            report.append(f"log: {line}")
    bad = unexpected_walker_problems(e2e.walk(vault.store, password_file).problems, states,
                                     pending)
    report += [f"walker after the remount: {p}" for p in bad]
    return report if len(report) > 1 else None


@pytest.mark.stores("local", "webdav", "s3")
def test_kill_minus_9_keeps_fsynced_bytes(store_kind, new_store, tmp_path, password_file):
    e2e.require_fuse()
    runs = int(RUNS) if RUNS else (20 if store_kind == "local" else 5)
    failures = []
    for seed in range(SEED, SEED + runs):
        report = crash_once(new_store(f"store{seed}"), password_file, tmp_path, seed,
                            store_kind != "local", copy_renames=store_kind == "s3")
        if report:
            failures.append("\n  ".join(report))
    print(f"\ncrash {store_kind}: {runs} kills, {len(failures)} failed")
    assert not failures, "\n".join(failures)


def test_verifier_catches_a_lost_fsynced_byte(tmp_path):
    """The checks themselves: a fsync'ed file with one byte changed, a missing
    file and a dirty file short of its fsync'ed length are all reported."""
    seed = 7
    f_clean, f_dirty = FileState(0), FileState(1)
    f_clean.synced, f_dirty.synced, f_dirty.dirty = 70000, 40000, True
    data = bytearray(crash_writer.content(seed, 0, 70000))
    data[33000] ^= 1
    (tmp_path / "clean").write_bytes(bytes(data))
    (tmp_path / "dirty").write_bytes(crash_writer.content(seed, 1, 39999))
    state = ({"clean": f_clean, "dirty": f_dirty, "gone": FileState(2)}, set())
    problems = tree_problems(str(tmp_path), state, seed)
    assert any("clean: fsync'ed" in p for p in problems), problems
    assert any("dirty: 39999 bytes" in p for p in problems), problems
    assert any("files " in p and "gone" in p for p in problems), problems


@pytest.mark.parametrize("cut", [
    "rmdir after the content folder", "rmdir after the entry",
    "mkdir before dir.c9r", "mkdir before the entry"])
def test_dir_op_cut_short_leaves_a_usable_vault(tmp_path, password_file, cut):
    """mkdir and rmdir are several store steps. A kill between them (seen in
    the random test above) must leave the folder gone or still working
    (listable, removable), and its name usable again."""
    e2e.require_fuse()
    vault = e2e.init_vault(tmp_path / "store", password_file)
    m = e2e.Mount(vault.store, password_file, tmp_path / "mnt", tmp_path / "log",
                  expect_errors=True).start()
    before = e2e.store_files(vault.store)
    os.mkdir(m.mnt / "x")
    made = e2e.store_files(vault.store) - before
    m.stop()
    dir_file = next(p for p in made if p.endswith("/dir.c9r"))
    backup = next(p for p in made if p.endswith("/dirid.c9r"))
    if cut == "rmdir after the content folder":
        os.unlink(vault.store / backup)
        os.rmdir(vault.store / os.path.dirname(backup))
    elif cut == "mkdir before dir.c9r":
        os.unlink(vault.store / dir_file)
    else:                        # the entry is gone, the content folder stays
        os.unlink(vault.store / dir_file)
        os.rmdir(vault.store / os.path.dirname(dir_file))
    m.start()
    try:
        if "x" in os.listdir(m.mnt):
            assert os.listdir(m.mnt / "x") == []
            os.rmdir(m.mnt / "x")
        assert "x" not in os.listdir(m.mnt)
        os.mkdir(m.mnt / "x")    # the name is free again
    finally:
        m.stop()
