#!/usr/bin/python3
"""The workload of the crash tests: a writer that creates, appends to,
fsyncs, renames and unlinks files and makes and removes folders under a
mount, until the test kills it (after killing the daemon: with the kernel's
writeback cache, writes to a dead mount may still succeed) or it has done
MAX_OPS operations. It journals what it did to a file off the mount, one
JSON list a line, written with os.write (the kernel has each line once the
call returns: only the daemon dies, not the machine):

  ["try", op, args...]     before a namespace operation (create, rename,
                           unlink, mkdir, rmdir) ...
  ["done"]                 ... and once it returned
  ["dirty", path]          before appending to path
  ["sync", path, n]        fsync(path) returned with n bytes in the file

A file's bytes come from SHAKE-256 of "SEED:ID:BLOCK" (ID fixed at creation,
kept by renames), so they are known from the journal alone: content(seed, id, n).
The test's verifier (test_crash.expected_states) replays the journal.

    crash_writer.py MOUNTPOINT JOURNAL SEED
"""
import hashlib
import json
import os
import random
import sys

MAX_OPS = 20000
CHUNK = 32768
BLOCK = 4096
FILE_NAMES = ("a", "b", "c", "d", "e")
DIR_NAMES = ("x", "y")


def content(seed, file_id, end, start=0):
    """Bytes [start, end) of the file: 4 KiB blocks of SHAKE-256("SEED:ID:BLOCK")."""
    first, last = start // BLOCK, (end + BLOCK - 1) // BLOCK
    data = b"".join(hashlib.shake_256(f"{seed}:{file_id}:{k}".encode()).digest(BLOCK)
                    for k in range(first, last))
    return data[start - first * BLOCK:end - first * BLOCK]


def append_size(rng):
    if rng.random() < 0.4:
        return rng.choice((1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 7))
    return rng.randrange(1, 3 * CHUNK)


class Writer:
    def __init__(self, mnt, journal, seed):
        self.mnt = mnt
        self.journal = os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND,
                               0o644)
        self.seed = seed
        self.rng = random.Random(seed)
        self.files = {}        # path -> [file_id, bytes written, fd or None]
        self.dirs = set()
        self.next_id = 0

    def log(self, *entry):
        os.write(self.journal, (json.dumps(entry) + "\n").encode())

    def abs(self, rel):
        return os.path.join(self.mnt, rel)

    def namespace_op(self, *entry):
        self.log("try", *entry)
        kind, args = entry[0], entry[1:]
        if kind == "create":
            fd = os.open(self.abs(args[0]), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        elif kind == "rename":
            os.rename(self.abs(args[0]), self.abs(args[1]))
        elif kind == "unlink":
            os.unlink(self.abs(args[0]))
        elif kind == "mkdir":
            os.mkdir(self.abs(args[0]))
        elif kind == "rmdir":
            os.rmdir(self.abs(args[0]))
        self.log("done")
        return fd if kind == "create" else None

    def folders(self):
        return [""] + sorted(self.dirs)

    def step(self):
        rng = self.rng
        r = rng.random()
        if r < 0.15 or not self.files:
            path = os.path.join(rng.choice(self.folders()), rng.choice(FILE_NAMES))
            if path in self.files or path in self.dirs:
                return
            fd = self.namespace_op("create", path, self.next_id)
            self.files[path] = [self.next_id, 0, fd]
            self.next_id += 1
            return
        path = rng.choice(sorted(self.files))
        entry = self.files[path]
        if r < 0.72 and entry[2] is None:
            entry[2] = os.open(self.abs(path), os.O_WRONLY | os.O_APPEND)
        if r < 0.55:
            n = append_size(rng)
            self.log("dirty", path)
            os.write(entry[2], content(self.seed, entry[0], entry[1] + n, entry[1]))
            entry[1] += n
        elif r < 0.72:
            os.fsync(entry[2])
            self.log("sync", path, entry[1])
        elif r < 0.8:
            if entry[2] is not None:
                os.close(entry[2])
                entry[2] = None
        elif r < 0.9:
            dst = os.path.join(rng.choice(self.folders()), rng.choice(FILE_NAMES))
            if dst in self.dirs or dst == path:
                return
            self.namespace_op("rename", path, dst)
            if dst in self.files and self.files[dst][2] is not None:
                os.close(self.files[dst][2])
            self.files[dst] = self.files.pop(path)
            self.fsync_folder(dst)
        elif r < 0.95:
            self.namespace_op("unlink", path)
            if entry[2] is not None:
                os.close(entry[2])
            del self.files[path]
        else:
            self.folder_step()

    def folder_step(self):
        name = self.rng.choice(DIR_NAMES)
        if name in self.dirs:
            if not any(p.startswith(name + "/") for p in self.files):
                self.namespace_op("rmdir", name)
                self.dirs.remove(name)
        elif name not in self.files:
            self.namespace_op("mkdir", name)
            self.dirs.add(name)

    def fsync_folder(self, path):
        """What a careful application does after a rename (a no-op here:
        directory operations are durable when they return)."""
        fd = os.open(self.abs(os.path.dirname(path) or "."), os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def main(mnt, journal, seed):
    w = Writer(mnt, journal, int(seed))
    try:
        for _ in range(MAX_OPS):
            w.step()
    except OSError as e:
        w.log("died", e.errno)   # the mount went away under us: expected
        return 0
    w.log("finished")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
