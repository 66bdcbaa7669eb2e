"""Test set-up shared by the whole suite.

An isolated ``AIRFLOW_HOME`` (SQLite) is created before anything imports Airflow; the metadata DB is
migrated once per test session, only when a test asks for the ``airflow_db`` fixture.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
DAGS_FOLDER = REPO_ROOT / "dags"
# The real PyPA advisory snapshot (CC-BY 4.0) is bundled under data/osv/ (same file as ../shared/osv/).
SHARED_OSV_ZIP = REPO_ROOT / "data" / "osv" / "pypa-advisory-db-2024-10-10.zip"

_AIRFLOW_HOME = os.environ.get("AISEC_TEST_AIRFLOW_HOME") or tempfile.mkdtemp(prefix="aisec-airflow-home-")
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS_FOLDER)
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
os.environ.setdefault("AISEC_DATA_DIR", os.path.join(_AIRFLOW_HOME, "aisec-data"))
# The example DAGs' demo helpers (dags/aisec_demo/) import from the DAGs folder, which Airflow's
# dag-processor, task runner and `airflow dags test` put on sys.path for the DAG bundle; do the same.
if str(DAGS_FOLDER) not in sys.path:
    sys.path.append(str(DAGS_FOLDER))


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    return Path(_AIRFLOW_HOME)


@pytest.fixture(scope="session")
def airflow_db(airflow_home: Path) -> Path:
    """A migrated SQLite metadata DB for the whole session (``dag.test()`` needs one)."""
    marker = airflow_home / ".aisec-migrated"
    if not marker.exists():
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            check=True,
            env=os.environ.copy(),
            stdout=subprocess.DEVNULL,
        )
        marker.touch()
    return airflow_home


@pytest.fixture(scope="session")
def shared_osv_zip() -> Path:
    if not SHARED_OSV_ZIP.is_file():
        pytest.fail(f"the bundled OSV snapshot is missing: {SHARED_OSV_ZIP}")
    return SHARED_OSV_ZIP
