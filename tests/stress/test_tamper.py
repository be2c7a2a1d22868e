"""Tampered vaults: every read returns the right bytes or fails with EIO (an
entry whose name does not decrypt is hidden), a log line names the damaged
object, and the daemon keeps answering. Zero wrong bytes over >= 1000 seeded
tamperings.

One vault with a known tree is built once (and a snapshot of an older
version of some files). Each round copies it, applies ROUND_SIZE independent
tamperings, each to its own target (a file, a leaf folder holding one file,
or a symlink), mounts the copy, reads everything and judges each target.
Config and masterkey tamperings are separate attempts that must be refused
(exit 4 for vault.cryptomator; exit 3 or 4 for masterkey.cryptomator, see
MASTERKEY_EXIT) unless the flip did not change what the file means.

What the format does not detect (FORMAT.md section 9) is classified, not
excluded: truncation at a chunk boundary reads as a shorter file with the
right bytes; a whole object swapped for a sibling's reads as the sibling;
a chunk rolled back to an older version of the same object (same header)
reads as that older chunk; an edited dir.c9r loses the folder's contents
(absent or EIO). Those must give exactly the predicted bytes, never others.
A chunk from another file, or from an older object of the same file (another
header nonce), or at another index, must fail: the AAD binds both.

UMBRAFS_TAMPER_ROUNDS  rounds (default 40, 25 tamperings each)
UMBRAFS_TAMPER_CONFIG  config + masterkey tamperings (default 100)
UMBRAFS_TAMPER_SEED    seed (default 1)
"""
import errno
import hashlib
import os
import random
import shutil
import subprocess
import time

import pytest

import stresslib
from stresslib import e2e

ROUNDS = int(os.environ.get("UMBRAFS_TAMPER_ROUNDS", "40"))
CONFIG_RUNS = int(os.environ.get("UMBRAFS_TAMPER_CONFIG", "100"))
SEED = int(os.environ.get("UMBRAFS_TAMPER_SEED", "1"))
ROUND_SIZE = 25

HEADER = 68
CP, CC = 32768, 32796
LONG = "long-" + "n" * 150          # over 146 bytes: stored as a .c9s folder
SIZES = (1, 100, 32767, 32768, 32769, 40000, 65536, 70000, 100000, 131073)

# exit codes of a mount refused for a damaged masterkey.cryptomator: 3 when the
# damage only changes the key that scrypt + key unwrap give (salt, cost, the
# wrapped keys): that cannot be told from a wrong password; 4 when the file
# no longer parses or fails its version check
MASTERKEY_EXIT = (3, 4)
CONFIG_EXIT = (4,)


# ---------------------------------------------------------------- the vault


def content(name, version, size):
    return hashlib.shake_256(f"{name}:{version}".encode()).digest(size)


class Node:
    """A target: its cleartext path, kind, store objects and expected bytes."""

    def __init__(self, path, kind, objects, data=None, target=None):
        self.path, self.kind, self.objects = path, kind, objects
        self.data, self.target = data, target
        self.old = None            # (old bytes, same header?) for rewritten files
        self.object = next((o for o in objects if kind != "f" or not o.endswith("name.c9s")),
                           None)


def created(store, action):
    before = e2e.store_files(store)
    action()
    return sorted(e2e.store_files(store) - before)


def build_vault(base, password_file):
    """The pristine vault, a snapshot of an older version, the targets in it
    and the whole cleartext tree."""
    vault = e2e.init_vault(base / "pristine", password_file)
    m = e2e.Mount(vault.store, password_file, base / "mnt", base / "build.log").start()
    mnt, nodes, rng = m.mnt, {}, random.Random(0)

    def make_file(rel, size):
        data = content(rel, 1, size)
        objs = created(vault.store, lambda: (mnt / rel).write_bytes(data))
        nodes[rel] = Node(rel, "f", objs, data)

    for d in ("a", "a/b", "c"):
        os.mkdir(mnt / d)
    for i in range(10):
        make_file(f"r{i}", SIZES[i])
    for group in ("i", "p"):            # rewritten in place / replaced by a new object
        for i in range(4):
            make_file(f"{group}{i}", rng.choice(SIZES[3:]))
    for i in range(5):
        make_file(f"a/a{i}", rng.choice(SIZES))
    for i in range(4):
        make_file(f"a/b/b{i}", rng.choice(SIZES))
        make_file(f"c/c{i}", rng.choice(SIZES))
    make_file(f"c/{LONG}", 70000)
    make_file(LONG, 40000)
    for i in range(12):
        leaf = f"leaf{i:02}"
        objs = created(vault.store, lambda: os.mkdir(mnt / leaf))
        make_file(f"{leaf}/x", 40000)
        nodes.pop(f"{leaf}/x")          # the folder is the target: its file goes with it
        nodes[leaf] = Node(leaf, "d", objs)
    for i in range(3):
        objs = created(vault.store, lambda: os.symlink(f"target-{i}", mnt / f"s{i}"))
        nodes[f"s{i}"] = Node(f"s{i}", "l", objs, target=f"target-{i}")
    m.stop()
    old = base / "old"
    shutil.copytree(vault.store, old)
    m.start()
    for rel, node in nodes.items():
        if rel[0] in "ip" and rel[1:].isdigit():
            new = content(rel, 2, len(node.data))
            if rel[0] == "i":
                with open(mnt / rel, "r+b") as f:
                    f.write(new)
            else:
                (mnt / "tmp").write_bytes(new)
                os.rename(mnt / "tmp", mnt / rel)
            node.old, node.data = (node.data, rel[0] == "i"), new
    tree = e2e.tree_of(mnt)
    m.stop()
    walk = e2e.walk(vault.store, password_file)
    walk.assert_clean()
    return vault, old, nodes, tree


# ---------------------------------------------------------------- tamperings


def flip_bit(path, rng, start=0, end=None):
    data = bytearray(path.read_bytes())
    end = len(data) if end is None else end
    pos = rng.randrange(start, end)
    data[pos] ^= 1 << rng.randrange(8)
    path.write_bytes(bytes(data))


def chunk_count(size):
    return (size + CP - 1) // CP


def chunk_span(i, obj_size):
    start = HEADER + i * CC
    return start, min(start + CC, obj_size)


class Tamper:
    """One tampering: what it did, what the target may read as, and the store
    path a log line must name when it is detected."""

    def __init__(self, kind, node, expect, key, alt=None):
        self.kind, self.node, self.expect, self.key, self.alt = kind, node, expect, key, alt


def replace_name(name, rng):
    """Another character of the base64url part of an encrypted name."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    stem = name.split(".")[0].rstrip("=")
    i = rng.randrange(len(stem))
    new = stem[:i] + rng.choice(alphabet.replace(stem[i], "")) + stem[i + 1:]
    return name.replace(stem, new, 1)


def file_kinds(node, nodes):
    chunks = chunk_count(len(node.data))
    kinds = ["header", "extend", "move"]
    kinds.append("name")
    if chunks:
        kinds += ["chunk", "trunc_mid", "chunk_other_file", "sibling"]
    if chunks > 1:
        kinds += ["chunk_swap", "trunc_boundary"]
    if node.old:
        kinds += ["old_chunk"]
    return kinds


def tamper_file(store, pristine, old_store, node, nodes, rng):
    obj = store / node.object
    size = obj.stat().st_size
    chunks = chunk_count(len(node.data))
    kind = rng.choice(file_kinds(node, nodes))
    if kind == "header":
        flip_bit(obj, rng, 0, HEADER)
        return Tamper(kind, node, "detect", node.object)
    if kind == "chunk":
        flip_bit(obj, rng, *chunk_span(rng.randrange(chunks), size))
        return Tamper(kind, node, "detect", node.object)
    if kind == "extend":
        with open(obj, "ab") as f:
            f.write(rng.randbytes(rng.randrange(1, 40)))
        return Tamper(kind, node, "detect", node.object)
    if kind == "trunc_mid":
        i = rng.randrange(chunks)
        start, end = chunk_span(i, size)
        os.truncate(obj, rng.randrange(start + 1, end))
        return Tamper(kind, node, "detect", node.object)
    if kind == "trunc_boundary":        # not detected by the format: a shorter file
        i = rng.randrange(1, chunks)
        os.truncate(obj, HEADER + i * CC)
        return Tamper(kind, node, "other", node.object, alt=node.data[:i * CP])
    if kind in ("chunk_other_file", "chunk_swap", "old_chunk"):
        return swap_chunk(kind, store, pristine, old_store, node, nodes, rng)
    if kind == "sibling":               # a whole object swapped within its folder
        sib = rng.choice([n for n in nodes.values() if n is not node and n.kind == "f" and
                          os.path.dirname(n.path) == os.path.dirname(node.path) and
                          n.object.endswith(".c9r") == node.object.endswith(".c9r") and
                          "/" not in n.object.split("/", 3)[-1]] or [None])
        if sib is None:
            return tamper_file(store, pristine, old_store, node, nodes, rng)
        shutil.copyfile(pristine / sib.object, obj)
        return Tamper(kind, node, "other", node.object, alt=sib.data)
    if kind == "move":                  # into another folder: its name does not decrypt there
        entry = entry_of(node)
        others = sorted({os.path.dirname(entry_of(n)) for n in nodes.values()
                         if n.kind == "f"} - {os.path.dirname(entry)})
        dest = os.path.join(rng.choice(others), os.path.basename(entry))
        os.rename(store / entry, store / dest)
        return Tamper(kind, node, "hidden", dest)
    entry = entry_of(node)              # kind == "name"
    if entry.endswith(".c9s"):
        flip_bit(store / entry / "name.c9s", rng)
        return Tamper(kind, node, "hidden", entry)
    new = os.path.join(os.path.dirname(entry), replace_name(os.path.basename(entry), rng))
    os.rename(store / entry, store / new)
    return Tamper(kind, node, "hidden", new)


def entry_of(node):
    """The entry of a node in its parent's content folder: the object, or the
    .c9s / entry folder holding it."""
    parts = node.object.split("/")
    return "/".join(parts[:4])


def swap_chunk(kind, store, pristine, old_store, node, nodes, rng):
    obj = store / node.object
    size = obj.stat().st_size
    chunks = chunk_count(len(node.data))
    i = rng.randrange(chunks)
    start, end = chunk_span(i, size)
    data = bytearray(obj.read_bytes())
    if kind == "chunk_swap":            # two chunks of the file trade places
        j = rng.choice([k for k in range(chunks) if k != i])
        js, je = chunk_span(j, size)
        n = min(end - start, je - js)   # a short last chunk trades its length's worth
        data[start:start + n], data[js:js + n] = data[js:js + n], data[start:start + n]
        obj.write_bytes(bytes(data))
        return Tamper(kind, node, "detect", node.object)
    if kind == "old_chunk":
        donor = (old_store / node.object).read_bytes()
        alt = None
        if node.old[1]:                 # same header: a rollback the format cannot see
            alt = bytearray(node.data)
            alt[i * CP:(i + 1) * CP] = node.old[0][i * CP:(i + 1) * CP]
            alt = bytes(alt)
    else:
        donors = [n for n in nodes.values() if n.kind == "f" and n is not node
                  and chunk_count(len(n.data)) > i]
        donor_node = rng.choice(donors)
        donor = (pristine / donor_node.object).read_bytes()
        alt = None
    piece = donor[start:end]
    if len(piece) != end - start:       # the donor's chunk has another length
        piece = (piece + bytes(end - start))[:end - start]
    data[start:end] = piece
    obj.write_bytes(bytes(data))
    return Tamper(kind, node, "other" if alt else "detect", node.object, alt=alt)


def tamper_dir(store, node, rng):
    dir_file = next(o for o in node.objects if o.endswith("/dir.c9r"))
    backup = next(o for o in node.objects if o.endswith("/dirid.c9r"))
    kind = rng.choice(("dir_c9r", "dirid_c9r", "dir_name"))
    if kind == "dir_c9r":               # not detected by the format: the contents are lost
        flip_bit(store / dir_file, rng)
        return Tamper(kind, node, "lost", os.path.dirname(dir_file))
    if kind == "dirid_c9r":             # a backup readers do not need
        flip_bit(store / backup, rng)
        return Tamper(kind, node, "same", backup)
    entry = os.path.dirname(dir_file)
    new = os.path.join(os.path.dirname(entry), replace_name(os.path.basename(entry), rng))
    os.rename(store / entry, store / new)
    return Tamper(kind, node, "hidden", new)


def tamper_link(store, node, rng):
    link_file = next(o for o in node.objects if o.endswith("/symlink.c9r"))
    if rng.random() < 0.5:
        flip_bit(store / link_file, rng)
        return Tamper("symlink", node, "detect", link_file)
    entry = os.path.dirname(link_file)
    new = os.path.join(os.path.dirname(entry), replace_name(os.path.basename(entry), rng))
    os.rename(store / entry, store / new)
    return Tamper("link_name", node, "hidden", new)


# ---------------------------------------------------------------- judging


class Tally:
    def __init__(self):
        self.runs = self.wrong = self.eio = self.hidden = self.refused = self.other = 0
        self.same = 0
        self.failures = []

    def fail(self, what):
        self.failures.append(what)


def read_node(mnt, node):
    """('absent',) | ('eio',) | ('data', [(off, bytes|None)]) | ('link', target)."""
    path = mnt / node.path
    parent = os.path.dirname(path)
    try:
        if os.path.basename(path) not in os.listdir(parent):
            return ("absent",)
        if node.kind == "l":
            return ("link", os.readlink(path))
        if node.kind == "d":
            path = path / "x"
            if "x" not in os.listdir(mnt / node.path):
                return ("absent",)
        chunks = stresslib.read_chunks(path)
        return ("eio",) if chunks is None else ("data", chunks)
    except OSError as e:
        if e.errno in (errno.EIO, errno.ENOENT):
            return ("absent",) if e.errno == errno.ENOENT else ("eio",)
        raise


def judge(t, got, log, tally, round_no):
    """Count the outcome of tampering t; record a failure when it is not allowed."""
    node, where = t.node, f"round {round_no}: {t.kind} of {t.node.path} ({t.key})"
    want = node.data if node.kind == "f" else content(f"{node.path}/x", 1, 40000)
    if node.kind == "l":
        if got[0] == "link":
            if got[1] != node.target:
                tally.wrong += 1
                tally.fail(f"{where}: readlink gave {got[1]!r}")
            elif t.expect == "detect":
                tally.fail(f"{where}: not detected")
            else:
                tally.same += 1
            return
    elif got[0] == "data":
        chunks = got[1]
        data = b"".join(d for _, d in chunks if d is not None)
        eio = any(d is None for _, d in chunks)
        options = [want] + ([t.alt] if t.alt is not None else [])
        for off, d in chunks:
            if d is not None and not any(o[off:off + len(d)] == d for o in options):
                tally.wrong += 1
                tally.fail(f"{where}: wrong bytes at {off}")
                return
        if eio:
            got = ("eio",)
        elif data == want and t.expect in ("same", "hidden", "lost", "other"):
            tally.same += 1            # a name that still decrypts to itself, a backup
            return
        elif t.alt is not None and data == t.alt:
            tally.other += 1           # what the format cannot detect, as predicted
            return
        else:                          # right bytes (checked above), but too few or too many
            tally.fail(f"{where}: read {len(data)} of {len(want)} bytes without an error, "
                       f"expected {t.expect}")
            return
    if got[0] == "eio":
        tally.eio += 1
        if t.expect in ("hidden",):
            tally.fail(f"{where}: EIO, expected the entry to be hidden")
    elif got[0] == "absent":
        tally.hidden += 1
        if t.expect not in ("hidden", "lost"):
            tally.fail(f"{where}: the entry is gone, expected {t.expect}")
    if t.expect != "lost" and not any(t.key in line for line in log.splitlines()):
        tally.fail(f"{where}: no log line names {t.key}")


def tamper_round(base, pristine, old, nodes, password_file, rng, round_no, tally):
    work = base / f"round{round_no}"
    shutil.copytree(pristine, work)
    targets = rng.sample(sorted(nodes), ROUND_SIZE)
    tampers = []
    for rel in targets:
        node = nodes[rel]
        if node.kind == "f":
            tampers.append(tamper_file(work, pristine, old, node, nodes, rng))
        elif node.kind == "d":
            tampers.append(tamper_dir(work, node, rng))
        else:
            tampers.append(tamper_link(work, node, rng))
    m = e2e.Mount(work, password_file, base / "mnt", base / f"round{round_no}.log",
                  expect_errors=True).start()
    try:
        got = {t.node.path: read_node(m.mnt, t.node) for t in tampers}
        untouched = [n for rel, n in nodes.items() if rel not in targets]
        for n in untouched:             # what was not tampered with reads as before
            r = read_node(m.mnt, n)
            ok = (r == ("link", n.target) if n.kind == "l" else r[0] == "data" and
                  b"".join(d or b"-" for _, d in r[1]) == (
                      n.data if n.kind == "f" else content(f"{n.path}/x", 1, 40000)))
            if not ok:
                tally.fail(f"round {round_no}: {n.path} was not tampered with but reads {r[0]}")
        assert m.alive(), f"round {round_no}: the daemon stopped answering"
    finally:
        m.stop()
    log = m.log_text()
    for t in tampers:
        tally.runs += 1
        judge(t, got[t.node.path], log, tally, round_no)
    shutil.rmtree(work)


def config_attempt(base, pristine, want_tree, password_file, rng, n, tally):
    work = base / f"config{n}"
    shutil.copytree(pristine, work)
    name = rng.choice(("vault.cryptomator", "masterkey.cryptomator"))
    flip_bit(work / name, rng)
    mnt = base / "mnt"
    proc = subprocess.Popen([e2e.UMBRAFS, "mount", "-f", "--password-file", str(password_file),
                             str(work), str(mnt)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + e2e.MOUNT_TIMEOUT
    while proc.poll() is None and not os.path.ismount(mnt) and time.monotonic() < deadline:
        time.sleep(0.01)
    tally.runs += 1
    if proc.poll() is None:             # it mounted: the flip must not have mattered
        try:
            tree = e2e.tree_of(mnt)
        finally:
            e2e.unmount(mnt)
            proc.wait(timeout=30)
        tally.same += 1
        if tree != want_tree:
            tally.wrong += 1
            tally.fail(f"config {n}: {name} damaged, mounted with another tree")
    else:
        out = proc.stdout.read().decode(errors="replace")
        tally.refused += 1
        allowed = CONFIG_EXIT if name == "vault.cryptomator" else MASTERKEY_EXIT
        # the message names the damaged file, or the masterkey file that a
        # damaged "kid" of vault.cryptomator points to instead
        if proc.returncode not in allowed or not out.startswith("umbrafs: ") or \
                not any(w in out for w in ("cryptomator", "masterkey")):
            tally.fail(f"config {n}: {name} damaged: exit {proc.returncode} "
                       f"(expected {allowed}, a message naming the file): {out.strip()}")
    proc.stdout.close()
    shutil.rmtree(work)


def test_tampering_never_gives_wrong_bytes(tmp_path, password_file):
    e2e.require_fuse()
    vault, old, nodes, tree = build_vault(tmp_path, password_file)
    rng = random.Random(SEED)
    tally = Tally()
    for r in range(ROUNDS):
        tamper_round(tmp_path, vault.store, old, nodes, password_file, rng, r, tally)
    for n in range(CONFIG_RUNS):
        config_attempt(tmp_path, vault.store, tree, password_file, rng, n, tally)
    print(f"\ntamper: {tally.runs} runs, {tally.wrong} wrong bytes, {tally.eio} EIO, "
          f"{tally.hidden} hidden, {tally.refused} mount refused, {tally.other} other data "
          f"as the format allows, {tally.same} unchanged")
    assert tally.runs >= ROUNDS * ROUND_SIZE + CONFIG_RUNS
    assert tally.wrong == 0 and not tally.failures, "\n".join(tally.failures[:60])


def test_object_cut_to_an_empty_last_chunk_fails(tmp_path, password_file):
    """A 131073-byte file is 4 full chunks and a 1-byte one (29 bytes stored);
    cutting the object by 1 byte leaves a 28-byte last chunk that does not
    authenticate: reading the file must fail with EIO."""
    e2e.require_fuse()
    vault = e2e.init_vault(tmp_path / "store", password_file)
    m = e2e.Mount(vault.store, password_file, tmp_path / "mnt", tmp_path / "log",
                  expect_errors=True).start()
    obj = created(vault.store, lambda: (m.mnt / "f").write_bytes(content("f", 1, 131073)))[0]
    m.stop()
    os.truncate(vault.store / obj, (vault.store / obj).stat().st_size - 1)
    m.start()
    try:
        with pytest.raises(OSError) as e:
            (m.mnt / "f").read_bytes()
        assert e.value.errno == errno.EIO
    finally:
        m.stop()
    assert obj in m.log_text()


def test_damaged_long_name_is_hidden(tmp_path, password_file):
    """A flipped bit in name.c9s: the entry is hidden and logged, the daemon lives."""
    e2e.require_fuse()
    vault = e2e.init_vault(tmp_path / "store", password_file)
    m = e2e.Mount(vault.store, password_file, tmp_path / "mnt", tmp_path / "log",
                  expect_errors=True).start()
    objs = created(vault.store, lambda: (m.mnt / LONG).write_bytes(b"x"))
    m.stop()
    name_file = vault.store / next(o for o in objs if o.endswith("name.c9s"))
    flip_bit(name_file, random.Random(1), 5, 6)
    m.start()
    try:
        assert os.listdir(m.mnt) == []
        assert m.alive()
    finally:
        m.stop()
    assert os.path.dirname(str(name_file.relative_to(vault.store))) in m.log_text()
