"""Format: after a workload through the mount, the store must be a vault the
offline walker accepts object by object (names, headers, chunks, .c9s, dir.c9r,
dirid.c9r, no orphans), whose tree is exactly what was written, and in which
no plaintext marker or cleartext name appears: on every store, and for the
remote ones in their local cache folder too."""
import hashlib
import os
import pathlib
import unicodedata
import uuid

import pytest

from conftest import ALL_STORES, is_remote, needs_umbrafs, store_view, tree_of, walk

pytestmark = [needs_umbrafs, pytest.mark.stores(*ALL_STORES)]

NAME_146 = "日" * 48 + "ab"
NAME_147 = "日" * 49
NAME_255 = "é" * 127 + "x"
NAME_200 = "ü" * 100
NFD_FILE = unicodedata.normalize("NFD", "Café-nfd.txt")
NFD_DIR = unicodedata.normalize("NFD", "Résumé-nfd")


def file_node(data):
    return ("f", len(data), hashlib.sha256(data).hexdigest())


class Workload:
    """Writes through the mount and keeps the tree it expects."""

    def __init__(self, mnt):
        self.mnt = mnt
        self.expected = {}
        self.markers = [f"MARKER-{uuid.uuid4().hex}" for _ in range(8)]

    def mkdir(self, rel):
        os.mkdir(self.mnt / rel)
        self.expected[unicodedata.normalize("NFC", rel)] = ("d",)

    def write(self, rel, data):
        with open(self.mnt / rel, "wb") as f:
            f.write(data)
        self.expected[unicodedata.normalize("NFC", rel)] = file_node(data)

    def symlink(self, rel, target):
        os.symlink(target, self.mnt / rel)
        self.expected[rel] = ("l", target)

    def rename(self, old, new):
        os.rename(self.mnt / old, self.mnt / new)
        for path in sorted(self.expected):
            if path == old or path.startswith(old + "/"):
                self.expected[new + path[len(old):]] = self.expected.pop(path)

    def run(self):
        m = self.markers
        self.mkdir("files")
        self.write("files/empty", b"")
        self.write("files/exact32k", os.urandom(32768))
        self.write("files/exact64k", os.urandom(65536))
        self.write("files/one-over", os.urandom(32769))
        self.write("files/marker.txt", f"before {m[0]} after\n".encode())
        big = bytearray(os.urandom(10 << 20))
        for i, at in enumerate((0, 32768 - 10, 5 * 32768 + 7, len(big) - 60)):
            marker = m[1 + i % 2].encode()
            big[at:at + len(marker)] = marker  # straddling a chunk edge among others
        self.write("files/big10M", bytes(big))
        self.write(f"files/{NAME_146}", b"146 bytes of name")
        self.write(f"files/{NAME_147}", b"147 bytes of name")
        self.mkdir(NAME_255)
        self.write(f"{NAME_255}/inside", m[3].encode())
        self.symlink(f"files/{NAME_200}", "../" + NAME_255 + "/inside")
        self.symlink("files/dangling", f"nowhere/{m[4]}")
        self.write(f"files/name-{m[5]}.txt", b"a marker in a name")
        self.mkdir(NFD_DIR)
        self.write(f"{NFD_DIR}/{NFD_FILE}", b"nfd")
        # a tree moved across parents, and a file moved between directories
        self.mkdir("from")
        self.mkdir("from/sub")
        self.mkdir("from/sub/deeper")
        self.write("from/sub/deeper/leaf.txt", m[6].encode())
        self.mkdir("to")
        self.rename("from/sub", "to/sub-moved")
        self.rename("files/marker.txt", "to/marker-moved.txt")
        # written, then gone: must not linger in the store either
        (self.mnt / "scratch").write_bytes(m[7].encode() * 100)
        os.unlink(self.mnt / "scratch")


@pytest.fixture
def workload(mounted):
    w = Workload(mounted.mnt)
    w.run()
    return w


def test_names_have_the_intended_byte_lengths():
    assert [len(n.encode()) for n in (NAME_146, NAME_147, NAME_255, NAME_200)] == [
        146, 147, 255, 200]


def test_tree_reads_back_after_remount(mounted, workload):
    assert tree_of(mounted.mnt) == workload.expected
    mounted.remount()
    assert tree_of(mounted.mnt) == workload.expected


def test_nfd_names_listed_nfc_and_open_under_both(mounted, workload):
    nfc_dir = unicodedata.normalize("NFC", NFD_DIR)
    nfc_file = unicodedata.normalize("NFC", NFD_FILE)
    assert nfc_dir in os.listdir(mounted.mnt)
    assert NFD_DIR not in os.listdir(mounted.mnt)
    assert os.listdir(mounted.mnt / nfc_dir) == [nfc_file]
    for d in (NFD_DIR, nfc_dir):
        for f in (NFD_FILE, nfc_file):
            assert (mounted.mnt / d / f).read_bytes() == b"nfd"


def test_walker_accepts_store_and_finds_no_plaintext(mounted, workload):
    mounted.stop()
    result = walk(mounted.store, mounted.password_file, workload.markers)
    result.assert_clean()
    assert result.tree == workload.expected


def cleartext_names(workload):
    names = {part for rel in workload.expected for part in rel.split("/")}
    names |= {NFD_DIR, NFD_FILE, "scratch"}
    return {n for n in names if len(n) >= 5}


def plaintext_in(folder, needles):
    """Where in folder (names of entries, bytes of files) any needle shows."""
    found = []
    raw = [n.encode() for n in needles]
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(root, name)
            found += [f"{path}: name shows {n!r}" for n in needles if n in name]
            if name in files and not os.path.islink(path):
                data = pathlib.Path(path).read_bytes()
                found += [f"{path}: holds {n!r}" for n in raw if n in data]
    return found


def test_store_names_hide_cleartext_names(mounted, workload):
    mounted.stop()
    cleartext = cleartext_names(workload)
    for root, dirs, files in os.walk(store_view(mounted.store)):
        for name in dirs + files:
            leaked = [n for n in cleartext if n in name]
            assert not leaked, f"{os.path.join(root, name)} shows {leaked}"


@pytest.mark.stores("webdav", "s3")
def test_cache_folder_holds_no_plaintext(mounted, workload):
    """The cache folder of a remote store holds ciphertext only: no marker in
    any file, no cleartext name in any name."""
    assert is_remote(mounted.store)
    cache = pathlib.Path(mounted.cache_dir)
    needles = workload.markers + sorted(cleartext_names(workload))
    # mounted: the writes went to the cache folder first (so it is not empty)
    cached = [p for p in cache.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in cached) > 10 << 20, (
        f"the cache folder {cache} should hold at least the 10 MiB file's object; "
        f"it has {len(cached)} files")
    assert plaintext_in(cache, needles) == []
    mounted.stop()
    assert plaintext_in(cache, needles) == []


def test_long_names_are_shortened_exactly_above_threshold(mounted, workload):
    mounted.stop()
    view = store_view(mounted.store)
    entries = [name for _, dirs, files in os.walk(view) for name in dirs + files]
    shortened = [d for _, dirs, _ in os.walk(view) for d in dirs if d.endswith(".c9s")]
    long_names = [p for p in workload.expected
                  if len(p.rsplit("/", 1)[-1].encode()) >= 147]
    assert len(shortened) == len(long_names) == 3
    # 146 bytes of name -> b64(16 + 146) + ".c9r" is 220 characters: not shortened
    assert any(len(n) == 220 and n.endswith(".c9r") for n in entries)
    assert all(len(n) <= 220 for n in entries)
