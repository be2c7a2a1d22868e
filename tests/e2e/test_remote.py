"""Remote stores only (WebDAV, S3): what the cache in front of a server must
get right beyond the POSIX suite. A daemon killed with uploads queued loses
nothing that was fsync'ed and resumes the rest at the next mount; a copy of a
tree through a proxy that resets, fails and stalls requests arrives whole; two
mounts writing one file keep both versions."""
import errno
import hashlib
import os
import random
import re
import subprocess

import pytest

from conftest import needs_umbrafs, run_umbrafs, tree_of, walk
from faultproxy import FAULTS, FaultProxy

pytestmark = [needs_umbrafs, pytest.mark.stores("webdav", "s3")]

CONFLICT_NAME = re.compile(r"notes \(conflict \d{4}-\d\d-\d\d \d{4}( \d+)?\)\.txt")


def write_fsync(path, data):
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_nodes(contents):
    """The walker's tree entries of {path: bytes}."""
    return {p: ("f", len(d), hashlib.sha256(d).hexdigest()) for p, d in contents.items()}


# ------------------------------------------------------------- kill -9


def test_kill_9_keeps_fsynced_files_and_resumes_the_queue(vault, mount_factory, tmp_path):
    rng = random.Random(9)
    sizes = [0, 1, 4096, 32768, 100000, 300000]
    m = mount_factory(vault)
    os.mkdir(m.mnt / "sub")
    fsync_dir(m.mnt)
    synced = {f"synced-{i}.bin": rng.randbytes(sizes[i % len(sizes)]) for i in range(6)}
    synced |= {f"sub/synced-{i}.bin": rng.randbytes(70000 + i) for i in range(4)}
    for rel, data in synced.items():
        write_fsync(m.mnt / rel, data)
    fsync_dir(m.mnt)
    fsync_dir(m.mnt / "sub")
    closed = {f"closed-{i}.bin": rng.randbytes(50000 + 1000 * i) for i in range(8)}
    closed |= {f"sub/closed-{i}.bin": rng.randbytes(1000 + i) for i in range(4)}
    for rel, data in closed.items():
        (m.mnt / rel).write_bytes(data)  # closed, not fsync'ed: queued for upload
    m.kill()

    # the server, before anything resumes: every fsync'ed file is there
    on_server = walk(vault.store, vault.password_file).tree
    expected_synced = file_nodes(synced)
    assert {p: on_server.get(p) for p in expected_synced} == expected_synced
    assert any(p not in on_server for p in closed), (
        "every closed file was uploaded before the kill: the test did not kill with a queue")
    assert pending_uploads(vault.store) > 0  # what `umbrafs info` tells of the queue

    # the same cache folder: the queue resumes; unmounting waits for it
    m2 = mount_factory(vault)
    for rel, data in (synced | closed).items():
        assert (m2.mnt / rel).read_bytes() == data, rel
    m2.stop()
    assert pending_uploads(vault.store) == 0
    result = walk(vault.store, vault.password_file)
    result.assert_clean()
    assert result.tree == {"sub": ("d",)} | file_nodes(synced | closed)


def pending_uploads(store):
    """The queued uploads `umbrafs info` counts in the store's cache folder."""
    r = run_umbrafs("info", "--cache-dir", store.cache_dir, store)
    assert r.returncode == 0, r.stderr
    assert re.search(r"^cache use: [0-9.]+ MiB in \d+ objects$", r.stdout, re.M), r.stdout
    return int(re.search(r"^pending uploads: (\d+) ", r.stdout, re.M).group(1))


# ---------------------------------------------------- faulty network


def make_tree(root, seed, n_files=300):
    """n_files files of varied sizes (a few of several MiB) in nested folders,
    with a few symlinks and names with spaces and non-ASCII letters."""
    rng = random.Random(seed)
    folders = [root]
    for i in range(12):
        folders.append(rng.choice(folders) / f"dir {i} ä")
        folders[-1].mkdir(parents=True)
    sizes = [0, 1, 100, 4095, 32768, 32769, 70000, 200000]
    for i in range(n_files):
        size = rng.choice(sizes) if i >= 3 else (1 + i) << 20  # 1, 2, 3 MiB
        (rng.choice(folders) / f"file-{i:03d}-ü.bin").write_bytes(rng.randbytes(size))
    for i in range(5):
        os.symlink(f"../target-{i}", rng.choice(folders) / f"link-{i}")


# UMBRAFS_E2E_FAULTS=error,stall (say) narrows the faults, to tell problems apart
FAULTS_UNDER_TEST = os.environ.get("UMBRAFS_E2E_FAULTS", ",".join(FAULTS)).split(",")


def test_copy_through_a_faulty_network_arrives_whole(vault, mount_factory, tmp_path):
    """A reset after the whole request (reset-response) is a request that may
    have taken effect with its answer lost: the client's retry must not take
    its own earlier success for a conflict or an existing entry."""
    src = tmp_path / "src"
    make_tree(src, seed=300)
    with FaultProxy(vault.store.server.port, seed=42, fault_rate=0.1, max_faults=40,
                    stall_seconds=(0.5, 2.5), faults=FAULTS_UNDER_TEST) as proxy:
        url, env = vault.store.through(proxy.port)
        env |= {"UMBRAFS_HTTP_RETRY_BASE_MS": "50", "UMBRAFS_HTTP_TRIES": "8"}
        m = mount_factory(vault, url=url, env=env, cache_dir=tmp_path / "cache-proxied",
                          stop_timeout=300, expect_errors=True)
        r = subprocess.run(["cp", "-a", str(src), str(m.mnt / "copy")], capture_output=True,
                           text=True, timeout=600)
        assert r.returncode == 0, r.stderr
        m.stop()  # waits for every upload, through the proxy
    faults = {f: proxy.stats[f] for f in FAULTS_UNDER_TEST}
    assert all(faults.values()), f"not every kind of fault happened: {proxy.stats}"

    # everything arrived: on the server, and through a mount with an empty cache
    expected = tree_of(src)
    result = walk(vault.store, vault.password_file)
    result.assert_clean()
    on_server = {p[len("copy/"):]: node for p, node in result.tree.items() if p != "copy"}
    assert on_server == expected
    direct = mount_factory(vault, cache_dir=tmp_path / "cache-direct")
    assert tree_of(direct.mnt / "copy") == expected


# ------------------------------------------------- two mounts, one file


@pytest.mark.parametrize("start", ["both-create", "both-change"])
def test_two_mounts_writing_one_file_keep_both_versions(vault, mount_factory, tmp_path, start):
    """Each mount has its own cache folder; the second upload finds the object
    changed (ETag) and keeps its version as a conflict copy. Which version
    keeps the name is not specified; that both survive is."""
    a = mount_factory(vault, cache_dir=tmp_path / "cache-a")
    if start == "both-change":
        write_fsync(a.mnt / "notes.txt", b"the original\n")
    b = mount_factory(vault, cache_dir=tmp_path / "cache-b")
    if start == "both-change":
        assert (b.mnt / "notes.txt").read_bytes() == b"the original\n"
    else:  # both list the folder first: each believes it creates the file
        assert os.listdir(a.mnt) == [] and os.listdir(b.mnt) == []
    # different sizes: Apache's ETags (mtime and size) tell them apart within a second
    version_a, version_b = b"version A\n" * 1000, b"version B, longer\n" * 2000
    write_fsync(a.mnt / "notes.txt", version_a)
    with open(b.mnt / "notes.txt", "wb") as f:
        f.write(version_b)
        f.flush()
        try:
            os.fsync(f.fileno())
        except OSError as e:  # allowed: this version cannot go under this name;
            assert e.errno == errno.EIO  # it is kept as a conflict copy at close
    a.stop()
    b.stop()

    # what the store holds, through a third mount with an empty cache
    c = mount_factory(vault, cache_dir=tmp_path / "cache-c")
    names = sorted(os.listdir(c.mnt))
    conflicts = [n for n in names if CONFLICT_NAME.fullmatch(n)]
    assert len(conflicts) == 1 and names == sorted(["notes.txt"] + conflicts), names
    assert {(c.mnt / n).read_bytes() for n in names} == {version_a, version_b}
    c.stop()
    walk(vault.store, vault.password_file).assert_clean()
