"""The example DAG dags/aisec_drift_monitoring.py runs as-is and its report shows the drift."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.airflow_helpers import run_dag, task_states, xcom

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "aisec_drift_monitoring.py"


@pytest.mark.integration
def test_drift_monitoring_dag_stays_green_and_reports_drift(airflow_db):
    spec = importlib.util.spec_from_file_location("aisec_drift_monitoring_dag", DAG_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dag = module.dag
    run = run_dag(dag)
    assert set(task_states(run).values()) == {"success"}
    report = xcom(run, "drift_test")
    assert report["status"] == "warn"  # on_drift="warn": dataset drift reported, task green
    assert report["summary"].startswith("[on_drift=warn] dataset drift")
    drifted = set(report["details"]["dataset"]["drifted_features"])
    assert {"age", "income"} <= drifted
    assert "score" not in drifted
    assert report["details"]["profile"]["digest"] == xcom(run, "build_reference_profile", key="profile_digest")
    page = (module.BASE / "drift_report.html").read_text()
    assert page.count("<svg") >= 6
    assert "WARN — [on_drift=warn] dataset drift" in page
