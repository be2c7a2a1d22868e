"""Bad input: wrong passwords, tampered or unsupported vault configs, damaged
masterkey files refuse to mount with a clear message and the documented exit
code; damaged objects give EIO (or a hidden entry) and a log line naming the
object — never wrong data, never a crash."""
import base64
import errno
import json
import os
import subprocess
import sys

import pytest

from conftest import (CTRMAC_VAULT, UMBRAFS, UMBRAFS_WALK, Vault, copy_vault, needs_umbrafs,
                      store_files, walk, write_password)

# Local store only: the damage is done to the store's files on disk.
pytestmark = needs_umbrafs

CHUNK, CHUNK_CT, HEADER = 32768, 32796, 68


def mount_must_fail(vault, mnt, foreground=True, password_file=None):
    """Run umbrafs mount expecting a refusal; returns (exit code, stderr)."""
    mnt.mkdir(exist_ok=True)
    args = [UMBRAFS, "mount"] + (["-f"] if foreground else []) + [
        "--password-file", str(password_file or vault.password_file), str(vault.store),
        str(mnt)]
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, errors="replace")
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        subprocess.run(["fusermount3", "-u", str(mnt)], capture_output=True)
        proc.kill()
        proc.communicate()
        pytest.fail("umbrafs mount did not refuse; it kept running")
    mounted = os.path.ismount(mnt)
    if mounted:
        subprocess.run(["fusermount3", "-u", str(mnt)], capture_output=True)
    assert not mounted, f"mounted although it should have refused: {err}"
    assert err.startswith("umbrafs: "), f"stderr does not start 'umbrafs: ': {err!r}"
    assert len(err.strip().splitlines()) >= 1
    return proc.returncode, err


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_parts(vault):
    return (vault.store / "vault.cryptomator").read_text().strip().split(".")


def b64url_decode(part):
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


# ------------------------------------------------------- refusing to mount


@pytest.mark.parametrize("foreground", [True, False], ids=["foreground", "daemon"])
def test_wrong_password(vault, tmp_path, foreground):
    wrong = write_password(tmp_path / "wrong", "not the password")
    rc, err = mount_must_fail(vault, tmp_path / "mnt", foreground, password_file=wrong)
    assert rc == 3, err
    assert str(vault.store / "masterkey.cryptomator") in err
    assert "password" in err


def test_password_file_newline_is_not_part_of_password(vault, tmp_path, mount_factory):
    (tmp_path / "with-newline").write_bytes(vault.password_file.read_bytes() + b"\nsecond")
    m = mount_factory(Vault(vault.store, tmp_path / "with-newline"))
    assert m.alive()


def test_corrupt_signature(vault, tmp_path):
    header, payload, sig = jwt_parts(vault)
    sig = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
    (vault.store / "vault.cryptomator").write_text(".".join((header, payload, sig)))
    rc, err = mount_must_fail(vault, tmp_path / "mnt")
    assert rc == 4, err
    assert "vault.cryptomator" in err


@pytest.mark.parametrize("signature", ["", "junk", None], ids=["empty", "junk", "copied"])
def test_alg_none(vault, tmp_path, signature):
    header, payload, real_sig = jwt_parts(vault)
    fields = json.loads(b64url_decode(header))
    fields["alg"] = "none"
    forged = b64url(json.dumps(fields).encode())
    (vault.store / "vault.cryptomator").write_text(
        f"{forged}.{payload}.{real_sig if signature is None else signature}")
    rc, err = mount_must_fail(vault, tmp_path / "mnt")
    assert rc == 4, err
    assert "vault.cryptomator" in err


def test_siv_ctrmac_vault_is_named(tmp_path):
    src, password = CTRMAC_VAULT
    vault = Vault(copy_vault(src, tmp_path / "store"), password)
    rc, err = mount_must_fail(vault, tmp_path / "mnt")
    assert rc == 4, err
    assert "SIV_CTRMAC" in err


def resign(vault, payload):
    r = subprocess.run([UMBRAFS_WALK, "--password-file", str(vault.password_file),
                        str(vault.store), "--resign-config", json.dumps(payload)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_resigned_format_8_config_still_mounts(vault, mount_factory):
    """Control for the next test: the walker's re-signing makes valid configs."""
    payload = json.loads(b64url_decode(jwt_parts(vault)[1]))
    assert payload["format"] == 8
    before = (vault.store / "vault.cryptomator").read_text()
    resign(vault, dict(payload, jti="00000000-0000-4000-8000-000000000000"))
    assert (vault.store / "vault.cryptomator").read_text() != before
    assert mount_factory(vault).alive()


@pytest.mark.parametrize("change", [{"format": 9}, {"format": 7}, {"cipherCombo": "SIV_CTRMAC"},
                                    {"cipherCombo": "XYZ"}])
def test_unsupported_signed_config(vault, tmp_path, change):
    payload = json.loads(b64url_decode(jwt_parts(vault)[1]))
    resign(vault, dict(payload, **change))
    rc, err = mount_must_fail(vault, tmp_path / "mnt")
    assert rc == 4, err
    assert "vault.cryptomator" in err
    if change.get("cipherCombo") == "SIV_CTRMAC":
        assert "SIV_CTRMAC" in err


@pytest.mark.parametrize("keep", [0, 40, 0.5])
def test_truncated_masterkey_file(vault, tmp_path, keep):
    path = vault.store / "masterkey.cryptomator"
    text = path.read_bytes()
    path.write_bytes(text[:int(len(text) * keep) if isinstance(keep, float) else keep])
    rc, err = mount_must_fail(vault, tmp_path / "mnt")
    assert rc == 4, err
    assert "masterkey.cryptomator" in err


@pytest.mark.parametrize("damage", ["no-config", "garbage-config", "empty-folder"])
def test_not_a_vault(vault, tmp_path, damage):
    cfg = vault.store / "vault.cryptomator"
    if damage == "no-config":
        cfg.unlink()
    elif damage == "garbage-config":
        cfg.write_text("this is not a JWT")
    else:
        vault = Vault(tmp_path / "empty", vault.password_file)
        vault.store.mkdir()
    rc, err = mount_must_fail(vault, tmp_path / "mnt")
    assert rc == 4, err


# --------------------------------------------------------- damaged objects


VICTIM = os.urandom(100000)       # 4 chunks
BYSTANDER = os.urandom(50000)


@pytest.fixture
def damaged(vault, mount_factory):
    """Writes victim and bystander, unmounts, and returns (mount, object of
    victim relative to the store); the test damages the object, then calls
    mount.start()."""
    m = mount_factory(vault, expect_errors=True)
    objects = {}
    for name, data in (("victim.bin", VICTIM), ("bystander.bin", BYSTANDER)):
        before = store_files(vault.store)
        (m.mnt / name).write_bytes(data)
        new = store_files(vault.store) - before
        assert len(new) == 1, f"cannot tell the object of {name}: {new}"
        objects[name] = new.pop()
    m.stop()
    assert os.path.getsize(vault.store / objects["victim.bin"]) == HEADER + 3 * CHUNK_CT + (
        100000 - 3 * CHUNK) + 28
    return m, objects["victim.bin"]


def flip_bit(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([byte ^ 0x10]))


def read_blocks(path, original):
    """Read path in 4 KiB blocks; every block either fails with EIO or equals the
    original. Returns the offsets that failed."""
    failed = []
    fd = os.open(path, os.O_RDONLY)
    try:
        for off in range(0, len(original), 4096):
            try:
                got = os.pread(fd, 4096, off)
            except OSError as e:
                assert e.errno == errno.EIO, errno.errorcode.get(e.errno)
                failed.append(off)
                continue
            assert got == original[off:off + 4096], f"wrong data at {off}"
    finally:
        os.close(fd)
    return failed


def assert_still_serving(m):
    assert m.alive()
    assert (m.mnt / "bystander.bin").read_bytes() == BYSTANDER
    (m.mnt / "after.txt").write_bytes(b"still writable")
    assert (m.mnt / "after.txt").read_bytes() == b"still writable"


def assert_whole_read_fails(path):
    with pytest.raises(OSError) as info:
        with open(path, "rb") as f:
            f.read()
    assert info.value.errno == errno.EIO


def test_flipped_bit_in_chunk(damaged):
    m, obj = damaged
    flip_bit(m.store / obj, HEADER + CHUNK_CT + 100)  # inside chunk 1
    problems = walk(m.store, m.password_file).problems
    assert any(obj in p for p in problems), problems  # the walker sees it too
    m.start()
    assert_whole_read_fails(m.mnt / "victim.bin")
    failed = read_blocks(m.mnt / "victim.bin", VICTIM)
    assert any(CHUNK <= off < 2 * CHUNK for off in failed)
    assert m.wait_for_log("authentication failed", obj), m.log_text()
    assert_still_serving(m)


def test_flipped_bit_in_header(damaged):
    m, obj = damaged
    flip_bit(m.store / obj, 20)
    m.start()
    with pytest.raises(OSError) as info:  # at open or at read
        with open(m.mnt / "victim.bin", "rb") as f:
            f.read()
    assert info.value.errno == errno.EIO
    assert m.wait_for_log("authentication failed", obj), m.log_text()
    assert_still_serving(m)


def test_flipped_bit_in_name(damaged):
    m, obj = damaged
    folder, name = os.path.split(obj)
    i = 5
    bad = name[:i] + ("A" if name[i] != "A" else "B") + name[i + 1:]
    os.rename(m.store / obj, m.store / folder / bad)
    m.start()
    assert sorted(os.listdir(m.mnt)) == ["bystander.bin"]
    assert not (m.mnt / "victim.bin").exists()
    assert m.wait_for_log("cannot decrypt name", os.path.join(folder, bad)), m.log_text()
    assert_still_serving(m)


@pytest.mark.parametrize("keep_of_chunk1", [1000, 10], ids=["mid-chunk", "fragment"])
def test_truncated_object(damaged, keep_of_chunk1):
    m, obj = damaged
    os.truncate(m.store / obj, HEADER + CHUNK_CT + keep_of_chunk1)
    m.start()
    try:
        size = os.stat(m.mnt / "victim.bin").st_size
    except OSError as e:
        assert e.errno == errno.EIO
    else:
        assert size <= 2 * CHUNK
    with pytest.raises(OSError) as info:
        with open(m.mnt / "victim.bin", "rb") as f:
            data = f.read()
            assert data == VICTIM[:len(data)]
            raise AssertionError(f"read {len(data)} bytes of a truncated object, no EIO")
    assert info.value.errno == errno.EIO
    assert m.wait_for_log(obj), m.log_text()
    assert_still_serving(m)


# An object the store holds as something else than a regular file: a FIFO
# someone planted blocks open() until a writer comes, which would hold the
# request (and with it the thread serving requests) for good.
OPEN_AND_READ = """
import os, sys
try:
    if os.path.isdir(sys.argv[1]):
        os.listdir(sys.argv[1])
    else:
        with open(sys.argv[1], "rb") as f:
            f.read()
except OSError as e:
    sys.exit(e.errno)
"""


def errno_of_reading(m, path, seconds=20):
    """Read path (a file) or list it (a folder) of mount m in a child process;
    the errno it failed with, 0 if none. A child still waiting after seconds
    fails the test: the file system hung (the daemon is killed, as a child
    waiting for a request the daemon holds cannot be killed)."""
    proc = subprocess.Popen([sys.executable, "-c", OPEN_AND_READ, str(path)])
    try:
        return proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        m.kill()
        proc.wait()
        pytest.fail(f"reading {path} still waited after {seconds} s")


def replace_by_fifo(path):
    os.unlink(path)
    os.mkfifo(path)


def test_file_object_replaced_by_a_fifo(damaged):
    m, obj = damaged
    replace_by_fifo(m.store / obj)
    m.start()
    assert errno_of_reading(m, m.mnt / "victim.bin") == errno.EIO
    assert m.wait_for_log(obj), m.log_text()
    assert_still_serving(m)


def test_folder_file_replaced_by_a_fifo(vault, mount_factory):
    m = mount_factory(vault, expect_errors=True)
    before = store_files(vault.store)
    (m.mnt / "folder").mkdir()
    (m.mnt / "bystander.bin").write_bytes(BYSTANDER)
    dir_files = [f for f in store_files(vault.store) - before if f.endswith("/dir.c9r")]
    assert len(dir_files) == 1, dir_files
    m.stop()
    replace_by_fifo(vault.store / dir_files[0])
    m.start()
    assert errno_of_reading(m, m.mnt / "folder") in (errno.EIO, errno.ENOENT)
    assert m.wait_for_log(dir_files[0]), m.log_text()
    assert_still_serving(m)
