"""ModelArtifactScanOperator under real Airflow (dag.test): report to XCom before failing."""

from __future__ import annotations

import json
import os
import pickle
from datetime import datetime

import pytest

from airflow_aisec.operators.modelscan import ModelArtifactScanOperator
from tests.airflow_helpers import run_dag, task_states, xcom


class _Payload:
    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_operator_passes_benign_and_fails_malicious(airflow_db, tmp_path):
    from airflow.sdk import DAG

    sentinel = tmp_path / "PWNED"
    (tmp_path / "good").mkdir()
    (tmp_path / "good" / "model.pkl").write_bytes(pickle.dumps({"coef": [0.5, 1.5]}))
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(_Payload(sentinel)))
    with DAG("test_modelscan_operator", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        ModelArtifactScanOperator(
            task_id="scan_good", paths=str(tmp_path / "good"), report_path=str(tmp_path / "good.json")
        )
        ModelArtifactScanOperator(task_id="scan_evil", paths=[str(tmp_path / "evil.pkl")])
    run = run_dag(dag)
    assert task_states(run) == {"scan_good": "success", "scan_evil": "failed"}
    good = xcom(run, "scan_good")
    assert good["status"] == "pass"
    assert json.loads((tmp_path / "good.json").read_text())["status"] == "pass"
    evil = xcom(run, "scan_evil")
    assert evil["status"] == "fail"
    assert evil["findings"][0]["severity"] == "critical"
    assert not sentinel.exists()


def test_constructor_validates():
    with pytest.raises(ValueError, match="needs `paths`"):
        ModelArtifactScanOperator(task_id="x", paths=[])
    with pytest.raises(TypeError, match="list of MODULE.NAME"):
        ModelArtifactScanOperator(task_id="x", paths="m.pkl", allow="mypkg.Model")
    op = ModelArtifactScanOperator(task_id="x", paths="m.pkl", allow=["a.B"])
    assert {"paths", "allow", "report_path"} <= set(op.template_fields)
