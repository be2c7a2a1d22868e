"""Remote stores only (WebDAV, S3): what the cache in front of a server must
get right beyond the POSIX suite. A daemon killed with uploads queued loses
nothing that was fsync'ed and resumes the rest at the next mount; a copy of a
tree through a proxy that resets, fails and stalls requests arrives whole; two
mounts writing one file keep both versions."""
import contextlib
import errno
import hashlib
import os
import random
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

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


# ------------------------------------------- a request held by the server


def object_get(head):
    """A GET of an object (not of an S3 listing, which has a query)."""
    target = head.split(b" ", 2)[1] if head.startswith(b"GET ") else b"?"
    return b"?" not in target


def upload(head):
    return head.startswith(b"PUT ")


def change(head):
    """A request that changes the server (S3 copies with a PUT)."""
    return head.split(b" ", 1)[0] in (b"PUT", b"POST", b"DELETE", b"MOVE", b"COPY", b"MKCOL")


def in_thread(fn, seconds):
    """Run fn in a thread; whether it finished within seconds. What it raised
    is raised here."""
    raised = []

    def run():
        try:
            fn()
        except BaseException as e:  # handed to the test's thread
            raised.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    if raised:
        raise raised[0]
    return not t.is_alive()


def wait_held(proxy, what):
    deadline = time.monotonic() + 30
    while not proxy.stats["held"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proxy.stats["held"], f"{what} sent no request to hold"


@contextlib.contextmanager
def cold_mount_through_proxy(vault, mount_factory, tmp_path, files):
    """Write files {name: bytes, or None for a folder} through a mount of its
    own, then yield a mount with an empty cache through a proxy that makes no
    faults, and the proxy; the mount stops at the end."""
    m = mount_factory(vault, cache_dir=tmp_path / "cache-writer")
    for name, data in files.items():
        if data is None:
            (m.mnt / name).mkdir()
        else:
            (m.mnt / name).write_bytes(data)
    m.stop()
    with FaultProxy(vault.store.server.port, seed=1, fault_rate=0) as proxy:
        url, env = vault.store.through(proxy.port)
        m = mount_factory(vault, url=url, env=env, cache_dir=tmp_path / "cache-cold")
        yield m, proxy
        m.stop()


def test_a_read_waiting_for_the_server_holds_up_no_other_request(vault, mount_factory,
                                                                 tmp_path):
    """While a read waits for its GET (held by the proxy), the mount answers a
    lookup, a create, a mkdir and a listing: the thread that reads requests
    from the kernel is never the one left waiting, and a stat of the file
    being opened does not wait for its header."""
    data = os.urandom(100_000)
    files = {"big.bin": data, "small.txt": b"small"}
    with cold_mount_through_proxy(vault, mount_factory, tmp_path, files) as (m, proxy):
        proxy.hold(object_get)
        try:
            reader = subprocess.Popen(
                [sys.executable, "-c",
                 "import sys; sys.stdout.buffer.write(open(sys.argv[1], 'rb').read())",
                 str(m.mnt / "big.bin")], stdout=subprocess.PIPE)
            wait_held(proxy, "the read")

            def others():
                assert (m.mnt / "small.txt").stat().st_size == 5
                (m.mnt / "new.txt").write_bytes(b"new")
                (m.mnt / "folder").mkdir()
                assert sorted(os.listdir(m.mnt)) == ["big.bin", "folder", "new.txt",
                                                     "small.txt"]

            answered = in_thread(others, 10)
            assert reader.poll() is None, "the read ended while its GET was held"
        finally:
            proxy.release()
        out, _ = reader.communicate(timeout=60)
        assert answered, "the mount answered nothing while one read waited for the server"
        assert out == data


def test_a_close_while_a_read_of_the_file_waits_for_the_server_holds_up_no_lookup(
        vault, mount_factory, tmp_path):
    """One handle of a file closes while a read through another handle waits
    for its GET (held): the close waits for no read, and the mount goes on
    answering lookups, creates and listings meanwhile."""
    data = os.urandom(12 << 20)
    off = 10 << 20  # past what opening the file fetched ahead
    files = {"big.bin": data, "small.txt": b"small"}
    with cold_mount_through_proxy(vault, mount_factory, tmp_path, files) as (m, proxy), \
            ThreadPoolExecutor(1) as pool:
        reading = os.open(m.mnt / "big.bin", os.O_RDONLY)
        closing = os.open(m.mnt / "big.bin", os.O_RDONLY)
        proxy.hold(object_get)
        try:
            read = pool.submit(os.pread, reading, 4096, off)
            wait_held(proxy, "the read")
            os.close(closing)

            def others():
                assert (m.mnt / "small.txt").stat().st_size == 5
                (m.mnt / "new.txt").write_bytes(b"new")
                assert sorted(os.listdir(m.mnt)) == ["big.bin", "new.txt", "small.txt"]

            answered = in_thread(others, 10)
            assert not read.done(), "the read ended while its GET was held"
        finally:
            proxy.release()
        assert read.result(timeout=60) == data[off:off + 4096]
        os.close(reading)
        assert answered, "the mount froze while a read waited for the server and a handle closed"


def test_an_fsync_waiting_for_its_upload_holds_up_no_listing(vault, mount_factory, tmp_path):
    """While an fsync waits for its upload (the PUT held), `ls -l` of the
    folder is answered, with the size written to the file being synced."""
    data = os.urandom(3 << 20)
    files = {"small.txt": b"small"}
    with cold_mount_through_proxy(vault, mount_factory, tmp_path, files) as (m, proxy), \
            ThreadPoolExecutor(1) as pool, open(m.mnt / "big.bin", "wb") as f:
        f.write(data)
        f.flush()
        proxy.hold(upload)  # before the cache's own upload, 2 s after the first write
        try:
            synced = pool.submit(os.fsync, f.fileno())
            wait_held(proxy, "the fsync")

            def ls_l():
                sizes = {name: (m.mnt / name).stat().st_size for name in os.listdir(m.mnt)}
                assert sizes == {"big.bin": len(data), "small.txt": 5}

            answered = in_thread(ls_l, 10)
            assert not synced.done(), "the fsync ended while its upload was held"
        finally:
            proxy.release()
        synced.result(timeout=60)
        assert answered, "a listing waited for an fsync's upload"
    assert walk(vault.store, vault.password_file).tree["big.bin"] == file_nodes(
        {"big.bin": data})["big.bin"]


@pytest.mark.parametrize("what", ["unlink", "rename"])
def test_a_removal_waiting_for_the_server_holds_up_no_lookup(vault, mount_factory, tmp_path,
                                                             what):
    """While an unlink or a rename in a folder waits for the server (its
    request held), lookups, creates and listings of another folder are
    answered."""
    files = {"small.txt": b"small", "sub": None, "sub/a.txt": b"a"}
    with cold_mount_through_proxy(vault, mount_factory, tmp_path, files) as (m, proxy), \
            ThreadPoolExecutor(1) as pool:
        proxy.hold(change)
        try:
            if what == "unlink":
                done = pool.submit(os.unlink, m.mnt / "sub" / "a.txt")
            else:
                done = pool.submit(os.rename, m.mnt / "sub" / "a.txt", m.mnt / "sub" / "b.txt")
            wait_held(proxy, f"the {what}")

            def others():
                assert (m.mnt / "small.txt").stat().st_size == 5
                (m.mnt / "new.txt").write_bytes(b"new")
                assert sorted(os.listdir(m.mnt)) == ["new.txt", "small.txt", "sub"]

            answered = in_thread(others, 10)
            assert not done.done(), f"the {what} ended while its request was held"
        finally:
            proxy.release()
        done.result(timeout=60)
        assert sorted(os.listdir(m.mnt / "sub")) == ([] if what == "unlink" else ["b.txt"])
        assert answered, f"the mount froze while the {what} waited for the server"


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
