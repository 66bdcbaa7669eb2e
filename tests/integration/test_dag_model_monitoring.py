"""The example DAG ``aisec_model_monitoring``: its four demo runs, as ``make demo`` runs them."""

from __future__ import annotations

import importlib.util
import json

import pytest

from tests.airflow_helpers import run_dag, serialize_to_db, task_states, xcom
from tests.conftest import DAGS_FOLDER, REPO_ROOT

pytestmark = [pytest.mark.usefixtures("airflow_db"), pytest.mark.integration]

TARGET = "aisec_secure_training"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"dag_{name}", DAGS_FOLDER / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fresh_guard_state() -> None:
    """Forget earlier retrains of the target (a reused test DB would otherwise start in cooldown)."""
    from airflow.models.asset import AssetModel
    from airflow.models.asset_state_store import AssetStateStoreModel
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        session.query(DagRun).filter(DagRun.dag_id == TARGET).delete()
        asset_ids = [a.id for a in session.query(AssetModel).filter(AssetModel.uri == f"aisec://retrain/{TARGET}")]
        if asset_ids:
            session.query(AssetStateStoreModel).filter(AssetStateStoreModel.asset_id.in_(asset_ids)).delete()


def _ensure_target() -> None:
    """Use the real training DAG when it is in dags/, else a stand-in with the same dag_id."""
    if (DAGS_FOLDER / f"{TARGET}.py").is_file():
        return
    from datetime import datetime

    from airflow.sdk import DAG, task

    with DAG(TARGET, schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as stand_in:

        @task
        def train():
            return "stand-in"

        train()
    serialize_to_db(stand_in)


def _target_runs():
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        runs = session.query(DagRun).filter(DagRun.dag_id == TARGET).all()
        return [(r.run_id, r.conf) for r in runs]


def test_demo_runs_show_the_four_decisions():
    sidecar = json.loads((REPO_ROOT / "demo" / "runs" / "aisec_model_monitoring.json").read_text())
    _fresh_guard_state()
    _ensure_target()

    decisions, reports = [], []
    for run in sidecar["runs"]:
        # a fresh DAG object per run, like each `airflow dags test` process (dag.test keeps run conf in params)
        dag_run = run_dag(_load("aisec_model_monitoring").dag, conf=run["conf"])
        assert str(dag_run.state) == run["expect"], (run["name"], task_states(dag_run))
        report = xcom(dag_run, "retrain")
        assert report is not None, task_states(dag_run)
        decisions.append(report["details"]["decision"])
        reports.append((dag_run, report))
        if not _target_runs():  # the stand-in may have been marked stale by the bundle re-sync
            _ensure_target()

    assert decisions == ["triggered", "suppressed_cooldown", "refused_provenance", "no_drift"], [
        r["summary"] for _, r in reports
    ]
    runs = _target_runs()
    assert [r[0] for r in runs] == ["aisec_retrain__000001"]
    conf = runs[0][1]["aisec_retrain"]
    first_run = reports[0][0]
    assert conf["monitor"]["run_id"] == first_run.run_id
    assert f"aisec_model_monitoring/{first_run.run_id}/drift_test" in conf["triggering_report_ids"]
    assert {b["task_id"]: b["status"] for b in conf["reports"]}["window_integrity"] == "pass"
    kinds = {b["task_id"]: b.get("signal_kinds") for b in conf["reports"]}
    assert kinds["drift_test"] == ["univariate_drift"]
    assert kinds["multivariate_drift"] == ["multivariate_drift"]
    assert kinds["performance_estimate"] == ["estimated_performance"]
    assert xcom(first_run, "multivariate_drift")["status"] == "fail"  # the shifted window is separable
    assert xcom(first_run, "performance_estimate")["check"] == "performance_estimate"

    drift = xcom(first_run, "drift_test")
    assert drift["status"] == "fail"  # on_drift="pass-through": the task succeeds, the decision acts
    assert task_states(first_run)["drift_test"] == "success"
    assert xcom(first_run, "performance")["status"] == "fail"
    assert task_states(first_run)["performance"] == "success"  # on_degradation="pass-through"
    tampered_run, tampered = reports[2]
    states = task_states(tampered_run)
    assert states["window_integrity"] == "failed"
    assert states["drift_test"] == "upstream_failed"
    assert "window_integrity (integrity fail)" in tampered["summary"]
    calm_run, _ = reports[3]
    assert xcom(calm_run, "drift_test")["status"] == "pass"
    assert xcom(calm_run, "performance")["status"] == "pass"
    assert xcom(calm_run, "multivariate_drift")["status"] == "pass"
    assert xcom(calm_run, "performance_estimate")["status"] == "pass"
    # the endpoint was load-tested and its log audited in every run; the shifted feed is out of distribution
    for dag_run, _ in reports:
        assert xcom(dag_run, "load_test")["metrics"]["requests_sent"] == 100
        assert task_states(dag_run)["collect_window"] == "success"
        # host-safe: the stand-in endpoint lived only inside its tasks; nothing started in one task is left
        assert not {"start_server", "stop_server"} & set(task_states(dag_run))
    audits = [xcom(d, "audit_inference_log")["metrics"]["ood_share"] for d, _ in reports]
    assert audits[0] > audits[3]
