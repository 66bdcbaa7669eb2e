"""The real OSV snapshot for supply-chain tests: the shared copy (``../shared/osv``) or the bundled one.

``tests/conftest.py``'s ``shared_osv_zip`` looks beside the repository, which a git worktree elsewhere
does not have; the repository bundles the same file under ``data/osv/`` (same SHA-256).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_aisec.utils.paths import repo_data_file

SNAPSHOT_NAME = "pypa-advisory-db-2024-10-10.zip"
SNAPSHOT_SHA256 = "669f38bb72babfd188b7ec199904c5ba0f6e92646593ba140f09b1d958ffee25"


def snapshot_path() -> Path:
    shared = Path(__file__).resolve().parents[2] / "shared" / "osv" / SNAPSHOT_NAME
    bundled = repo_data_file("osv", SNAPSHOT_NAME)
    for candidate in (shared, bundled):
        if candidate.is_file():
            return candidate
    pytest.fail(f"the OSV snapshot is missing: neither {shared} nor {bundled} exists")
