"""Fixtures of the stress tests (fsx, crash, tamper): those of the end-to-end
tests, taken from tests/e2e/conftest.py (see stresslib.py), with its `stores`
marker: a test marked pytest.mark.stores("local", "webdav", "s3") runs once
per store (UMBRAFS_E2E_STORES selects them).

Environment: as tests/e2e (UMBRAFS, UMBRAFS_WALK, UMBRAFS_E2E_STORES), and the
knobs of each test file (UMBRAFS_FSX_*, UMBRAFS_CRASH_RUNS, UMBRAFS_TAMPER_*).
Run: /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/stress
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from stresslib import e2e  # noqa: E402

# the e2e hooks (UMBRAFS / UMBRAFS_WALK checks, one test per store) and fixtures
pytest_configure = e2e.pytest_configure
pytest_generate_tests = e2e.pytest_generate_tests
pytest_collection_modifyitems = e2e.pytest_collection_modifyitems
server_pool = e2e.server_pool
store_kind = e2e.store_kind
new_store = e2e.new_store
password_file = e2e.password_file
vault = e2e.vault
mount_factory = e2e.mount_factory
