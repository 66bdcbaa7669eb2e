"""Demo helpers of the example DAGs: data preparation, stand-in model server, tamper drills, checks.

Not part of the ``airflow-aisec`` wheel: the recipes in the DAGs folder show the security chain a user
copies; everything that only exists to make them run on a laptop (bundled datasets, a model trained
on the spot, a loopback model server, the drills that tamper with data and the tasks asserting the
drills were caught) lives here.

Why a package *inside* the DAGs folder: Airflow ships the DAGs folder (the DAG bundle) to every
process that parses or runs a DAG and puts it on ``sys.path`` there — the dag-processor, each task
on a Celery or Kubernetes worker, ``airflow dags test`` — so ``import aisec_demo`` works wherever the
DAGs do, with no extra path entry or install step. ``.airflowignore`` keeps the dag-processor from
parsing it for DAGs. Heavy libraries are imported inside functions only (DAG parse time stays cheap).

Every file one task writes and another reads lives under ``$AISEC_DATA_DIR`` (see
:func:`airflow_aisec.utils.paths.data_dir`): with workers on separate hosts it must be shared storage.
"""

from __future__ import annotations

from pathlib import Path

#: the repository's bundled data (OSV snapshot, IAM policies, requirement pins) next to the DAGs folder
REPO_DATA = Path(__file__).resolve().parents[2] / "data"


def data_file(*parts: str) -> str:
    """A file bundled in the repository's ``data/`` folder, as a string path."""
    return str(REPO_DATA.joinpath(*parts))


def run_dir_name(run_id: str) -> str:
    """A directory name for a run id (``:`` and ``+`` are not portable in paths); the Jinja form of the
    same mapping is :data:`RUN_DIR_TEMPLATE`."""
    return run_id.replace(":", "-").replace("+", "_").replace("/", "_")


#: :func:`run_dir_name` as a Jinja expression, for templated operator fields
RUN_DIR_TEMPLATE = "{{ run_id | replace(':', '-') | replace('+', '_') | replace('/', '_') }}"
