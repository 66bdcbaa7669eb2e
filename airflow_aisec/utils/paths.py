"""Where airflow-aisec keeps local files by default (example DAGs, demo, reference profiles)."""

from __future__ import annotations

import os
from pathlib import Path

#: Environment variable naming the base directory for local aisec data.
DATA_DIR_ENV = "AISEC_DATA_DIR"


def data_dir(*parts: str) -> Path:
    """``$AISEC_DATA_DIR`` (else ``$AIRFLOW_HOME/aisec``, else ``~/airflow/aisec``) joined with ``parts``.

    Cheap (no I/O): safe to call at DAG parse time.
    """
    base = os.environ.get(DATA_DIR_ENV)
    if not base:
        home = os.environ.get("AIRFLOW_HOME") or os.path.join(os.path.expanduser("~"), "airflow")
        base = os.path.join(home, "aisec")
    return Path(base, *parts)


def repo_data_file(*parts: str) -> Path:
    """A file bundled in the repository's ``data/`` folder (example DAGs and the demo use these)."""
    return Path(__file__).resolve().parents[2].joinpath("data", *parts)
