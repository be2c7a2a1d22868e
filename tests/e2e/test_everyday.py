"""Everyday use: `umbrafs passwd`, `umbrafs fsck` (clean, damaged, --repair),
mounting the system way (mount.umbrafs, `umbrafs STORE MNT -o ...` as
mount.fuse3 runs it, /etc/fstab through `mount -a -T`), -o ro, -o idle=, and
logging (stderr in the foreground, syslog with the vault's name behind)."""
import errno
import hashlib
import os
import pathlib
import pty
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import (PASSWORD, SAMPLE_VAULTS, UMBRAFS, copy_vault, init_vault, needs_umbrafs,
                      run_umbrafs, unmount, walk, write_password)

# Local store only: these tests read, damage and repair the store's files directly
# (passwd, fsck, syslog of a damaged chunk) or mount through fstab/mount(8).
pytestmark = needs_umbrafs

CHUNK, CHUNK_CT, HEADER = 32768, 32796, 68
EXIT_PASSWORD, EXIT_INVALID, EXIT_PROBLEMS = 3, 4, 5
BIG_SIZE = 100000          # three whole chunks and a part
LONG_NAME = "secret-" + "L" * 200  # stored shortened (.c9s)
SECRET = "secret"                  # in every cleartext name of fill()


def ciphertext_size(n):
    return HEADER + (n // CHUNK) * CHUNK_CT + (n % CHUNK + 28 if n % CHUNK else 0)


def fill(mnt):
    """A small tree with every kind of entry; returns its cleartext contents."""
    big = os.urandom(BIG_SIZE)
    sub = mnt / "secret-sub"
    (sub / "secret-empty").mkdir(parents=True)
    (sub / "secret-notes.txt").write_bytes(b"hello\n")
    (sub / "secret-big.bin").write_bytes(big)
    (mnt / LONG_NAME).write_bytes(b"a long name\n")
    os.symlink("secret-sub/secret-notes.txt", mnt / "secret-link")
    return {"secret-sub/secret-notes.txt": b"hello\n", "secret-sub/secret-big.bin": big, LONG_NAME: b"a long name\n"}


@pytest.fixture
def filled(vault, mount_factory):
    """A vault holding fill()'s tree, unmounted again."""
    m = mount_factory(vault)
    contents = fill(m.mnt)
    m.stop()
    vault.contents = contents
    return vault


def objects(store, name=None, size=None):
    """Store objects (paths) with the given file name and/or size."""
    return [p for p in pathlib.Path(store).rglob("*") if p.is_file()
            and (name is None or p.name == name) and (size is None or p.stat().st_size == size)]


def the_object(store, **kw):
    found = objects(store, **kw)
    assert len(found) == 1, f"expected one object {kw}, found {found}"
    return found[0]


def big_object(store):
    return the_object(store, size=ciphertext_size(BIG_SIZE))


def digests(store, under="d"):
    root = pathlib.Path(store)
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in (root / under).rglob("*") if p.is_file()}


def flip_byte(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x01]))


def fsck(vault, *args, password_file=None, **kw):
    return run_umbrafs("fsck", "--password-file", password_file or vault.password_file, *args,
                       vault.store, **kw)


def problem_lines(r):
    """fsck's problem lines: they start with the store path of the object."""
    text = r if isinstance(r, str) else r.stdout
    return [l for l in text.splitlines() if l.startswith("d/") or l.startswith("d:")]


def changed_first_char(text):
    return ("A" if text[0] != "A" else "B") + text[1:]


def dir_files(store):
    """(dir.c9r of "secret-sub", dir.c9r of "sub/empty") of fill()'s tree."""
    root = the_object(store, name="symlink.c9r").parent.parent
    found = objects(store, name="dir.c9r")
    sub = next(p for p in found if p.parent.parent == root)
    empty = next(p for p in found if p.parent.parent == big_object(store).parent)
    return sub, empty


def processes_with_argument(arg):
    """Pids of processes with arg among their command line arguments."""
    pids = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if os.fsencode(arg) in f.read().split(b"\0"):
                    pids.append(int(entry))
        except (OSError, ValueError):
            continue
    return pids


def mounts():
    with open("/proc/self/mounts") as f:
        return f.read()


def is_mounted(mnt):
    """Mounted, asked without touching the mount (a stat would be activity
    that keeps -o idle= from unmounting)."""
    return f" {mnt} fuse.umbrafs " in mounts()


def wait_until(condition, timeout):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# ---------------------------------------------------------------- passwd


def test_passwd_old_password_stops_new_one_works(filled, tmp_path, mount_factory):
    store = filled.store
    old_masterkey = (store / "masterkey.cryptomator").read_bytes()
    config = (store / "vault.cryptomator").read_bytes()
    content = digests(store)
    new_pw = write_password(tmp_path / "new-password", "a new pässword")

    r = run_umbrafs("passwd", "--password-file", filled.password_file,
                    "--new-password-file", new_pw, store)
    assert r.returncode == 0, r.stderr

    new_masterkey = (store / "masterkey.cryptomator").read_bytes()
    assert new_masterkey != old_masterkey
    assert (store / "masterkey.cryptomator.bkup").read_bytes() == old_masterkey
    assert (store / "vault.cryptomator").read_bytes() == config
    assert digests(store) == content, "passwd must not touch any content object"
    assert "scrypt: N=1024 r=8" in run_umbrafs("info", store).stdout  # the cost is kept

    r = run_umbrafs("fsck", "--password-file", filled.password_file, store)
    assert r.returncode == EXIT_PASSWORD, r.stdout + r.stderr
    assert "wrong password" in r.stderr

    filled.password_file = new_pw
    m = mount_factory(filled)
    for rel, data in filled.contents.items():
        assert (m.mnt / rel).read_bytes() == data
    assert os.readlink(m.mnt / "secret-link") == "secret-sub/secret-notes.txt"


def test_passwd_wrong_current_password_changes_nothing(vault, tmp_path):
    before = (vault.store / "masterkey.cryptomator").read_bytes()
    wrong = write_password(tmp_path / "wrong", "not it")
    new_pw = write_password(tmp_path / "new", "new one")
    r = run_umbrafs("passwd", "--password-file", wrong, "--new-password-file", new_pw,
                    vault.store)
    assert r.returncode == EXIT_PASSWORD, r.stderr
    assert r.stderr.startswith("umbrafs: wrong password")
    assert (vault.store / "masterkey.cryptomator").read_bytes() == before
    assert not (vault.store / "masterkey.cryptomator.bkup").exists()


def test_passwd_refuses_a_vault_whose_config_does_not_verify(vault, tmp_path):
    config = vault.store / "vault.cryptomator"
    header, payload, sig = config.read_text().split(".")
    config.write_text(f"{header}.{payload}.{'A' * len(sig)}")
    before = (vault.store / "masterkey.cryptomator").read_bytes()
    r = run_umbrafs("passwd", "--password-file", vault.password_file, "--new-password-file",
                    write_password(tmp_path / "new", "new one"), vault.store)
    assert r.returncode == EXIT_INVALID, r.stderr
    assert "signature" in r.stderr
    assert (vault.store / "masterkey.cryptomator").read_bytes() == before


def test_passwd_does_not_take_the_new_password_from_the_environment(vault):
    """UMBRAFS_PASSWORD answers for the current password only; without a
    terminal and --new-password-file there is no new password."""
    before = (vault.store / "masterkey.cryptomator").read_bytes()
    env = dict(os.environ, UMBRAFS_PASSWORD=PASSWORD)
    r = run_umbrafs("passwd", vault.store, env=env, start_new_session=True)
    assert r.returncode == 1, r.stderr
    assert "terminal" in r.stderr and "--new-password-file" in r.stderr, r.stderr
    assert (vault.store / "masterkey.cryptomator").read_bytes() == before


def test_passwd_can_change_the_scrypt_cost(vault, tmp_path):
    new_pw = write_password(tmp_path / "new-password", "costlier")
    r = run_umbrafs("passwd", "--scrypt-cost", "2048", "--password-file", vault.password_file,
                    "--new-password-file", new_pw, vault.store)
    assert r.returncode == 0, r.stderr
    assert "scrypt: N=2048 r=8" in run_umbrafs("info", vault.store).stdout
    assert run_umbrafs("passwd", "--scrypt-cost", "1000", "--password-file", new_pw,
                       "--new-password-file", new_pw, vault.store).returncode == 2


def test_passwd_usage():
    assert run_umbrafs("passwd").returncode == 2


# ---------------------------------------------------------------- fsck


def test_fsck_clean_vault(filled):
    r = fsck(filled)
    assert r.returncode == 0, r.stdout + r.stderr
    assert problem_lines(r) == []
    summary = r.stdout.strip().splitlines()[-1]
    assert "3 directories" in summary and "3 files" in summary and "1 symlinks" in summary
    assert "no problems" in summary
    assert str(BIG_SIZE + 6 + 12) in summary  # every cleartext byte was checked
    assert r.stderr == ""                     # no progress bar without a terminal


def test_fsck_sample_vault_from_cryptolib_is_clean(tmp_path):
    sample = SAMPLE_VAULTS["cryptolib"]
    store = copy_vault(sample.folder, tmp_path / "store")
    r = run_umbrafs("fsck", "--password-file", sample.password_file, store)
    assert r.returncode == 0, r.stdout + r.stderr


def test_fsck_reports_pycryptomators_broken_root_backup(tmp_path):
    sample = SAMPLE_VAULTS["pycryptomator"]
    store = copy_vault(sample.folder, tmp_path / "store")
    r = run_umbrafs("fsck", "--password-file", sample.password_file, store)
    assert r.returncode == EXIT_PROBLEMS, r.stdout + r.stderr
    lines = problem_lines(r)
    assert len(lines) == 1 and "dirid.c9r: does not authenticate" in lines[0], r.stdout
    r = run_umbrafs("fsck", "--repair", "--yes", "--password-file", sample.password_file, store)
    assert r.returncode == 0, r.stdout
    assert run_umbrafs("fsck", "--password-file", sample.password_file, store).returncode == 0


def test_fsck_flipped_chunk_names_the_object_not_the_file(filled):
    obj = big_object(filled.store)
    flip_byte(obj, HEADER + CHUNK_CT + 100)  # in chunk 1
    r = fsck(filled)
    assert r.returncode == EXIT_PROBLEMS, r.stdout + r.stderr
    lines = problem_lines(r)
    rel = str(obj.relative_to(filled.store))
    assert lines == [f"{rel}: chunk 1 (object bytes {HEADER + CHUNK_CT}-"
                     f"{HEADER + 2 * CHUNK_CT - 1}) does not authenticate"], r.stdout
    assert SECRET not in r.stdout + r.stderr
    assert "1 problem" in r.stdout.splitlines()[-1]
    verbose = fsck(filled, "-v")
    assert "[/secret-sub/secret-big.bin]" in verbose.stdout  # cleartext names only when asked for


@pytest.mark.parametrize("damage, expect", [
    ("header", "file header does not authenticate"),
    ("truncate", "is not the size of a valid file object"),
    ("name", "name does not decrypt in this directory"),
    ("long-name", "does not hash to its folder's name"),
    ("dir-file", "not a 36-byte directory id"),
    ("symlink", "symlink target does not authenticate"),
    ("moved", "name does not decrypt in this directory"),
    ("fifo", "cannot read: Input/output error"),  # never waits for a writer
])
def test_fsck_finds_damage(filled, damage, expect):
    store = filled.store
    if damage == "header":
        flip_byte(big_object(store), 30)
    elif damage == "truncate":
        with open(big_object(store), "r+b") as f:
            f.truncate(HEADER + 10)
    elif damage == "name":
        obj = big_object(store)
        obj.rename(obj.with_name(changed_first_char(obj.name)))
    elif damage == "long-name":
        name_file = the_object(store, name="name.c9s")
        name_file.write_text(changed_first_char(name_file.read_text()))
    elif damage == "dir-file":
        dir_files(store)[1].write_text("too short")
    elif damage == "symlink":
        flip_byte(the_object(store, name="symlink.c9r"), HEADER + 3)
    elif damage == "fifo":
        obj = big_object(store)
        obj.unlink()
        os.mkfifo(obj)
    elif damage == "moved":  # a file moved into another directory's content folder
        root_link = the_object(store, name="symlink.c9r").parent
        obj = big_object(store)
        obj.rename(root_link.parent / obj.name)
    r = fsck(filled)
    assert r.returncode == EXIT_PROBLEMS, r.stdout + r.stderr
    assert any(expect in l for l in problem_lines(r)), r.stdout
    assert SECRET not in r.stdout + r.stderr


def test_fsck_lost_dir_file_leaves_an_orphan(filled):
    """Without its dir.c9r, "sub/empty" is an incomplete entry and its content
    folder an orphan; both hold nothing, so --repair removes both."""
    empty_dir_file = dir_files(filled.store)[1]
    empty_dir_file.unlink()
    r = fsck(filled)
    assert r.returncode == EXIT_PROBLEMS, r.stdout
    lines = problem_lines(r)
    assert len(lines) == 2, r.stdout
    assert any(l.startswith(str(empty_dir_file.parent.relative_to(filled.store)))
               and "incomplete entry" in l for l in lines), r.stdout
    assert any("orphaned content folder" in l and "holds no entries" in l for l in lines)
    r = fsck(filled, "--repair", "--yes")
    assert r.returncode == 0, r.stdout
    assert "2 problems, 2 repaired" in r.stdout
    assert not problem_lines(fsck(filled))


def test_fsck_repair_rewrites_missing_dirid_backup_and_removes_empty_orphan(filled):
    store = filled.store
    backups = objects(store, name="dirid.c9r")
    backups[0].unlink()
    orphan = store / "d" / "ZZ" / ("Q" * 30)
    orphan.mkdir(parents=True)
    r = fsck(filled)
    assert r.returncode == EXIT_PROBLEMS
    assert len(problem_lines(r)) == 2, r.stdout

    # --repair without a terminal and without --yes asks nobody and changes nothing
    r = fsck(filled, "--repair", start_new_session=True)
    assert r.returncode == EXIT_PROBLEMS, r.stdout
    assert "no terminal" in r.stdout
    assert not backups[0].exists() and orphan.exists()

    r = fsck(filled, "--repair", "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 problems, 2 repaired" in r.stdout
    assert backups[0].exists() and not orphan.exists()
    r = fsck(filled)
    assert r.returncode == 0, r.stdout
    walk(store, filled.password_file).assert_clean()


def test_fsck_keeps_an_orphan_that_holds_entries(filled):
    """Without the entry of "secret-sub", its content folder (notes.txt, big.bin,
    empty) is an orphan that --repair keeps; the one of sub/empty, empty, goes."""
    sub_dir_file = dir_files(filled.store)[0]
    content_folders = set((filled.store / "d").glob("*/*"))
    shutil.rmtree(sub_dir_file.parent)
    r = fsck(filled)
    assert r.returncode == EXIT_PROBLEMS, r.stdout
    orphans = [l for l in problem_lines(r) if "orphaned content folder" in l]
    assert len(orphans) == 2 and sum("holds no entries" in l for l in orphans) == 1, r.stdout
    r = fsck(filled, "--repair", "--yes")
    assert r.returncode == EXIT_PROBLEMS, r.stdout
    assert "2 problems, 1 repaired" in r.stdout
    left = set((filled.store / "d").glob("*/*"))
    assert len(content_folders - left) == 1
    assert big_object(filled.store).parent in left


def test_fsck_exit_codes_for_password_and_not_a_vault(filled, tmp_path):
    wrong = write_password(tmp_path / "wrong", "wrong")
    assert fsck(filled, password_file=wrong).returncode == EXIT_PASSWORD
    (tmp_path / "empty").mkdir()
    r = run_umbrafs("fsck", "--password-file", filled.password_file, tmp_path / "empty")
    assert r.returncode == EXIT_INVALID, r.stderr
    assert run_umbrafs("fsck").returncode == 2
    assert run_umbrafs("fsck", "--yes", filled.store).returncode == 2


def test_fsck_progress_bar_on_a_terminal(filled):
    """stderr a terminal: a progress bar there, problems still one line each on stdout."""
    flip_byte(big_object(filled.store), HEADER + 5)
    leader, follower = pty.openpty()
    proc = subprocess.Popen([UMBRAFS, "fsck", "--password-file", str(filled.password_file),
                             str(filled.store)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=follower)
    os.close(follower)
    out = proc.communicate(timeout=60)[0].decode()
    tty = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        tty += chunk
    os.close(leader)
    assert proc.returncode == EXIT_PROBLEMS, out
    assert b"\r[" in tty and b"%" in tty, tty
    assert len(problem_lines(out)) == 1, out


# ---------------------------------------------------------------- mounting


NOBODY = 65534


def mounted_at(mnt):
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == str(mnt) for line in f)


def as_nobody(*args):
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *args]


@pytest.fixture
def fuse_for_users():
    """/dev/fuse open to every user, as udev makes it on a desktop (some
    machines here have it 0600); the mode is restored afterwards."""
    mode = os.stat("/dev/fuse").st_mode & 0o777
    os.chmod("/dev/fuse", 0o666)
    yield
    os.chmod("/dev/fuse", mode)


def test_mount_daemon_is_not_dumpable(filled, fuse_for_users):
    """The daemon holds plaintext: no core dump, no ptrace by its user. A
    non-dumpable process's /proc/PID files belong to root, so the daemon runs as
    nobody here (as root, its /proc files would be root's anyway)."""
    home = pathlib.Path(tempfile.mkdtemp(prefix="umbrafs-nobody-"))
    try:
        home.chmod(0o755)
        binary = home / "umbrafs"
        shutil.copy(UMBRAFS, binary)
        store, mnt, pw = home / "store", home / "mnt", home / "password"
        copy_vault(filled.store, store)
        mnt.mkdir()
        write_password(pw)
        for path in [store, *store.rglob("*"), mnt, pw]:
            os.chown(path, NOBODY, NOBODY)
        proc = subprocess.Popen(as_nobody(binary, "mount", "-f", "--password-file", pw, store,
                                          mnt), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 10
            while not mounted_at(mnt):
                assert proc.poll() is None, proc.stdout.read()
                assert time.monotonic() < deadline, "not mounted after 10 s"
                time.sleep(0.05)
            status = pathlib.Path(f"/proc/{proc.pid}/status").read_text()
            assert f"Uid:\t{NOBODY}\t" in status, status
            assert os.stat(f"/proc/{proc.pid}/mem").st_uid == 0
        finally:
            subprocess.run(as_nobody("fusermount3", "-u", mnt), check=False)
            out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out
    finally:
        subprocess.run(["fusermount3", "-u", "-z", home / "mnt"], capture_output=True)
        shutil.rmtree(home)


def test_ro_mount_refuses_writes(filled, mount_factory):
    m = mount_factory(filled, options=("ro",))
    assert (m.mnt / "secret-sub" / "secret-notes.txt").read_bytes() == b"hello\n"
    for action in (lambda: (m.mnt / "new.txt").write_bytes(b"x"),
                   lambda: (m.mnt / "secret-sub" / "secret-notes.txt").write_bytes(b"x"),
                   lambda: (m.mnt / "newdir").mkdir(),
                   lambda: (m.mnt / "secret-sub" / "secret-notes.txt").unlink(),
                   lambda: os.rename(m.mnt / "secret-link", m.mnt / "secret-link2")):
        with pytest.raises(OSError) as e:
            action()
        assert e.value.errno == errno.EROFS
    before = digests(filled.store)
    m.stop()
    assert digests(filled.store) == before


def test_idle_unmount(filled, mount_factory):
    m = mount_factory(filled, options=("default_permissions", "idle=2s"))
    proc = m.proc
    # activity keeps it mounted past the idle time
    for _ in range(8):
        os.listdir(m.mnt / "secret-sub")
        time.sleep(0.5)
    assert is_mounted(m.mnt)
    assert wait_until(lambda: not is_mounted(m.mnt), 10), "not unmounted when idle"
    assert proc.wait(timeout=10) == 0
    assert m.wait_for_log("unmounted", "without use")


def test_idle_unmount_waits_for_open_files(filled, mount_factory):
    m = mount_factory(filled, options=("idle=1s",))
    with open(m.mnt / "secret-sub" / "secret-notes.txt", "rb") as f:
        time.sleep(4)
        assert is_mounted(m.mnt), "unmounted with a file open:\n" + m.log_text()
        assert f.read() == b"hello\n"
    assert wait_until(lambda: not is_mounted(m.mnt), 10), m.log_text()


def test_idle_busy_is_a_debug_line_with_v(filled, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    proc = subprocess.Popen([UMBRAFS, "mount", "-f", "-v", "-o", "idle=1s", "--password-file",
                             str(filled.password_file), str(filled.store), str(mnt)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert wait_until(lambda: os.path.ismount(mnt), 10)
        with open(mnt / "secret-sub" / "secret-notes.txt", "rb"):
            time.sleep(3.5)
        assert wait_until(lambda: not is_mounted(mnt), 10)
        err = proc.communicate(timeout=10)[1]
    finally:
        if os.path.ismount(mnt):
            unmount(mnt)
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "umbrafs: debug: idle, but cannot unmount" in err, err
    assert "umbrafs: info: unmounted" in err, err


@pytest.mark.parametrize("options, message", [
    ("idle=soon", "idle=soon"), ("idle=0", "idle=0"), ("passfile=", "passfile="),
    ("passfile=/a,extpass=b", "not both"),
])
def test_bad_mount_options_are_usage_errors(vault, tmp_path, options, message):
    (tmp_path / "m").mkdir()
    r = run_umbrafs("mount", "-f", "-o", options, vault.store, tmp_path / "m")
    assert r.returncode == 2, r.stderr
    assert message in r.stderr
    assert not os.path.ismount(tmp_path / "m")


def test_two_password_sources_are_a_usage_error(vault, tmp_path):
    (tmp_path / "m").mkdir()
    r = run_umbrafs("mount", "--password-file", vault.password_file, "-o",
                    f"passfile={vault.password_file}", vault.store, tmp_path / "m")
    assert r.returncode == 2, r.stderr


def test_mount_fuse3_calling_convention(filled, tmp_path):
    """mount.fuse3 runs "umbrafs STORE MOUNTPOINT -o OPTS" (fstab options included)."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = run_umbrafs(filled.store, mnt, "-o",
                    f"rw,nosuid,nodev,passfile={filled.password_file},idle=1h,x-gvfs-hide")
    try:
        assert r.returncode == 0, r.stderr
        assert os.path.ismount(mnt)
        assert (mnt / "secret-sub" / "secret-notes.txt").read_bytes() == b"hello\n"
        line = next(l for l in mounts().splitlines() if f" {mnt} " in l)
        assert f"{filled.store} {mnt} fuse.umbrafs " in line and "nosuid" in line
    finally:
        unmount(mnt)


def test_mount_umbrafs_helper(filled, tmp_path):
    """mount(8) runs /sbin/mount.umbrafs SOURCE DIR [-sfnv] [-o OPTS] [-t TYPE]."""
    helper = tmp_path / "mount.umbrafs"
    helper.symlink_to(UMBRAFS)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    opts = f"ro,noauto,user,_netdev,nofail,passfile={filled.password_file}"
    fake = subprocess.run([helper, filled.store, mnt, "-f", "-o", opts], capture_output=True,
                          text=True, timeout=30)
    assert fake.returncode == 0 and not os.path.ismount(mnt), fake.stderr
    r = subprocess.run([helper, filled.store, mnt, "-n", "-s", "-o", opts, "-t", "umbrafs"],
                       capture_output=True, text=True, timeout=30)
    try:
        assert r.returncode == 0, r.stderr
        assert (mnt / "secret-sub" / "secret-notes.txt").read_bytes() == b"hello\n"
        with pytest.raises(OSError) as e:
            (mnt / "x").write_bytes(b"x")
        assert e.value.errno == errno.EROFS
    finally:
        unmount(mnt)


def in_namespace(script, timeout=60):
    """Run a shell script in a private mount namespace (so that /usr/local/bin
    can hold umbrafs as if installed); its output, as text."""
    if not shutil.which("unshare"):
        pytest.skip("unshare (util-linux) is missing")
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-euc", script],
                       capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r.stdout


INSTALL_UMBRAFS = f"""
mkdir -p "$T/bin"
ln -sf "{UMBRAFS}" "$T/bin/umbrafs"
mount --bind "$T/bin" /usr/local/bin
"""


def test_fstab_mount_all(vault, mount_factory, tmp_path):
    store = tmp_path / "my vault"  # a space: \\040 in fstab
    shutil.move(vault.store, store)
    vault.store = store
    mnt, mnt_ro = tmp_path / "mnt", tmp_path / "mnt-ro"
    mnt.mkdir()
    mnt_ro.mkdir()
    fstab = tmp_path / "fstab"
    fstab_store = str(store).replace(" ", "\\040")
    fstab.write_text(
        "# a temporary fstab\n"
        f"{fstab_store} {mnt} fuse.umbrafs "
        f"passfile={vault.password_file},nofail,_netdev,idle=1h,x-systemd.mount-timeout=30 0 0\n"
        f"{fstab_store} {mnt_ro} fuse.umbrafs "
        f"ro,extpass=cat\\040{vault.password_file},nofail 0 0\n")
    out = in_namespace(INSTALL_UMBRAFS.replace("$T", str(tmp_path)) + f"""
mount -a -T "{fstab}"
grep -F " {mnt} fuse.umbrafs " /proc/self/mounts >/dev/null && echo rw-mounted
grep -F " {mnt_ro} fuse.umbrafs ro," /proc/self/mounts >/dev/null && echo ro-mounted
echo "written through fstab" > "{mnt}/from-fstab.txt"
ls "{mnt_ro}"
if echo x > "{mnt_ro}/refused.txt" 2>/dev/null; then echo ro-writable; fi
umount "{mnt}"
umount "{mnt_ro}"
""")
    assert "rw-mounted" in out and "ro-mounted" in out, out
    assert "ro-writable" not in out
    assert not os.path.ismount(mnt)
    # the daemons of the namespace exit once unmounted
    assert wait_until(lambda: not processes_with_argument(str(mnt))
                      and not processes_with_argument(str(mnt_ro)), 10)
    m = mount_factory(vault)
    assert (m.mnt / "from-fstab.txt").read_text() == "written through fstab\n"
    assert not (m.mnt / "refused.txt").exists()


def test_mount_t_fuse_umbrafs(filled, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    out = in_namespace(INSTALL_UMBRAFS.replace("$T", str(tmp_path)) + f"""
mount -t fuse.umbrafs -o ro,passfile={filled.password_file} "{filled.store}" "{mnt}"
cat "{mnt}/secret-sub/secret-notes.txt"
umount "{mnt}"
""")
    assert out == "hello\n"


# ---------------------------------------------------------------- logs


@pytest.fixture
def syslog_socket(tmp_path):
    """A datagram socket standing in for /dev/log."""
    path = tmp_path / "log.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(path))
    s.settimeout(0.2)
    yield s, path
    s.close()


def received(sock):
    lines = []
    while True:
        try:
            lines.append(sock.recv(65536).decode(errors="replace"))
        except (socket.timeout, BlockingIOError):
            return lines


def test_background_mount_logs_to_syslog_with_the_vault_name(filled, tmp_path, syslog_socket):
    """/dev/log is replaced in a private namespace; a damaged chunk is logged
    with the object's store path, never with the file's name."""
    sock, sock_path = syslog_socket
    flip_byte(big_object(filled.store), HEADER + 7)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    devs = " ".join(n for n in ("null", "zero", "full", "random", "urandom", "tty", "fuse")
                    if os.path.exists(f"/dev/{n}"))
    out = in_namespace(f"""
D="{tmp_path}/dev"
mkdir -p "$D"
for n in {devs}; do touch "$D/$n"; mount --bind "/dev/$n" "$D/$n"; done
ln -s "{sock_path}" "$D/log"
mount --rbind "$D" /dev
"{UMBRAFS}" mount --password-file "{filled.password_file}" "{filled.store}" "{mnt}"
cat "{mnt}/secret-sub/secret-notes.txt"
if cat "{mnt}/secret-sub/secret-big.bin" >/dev/null 2>&1; then echo read-damaged; fi
fusermount3 -u "{mnt}"
""")
    assert out == "hello\n"
    lines = []

    def daemon_said_unmounted():
        lines.extend(received(sock))
        return any("unmounted" in l for l in lines)

    assert wait_until(daemon_said_unmounted, 10), lines
    ident = f"umbrafs[{filled.store}]"
    assert any(ident in l and "mounted" in l for l in lines), lines
    bad = [l for l in lines if "authentication failed" in l]
    assert bad, lines
    rel = str(big_object(filled.store).relative_to(filled.store))
    assert any(rel in l for l in bad), bad
    for line in lines:
        assert SECRET not in line, line
        assert PASSWORD not in line


def test_foreground_mount_logs_to_stderr(filled, mount_factory):
    m = mount_factory(filled)
    assert m.wait_for_log("umbrafs: info: mounted", str(filled.store))
    assert not m.wait_for_log("network or FUSE", timeout=0)


def test_vault_inside_a_fuse_mount(filled, mount_factory, tmp_path):
    """A store on a network or FUSE file system (here: inside another umbrafs
    mount), where any request may wait: the mount says so (its requests are
    all served by worker threads), and the vault works."""
    outer = mount_factory(filled)
    inner_vault = init_vault(outer.mnt / "inner-store", write_password(tmp_path / "inner-pw"))
    inner = mount_factory(inner_vault)
    try:
        assert inner.wait_for_log("mounted", "on a network or FUSE file system"), \
            inner.log_text()
        (inner.mnt / "folder").mkdir()
        (inner.mnt / "folder" / "a.txt").write_bytes(b"stacked")
        assert (inner.mnt / "folder" / "a.txt").read_bytes() == b"stacked"
    finally:
        inner.stop()  # before the mount it lies in



def test_growing_truncate_holds_up_no_other_request(filled, mount_factory):
    """truncate -s 1G encrypts a gigabyte of zeros (the format has no holes):
    meanwhile the mount answers a stat, a listing and a small write. They
    would wait for it if the thread that reads requests from the kernel
    served it to the end (a quick kind of request that turned out slow)."""
    m = mount_factory(filled)
    (m.mnt / "grow.bin").write_bytes(b"start")
    before = set(filled.store.rglob("*.c9r"))
    grower = subprocess.Popen(["truncate", "-s", "1G", str(m.mnt / "grow.bin")])
    try:
        deadline = time.monotonic() + 30
        grown = lambda: any(p.is_file() and p.stat().st_size > 1 << 20
                            for p in filled.store.rglob("*.c9r"))
        while not grown() and grower.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert grower.poll() is None, "the truncate ended before the test could look"
        assert os.stat(m.mnt / "secret-sub" / "secret-notes.txt").st_size == 6
        assert "grow.bin" in os.listdir(m.mnt)
        (m.mnt / "during.txt").write_bytes(b"during")
        assert grower.poll() is None, "the other requests waited for the truncate"
    finally:
        assert grower.wait(timeout=300) == 0
    assert os.path.getsize(m.mnt / "grow.bin") == 1 << 30
    assert set(filled.store.rglob("*.c9r")) > before


def make_dir_seen_in_store(m, store, name):
    """mkdir name through mount m: (its entry's dir.c9r, its content folder)."""
    entries = set(store.rglob("dir.c9r"))
    folders = set((store / "d").glob("*/*"))
    os.mkdir(m.mnt / name)
    (dir_file,) = set(store.rglob("dir.c9r")) - entries
    (content,) = set((store / "d").glob("*/*")) - folders
    return dir_file, content


def test_fsck_repairs_what_an_interrupted_mkdir_or_rmdir_left(filled, mount_factory):
    """mkdir cut before dir.c9r leaves an incomplete entry (and an empty orphan);
    rmdir cut after the content folder leaves an entry without it. umbrafs copes
    with both (the first is absent, the second an empty directory); fsck reports
    them and --repair removes the first and makes the second's folder again."""
    store = filled.store
    m = mount_factory(filled)
    cut_mkdir, _ = make_dir_seen_in_store(m, store, "cut-mkdir")
    _, cut_rmdir_content = make_dir_seen_in_store(m, store, "cut-rmdir")
    m.stop()
    cut_mkdir.unlink()
    shutil.rmtree(cut_rmdir_content)
    m.start()
    listing = os.listdir(m.mnt)
    assert "cut-mkdir" not in listing and "cut-rmdir" in listing
    assert os.listdir(m.mnt / "cut-rmdir") == []
    m.stop()

    r = fsck(filled)
    assert r.returncode == EXIT_PROBLEMS
    lines = problem_lines(r)
    assert any("incomplete entry" in line for line in lines), r.stdout
    assert any("interrupted rmdir" in line for line in lines), r.stdout
    r = fsck(filled, "--repair", "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    assert fsck(filled).returncode == 0
    walk(store, filled.password_file).assert_clean()
    m.start()
    assert os.listdir(m.mnt / "cut-rmdir") == []
    os.mkdir(m.mnt / "cut-mkdir")
    m.stop()
