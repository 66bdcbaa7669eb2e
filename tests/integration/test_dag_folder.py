"""Every example DAG in ``dags/`` parses cleanly and cheaply (no heavy import at parse time)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import DAGS_FOLDER, REPO_ROOT

DAG_FILES = sorted(p for p in DAGS_FOLDER.glob("*.py") if not p.name.startswith("_"))
HEAVY = ("pandas", "scipy", "numpy", "pyarrow", "great_expectations", "boto3", "pip_audit", "sklearn")


def test_dag_folder_has_examples():
    assert "aisec_artifact_integrity.py" in [p.name for p in DAG_FILES]


def test_dagbag_has_no_import_errors(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    assert bag.import_errors == {}
    assert {p.stem for p in DAG_FILES} <= set(bag.dag_ids)  # each file's DAG id is its file name
    for dag_id in bag.dag_ids:
        assert "aisec" in bag.get_dag(dag_id).tags


def _heavy_after(code: str) -> set[str]:
    probe = code + f"\nimport json, sys\nprint(json.dumps(sorted(h for h in {HEAVY!r} if h in sys.modules)))\n"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO_ROOT, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def airflow_baseline() -> set[str]:
    """What Airflow itself imports for any DAG with an Asset (providers-amazon's s3 asset handler
    pulls in boto3 when the ``aws`` extra is installed): not ours to avoid, so not counted."""
    return _heavy_after("from airflow.sdk import Asset, dag, task, chain\nAsset('aisec://baseline')\nAsset('s3://b/k')")


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.stem)
def test_dag_file_parses_without_heavy_imports(dag_file, airflow_baseline):
    code = (
        f"import importlib.util, sys\nsys.path.append({str(DAGS_FOLDER)!r})\n"  # as Airflow does for the bundle
        f"spec = importlib.util.spec_from_file_location('dagfile', {str(dag_file)!r})\n"
        "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)\n"
    )
    assert _heavy_after(code) - airflow_baseline == set()


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)


def test_files_tasks_share_live_under_the_shared_storage_root(airflow_db):
    """Separate worker hosts: every absolute path a task is given is under $AISEC_DATA_DIR (shared storage),
    or read-only data shipped with the DAGs (the DAGs folder, the repository's data/ folder)."""
    import os

    from airflow.dag_processing.dagbag import DagBag

    shared = os.environ["AISEC_DATA_DIR"]
    read_only = (str(DAGS_FOLDER), str(REPO_ROOT / "data"))
    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    seen = 0
    for dag_id in bag.dag_ids:
        for t in bag.get_dag(dag_id).tasks:
            fields = [*t.template_fields, "op_args", "op_kwargs"]
            for value in _strings([getattr(t, f, None) for f in fields]):
                if value.startswith("/"):
                    seen += 1
                    ok = value.startswith(shared + "/") or value.startswith(read_only)
                    assert ok, f"{dag_id}.{t.task_id}: {value!r} is neither shared storage nor shipped data"
    assert seen > 30  # the check looked at the recipes' paths


def test_no_task_relies_on_a_process_another_task_started():
    """The stand-in endpoint lives inside the task that uses it; nothing is stopped by PID elsewhere."""
    sources = [*DAG_FILES, *sorted((DAGS_FOLDER / "aisec_demo").glob("*.py"))]
    users = [p.name for p in sources if p.name != "model_server.py" and "server_process" in p.read_text()]
    assert users == []
