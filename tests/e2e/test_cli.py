"""The command line: help and version, usage errors, unreachable remote stores,
init's refusals, password sources, mount errors, and info."""
import os
import pathlib
import subprocess
import time

import pytest

from conftest import UMBRAFS, init_vault, needs_umbrafs, run_umbrafs, walk

pytestmark = needs_umbrafs


@pytest.mark.parametrize("flag", ["--help", "-h", "--version", "-V"])
def test_help_and_version_exit_0(flag):
    r = run_umbrafs(flag)
    assert r.returncode == 0, r.stderr
    out = r.stdout + r.stderr
    if flag in ("--version", "-V"):
        assert "0.1.0" in out
    else:
        for command in ("init", "mount", "info"):
            assert command in out


@pytest.mark.parametrize("args", [[], ["frobnicate"], ["mount"], ["init"],
                                  ["mount", "--no-such-option", "a", "b"],
                                  ["init", "--scrypt-cost", "1000", "x"]],
                         ids=["nothing", "unknown-command", "mount-no-args", "init-no-args",
                              "unknown-option", "cost-not-power-of-two"])
def test_usage_errors_exit_2(args, tmp_path):
    r = run_umbrafs(*args, cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.startswith("umbrafs: ") or "usage" in r.stderr.lower()
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("url", ["webdav://user:secret-pw@127.0.0.1:1/vault",
                                 "webdavs://user:secret-pw@127.0.0.1:1/v", "s3://bucket/prefix"])
@pytest.mark.parametrize("command", ["info", "init", "mount"])
def test_unreachable_remote_store_is_exit_1(url, command, tmp_path, password_file):
    """Nothing listens on port 1: a clear one-line refusal naming the store,
    never the password of the URL, and no mount."""
    env = dict(os.environ, UMBRAFS_HTTP_TRIES="1", XDG_CACHE_HOME=str(tmp_path / "xdg"),
               AWS_ENDPOINT_URL="http://127.0.0.1:1", AWS_ACCESS_KEY_ID="key",
               AWS_SECRET_ACCESS_KEY="secret-key", AWS_REGION="us-east-1")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    args = {"info": ["info", url],
            "init": ["init", "--scrypt-cost", "1024", "--password-file", password_file, url],
            "mount": ["mount", "-f", "--password-file", password_file, "--cache-dir",
                      tmp_path / "cache", url, mnt]}[command]
    r = run_umbrafs(*args, env=env)
    assert r.returncode == 1, r.stderr
    assert r.stderr.startswith("umbrafs: ")
    last = r.stderr.strip().splitlines()[-1]
    where = url.split("//")[1].split("@")[-1]  # host/path or bucket/prefix
    assert last.startswith("umbrafs: ") and where in last, r.stderr
    assert "secret-pw" not in r.stderr and "secret-key" not in r.stderr
    assert not os.path.ismount(mnt)


def test_init_makes_a_clean_vault(tmp_path, password_file):
    store = tmp_path / "vault"  # init creates the folder
    init_vault(store, password_file)
    assert sorted(os.listdir(store)) == ["d", "masterkey.cryptomator", "vault.cryptomator"]
    result = walk(store, password_file)
    result.assert_clean()
    assert result.tree == {}
    r = run_umbrafs("info", f"file://{store}")
    assert r.returncode == 0, r.stderr
    assert "scrypt: N=1024 r=8" in r.stdout
    assert "directories: 1" in r.stdout and "files: 0" in r.stdout


def test_init_refuses_existing_vault(tmp_path, password_file):
    store = tmp_path / "store"
    init_vault(store, password_file)
    before = (store / "masterkey.cryptomator").read_bytes()
    r = run_umbrafs("init", "--scrypt-cost", "1024", "--password-file", password_file, store)
    assert (store / "masterkey.cryptomator").read_bytes() == before
    assert r.returncode == 1, r.stderr
    assert r.stderr.startswith("umbrafs: ")


def test_init_refuses_non_empty_folder(tmp_path, password_file):
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    r = run_umbrafs("init", "--scrypt-cost", "1024", "--password-file", password_file, other)
    assert os.listdir(other) == ["keep.txt"]
    assert r.returncode == 1, r.stderr
    assert r.stderr.startswith("umbrafs: ")


def test_init_refuses_a_folder_in_use_before_asking_for_a_password(tmp_path):
    """Without any password source and no terminal, the answer is still about
    the folder, not about the missing password (nobody is asked for nothing)."""
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    env = {k: v for k, v in os.environ.items() if k != "UMBRAFS_PASSWORD"}
    r = run_umbrafs("init", other, env=env, start_new_session=True)
    assert r.returncode == 1, r.stderr
    assert "is not empty" in r.stderr and "password" not in r.stderr, r.stderr


@pytest.mark.parametrize("source", ["extpass", "env"])
def test_password_sources(vault, tmp_path, source):
    """--extpass and UMBRAFS_PASSWORD unlock the vault made with --password-file."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    env = dict(os.environ)
    args = [UMBRAFS, "mount", "-f"]
    if source == "extpass":
        args += ["--extpass", f"cat '{vault.password_file}'"]
    else:
        env["UMBRAFS_PASSWORD"] = vault.password_file.read_text()
    proc = subprocess.Popen(args + [str(vault.store), str(mnt)], env=env,
                            stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(200):
            if os.path.ismount(mnt) or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert os.path.ismount(mnt), proc.stderr.read() if proc.poll() is not None else ""
    finally:
        subprocess.run(["fusermount3", "-u", str(mnt)], capture_output=True)
        assert proc.wait(timeout=30) == 0


def test_mountpoint_busy(vault, mount_factory, tmp_path):
    m = mount_factory(vault)
    (m.mnt / "f").write_bytes(b"first mount")
    r = run_umbrafs("mount", "-f", "--password-file", vault.password_file, vault.store,
                    m.mnt, timeout=30)
    assert r.returncode == 1, r.stderr
    assert r.stderr.startswith("umbrafs: ") and str(m.mnt) in r.stderr
    assert m.alive() and (m.mnt / "f").read_bytes() == b"first mount"


def test_missing_mountpoint(vault, tmp_path):
    r = run_umbrafs("mount", "-f", "--password-file", vault.password_file, vault.store,
                    tmp_path / "no-such-dir", timeout=30)
    assert r.returncode == 1, r.stderr
    assert r.stderr.startswith("umbrafs: ") and "no-such-dir" in r.stderr


def test_missing_store(tmp_path, password_file):
    (tmp_path / "mnt").mkdir()
    r = run_umbrafs("mount", "-f", "--password-file", password_file, tmp_path / "no-store",
                    tmp_path / "mnt", timeout=30)
    assert r.returncode in (1, 4), r.stderr
    assert "no-store" in r.stderr
    assert not os.path.ismount(tmp_path / "mnt")


def test_daemon_mode_mounts_and_unmounts(vault, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = run_umbrafs("mount", "--password-file", vault.password_file, vault.store, mnt,
                    timeout=30)
    try:
        assert r.returncode == 0, r.stderr
        assert os.path.ismount(mnt)
        (mnt / "f").write_bytes(b"daemon")
        assert (mnt / "f").read_bytes() == b"daemon"
    finally:
        subprocess.run(["fusermount3", "-u", str(mnt)], capture_output=True)
    for _ in range(100):  # the daemon writes back and exits
        if walk(vault.store, vault.password_file).tree.get("f"):
            break
        time.sleep(0.05)
    result = walk(vault.store, vault.password_file)
    result.assert_clean()
    assert set(result.tree) == {"f"}


def test_info_needs_no_password(vault):
    r = subprocess.run([UMBRAFS, "info", str(vault.store)], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=30,
                       env={k: v for k, v in os.environ.items() if k != "UMBRAFS_PASSWORD"})
    assert r.returncode == 0, r.stderr
    assert "vault format: 8" in r.stdout and "cipher combo: SIV_GCM" in r.stdout
    assert f"store: {vault.store} (local)" in r.stdout


def test_info_of_non_vault(tmp_path):
    r = run_umbrafs("info", tmp_path)
    assert r.returncode == 4, r.stderr
    assert r.stderr.startswith("umbrafs: ")


COMPLETION = pathlib.Path(__file__).resolve().parents[2] / "completion" / "umbrafs.bash"


def complete(*words):
    """What bash completion offers for the command line `umbrafs WORDS...`
    (the last word being completed)."""
    script = f"""
source /usr/share/bash-completion/bash_completion
source {COMPLETION}
COMP_WORDS=(umbrafs {' '.join(repr(w) for w in words)})
COMP_CWORD={len(words)}
COMP_LINE="umbrafs {' '.join(words)}"
COMP_POINT=${{#COMP_LINE}}
_umbrafs
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    r = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return set(r.stdout.split())


@pytest.mark.skipif(not os.path.exists("/usr/share/bash-completion/bash_completion"),
                    reason="bash-completion is not installed")
def test_bash_completion():
    assert {"init", "mount"} <= complete("")
    assert "mount" in complete("--cache-dir", "/tmp", "mo")      # the value is no command
    assert {"--cache-dir", "--cache-size", "--insecure", "--foreground"} <= complete("mount", "--")
    assert "--scrypt-cost" in complete("passwd", "--sc")
    assert "idle=" in complete("mount", "-o", "id")
