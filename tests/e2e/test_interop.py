"""Interop: vaults written by Cryptomator's cryptolib and by pycryptomator mount
and show exactly the plaintext that went into them; umbrafs's writes into them
survive a remount and leave a vault the offline walker accepts. On every store:
the sample is copied into a fresh local folder, WebDAV collection or S3 prefix."""
import os

import pytest

from conftest import (ALL_STORES, PLAINTEXT_TREE, SAMPLE_VAULTS, Vault, copy_vault, is_remote,
                      needs_umbrafs, nfc_keys, run_umbrafs, tree_of, walk)

pytestmark = [needs_umbrafs, pytest.mark.stores(*ALL_STORES)]


@pytest.fixture(params=sorted(SAMPLE_VAULTS))
def sample(request, new_store):
    """(the sample's description, a writable copy of it as a Vault)"""
    s = SAMPLE_VAULTS[request.param]
    store = new_store()
    if is_remote(store):
        store.upload_tree(s.folder)
    else:
        copy_vault(s.folder, store)
    return s, Vault(store, s.password_file)


def assert_walk_ok(s, vault):
    result = walk(vault.store, vault.password_file)
    assert not s.unexpected(result.problems), result.stderr
    return result


def test_walker_reads_sample_vault_as_plaintext_tree(sample):
    """The walker itself agrees with the reference data, so its verdicts count."""
    s, vault = sample
    result = assert_walk_ok(s, vault)
    assert len(result.problems) == len(s.known_problems)
    assert nfc_keys(result.tree) == s.expected_tree()


def test_sample_vault_mounts_as_plaintext_tree(sample, mount_factory):
    s, vault = sample
    m = mount_factory(vault)
    expected = s.expected_tree()
    assert nfc_keys(tree_of(m.mnt)) == expected
    # byte-for-byte, not only digests, and links resolve through the mount
    for rel, node in expected.items():
        if node[0] == "f":
            assert (m.mnt / rel).read_bytes() == (PLAINTEXT_TREE / rel).read_bytes(), rel
        elif node[0] == "l":
            assert os.readlink(m.mnt / rel) == node[1]
            assert (m.mnt / rel).read_bytes() == (PLAINTEXT_TREE / rel).read_bytes()


def test_sample_vault_accepts_writes(sample, mount_factory):
    s, vault = sample
    m = mount_factory(vault)
    expected = s.expected_tree()
    new_data = os.urandom(70000)
    (m.mnt / "new.bin").write_bytes(new_data)
    with open(m.mnt / "hello.txt", "r+b") as f:  # edit in place
        f.seek(6)
        f.write(b"vault")
    edited = (PLAINTEXT_TREE / "hello.txt").read_bytes()[:6] + b"vault"
    edited += (PLAINTEXT_TREE / "hello.txt").read_bytes()[11:]
    (m.mnt / "sub" / "made").mkdir()
    (m.mnt / "sub" / "made" / "inside.txt").write_text("inside")
    os.rename(m.mnt / "sub" / "rand100k.bin", m.mnt / "sub" / "made" / "moved.bin")
    os.rename(m.mnt / "sub" / "deeper", m.mnt / "deeper-moved")

    m.remount()
    assert (m.mnt / "new.bin").read_bytes() == new_data
    assert (m.mnt / "hello.txt").read_bytes() == edited
    assert (m.mnt / "sub/made/inside.txt").read_text() == "inside"
    assert ((m.mnt / "sub/made/moved.bin").read_bytes()
            == (PLAINTEXT_TREE / "sub/rand100k.bin").read_bytes())
    assert ((m.mnt / "deeper-moved/exact64k.bin").read_bytes()
            == (PLAINTEXT_TREE / "sub/deeper/exact64k.bin").read_bytes())
    assert not (m.mnt / "sub" / "deeper").exists()
    assert not (m.mnt / "sub" / "rand100k.bin").exists()
    if "sub/link" in expected:  # the link to hello.txt still resolves
        assert (m.mnt / "sub" / "link").read_bytes() == edited
    got = tree_of(m.mnt)
    m.stop()

    result = assert_walk_ok(s, vault)
    assert nfc_keys(result.tree) == nfc_keys(got)
    assert got["sub/made/moved.bin"] == expected["sub/rand100k.bin"]
    assert got["deeper-moved/exact64k.bin"] == expected["sub/deeper/exact64k.bin"]


def test_info_counts_sample_vault(sample):
    s, vault = sample
    tree = s.expected_tree()
    r = run_umbrafs("info", vault.store)
    assert r.returncode == 0, r.stderr
    lines = dict(l.split(":", 1) for l in r.stdout.splitlines() if ":" in l)
    lines = {k.strip(): v.strip() for k, v in lines.items()}
    assert lines["vault format"] == "8"
    assert lines["cipher combo"] == "SIV_GCM"
    assert lines["shortening threshold"] == "220"
    assert lines["scrypt"].startswith("N=32768")
    kinds = [node[0] for node in tree.values()]
    assert int(lines["directories"]) == kinds.count("d") + 1  # and the root
    assert int(lines["files"]) == kinds.count("f")
    assert int(lines["symlinks"]) == kinds.count("l")
