"""What the stress tests share with the end-to-end tests: tests/e2e/conftest.py,
loaded once as the module `e2e` (it cannot be imported by its own name, which
pytest gives to this folder's conftest.py)."""
import errno
import importlib.util
import os
import pathlib
import sys

E2E_CONFTEST = pathlib.Path(__file__).resolve().parent.parent / "e2e" / "conftest.py"
_NAME = "umbrafs_e2e_conftest"


def _load():
    if _NAME in sys.modules:
        return sys.modules[_NAME]
    sys.path.insert(0, str(E2E_CONFTEST.parent))   # for the modules it imports itself
    spec = importlib.util.spec_from_file_location(_NAME, E2E_CONFTEST)
    module = importlib.util.module_from_spec(spec)
    sys.modules[_NAME] = module
    spec.loader.exec_module(module)
    return module


e2e = _load()


CHUNK = 32768


def read_chunks(path):
    """[(offset, bytes or None for EIO)] of a file read a chunk at a time, or
    None when opening it fails with EIO."""
    out = []
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as e:
        if e.errno != errno.EIO:
            raise
        return None
    try:
        off = 0
        while True:
            try:
                data = os.pread(fd, CHUNK, off)
            except OSError as e:
                if e.errno != errno.EIO:
                    raise
                data = None
            if data == b"":
                return out
            out.append((off, data))
            off += CHUNK
            if data is not None and len(data) < CHUNK:
                return out
    finally:
        os.close(fd)
