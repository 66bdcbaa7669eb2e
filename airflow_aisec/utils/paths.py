"""Where airflow-aisec keeps local files by default (example DAGs, demo, reference profiles)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

#: Deprecated environment variable naming the base directory (the ``[aisec] data_dir`` option replaces it).
DATA_DIR_ENV = "AISEC_DATA_DIR"


def data_dir(*parts: str) -> Path:
    """The ``[aisec] data_dir`` option joined with ``parts``.

    Unset: the deprecated ``$AISEC_DATA_DIR``, else ``$AIRFLOW_HOME/aisec``, else ``~/airflow/aisec``.
    Cheap (no I/O): safe to call at DAG parse time. Airflow's configuration is consulted only when the
    process has already loaded it (a DAG file, a task); the ``aisec`` command reads the environment
    (``AIRFLOW__AISEC__DATA_DIR``, then ``AISEC_DATA_DIR``).
    """
    base = os.environ.get("AIRFLOW__AISEC__DATA_DIR")
    if not base and ("airflow.sdk.configuration" in sys.modules or "airflow.configuration" in sys.modules):
        from airflow_aisec import settings

        base = settings.get("data_dir")
    base = base or os.environ.get(DATA_DIR_ENV)
    if not base:
        home = os.environ.get("AIRFLOW_HOME") or os.path.join(os.path.expanduser("~"), "airflow")
        base = os.path.join(home, "aisec")
    return Path(base, *parts)


def repo_data_file(*parts: str) -> Path:
    """A file bundled in the repository's ``data/`` folder (example DAGs and the demo use these)."""
    return Path(__file__).resolve().parents[2].joinpath("data", *parts)
