"""RetrainTriggerOperator under real Airflow (``dag.test()``): decisions, target runs and their conf.

Each test uses its own target DAG id, so the guard's state (asset state store of
``aisec://retrain/<target>``) and the target's runs are isolated. Upstream "checks" are tiny tasks
that push the aisec report a real check would push (and fail like it when the report fails).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from tests.airflow_helpers import run_dag, serialize_to_db, task_states, xcom

pytestmark = pytest.mark.usefixtures("airflow_db")


def _target_dag(dag_id: str):
    from airflow.sdk import DAG, task

    with DAG(dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:

        @task
        def train():
            return "trained"

        train()
    return dag


def _monitor_dag(target: str, **op_kwargs):
    from airflow.sdk import DAG, task
    from airflow.sdk.exceptions import AirflowFailException

    from airflow_aisec.operators.retrain import RetrainTriggerOperator
    from airflow_aisec.report import Report

    def push(check: str, status: str, summary: str):
        from airflow.sdk import get_current_context

        report = Report.start(check, "live-window")
        if status == "fail":
            report.add_finding(f"AISEC-{check.upper()}-X", "high", summary)
        data = report.finish(status, summary).to_dict()
        get_current_context()["ti"].xcom_push(key="aisec_report", value=data)
        if status == "fail":
            raise AirflowFailException(summary)
        return data

    with DAG(
        f"monitor_{target}",
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        params={"integrity": "pass", "drift": "fail"},
    ) as dag:

        @task
        def integrity(params=None):
            return push("integrity", params["integrity"], f"window integrity {params['integrity']}")

        @task
        def drift(params=None):
            return push("drift", params["drift"], f"drift test {params['drift']}: psi 0.42")

        i, d = integrity(), drift()
        i >> d
        retrain = RetrainTriggerOperator(
            task_id="retrain",
            trigger_dag_id=target,
            report_task_ids=["integrity", "drift"],
            trigger_rule="all_done",
            **op_kwargs,
        )
        [i, d] >> retrain
    return dag


def _target_runs(target: str) -> list:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        runs = session.query(DagRun).filter(DagRun.dag_id == target).order_by(DagRun.run_after).all()
        session.expunge_all()
        return runs


def _setup(**op_kwargs):
    target = f"retrain_target_{uuid.uuid4().hex[:8]}"
    serialize_to_db(_target_dag(target))
    return target, _monitor_dag(target, **op_kwargs)


def _decision(dag_run) -> dict:
    report = xcom(dag_run, "retrain")
    assert report is not None, task_states(dag_run)
    return report


def test_drift_triggers_one_run_with_conf_then_cooldown_holds_across_runs():
    target, monitor = _setup(min_interval=timedelta(hours=1))
    first = run_dag(monitor)
    report = _decision(first)
    assert report["details"]["decision"] == "triggered"
    assert report["status"] == "warn"
    assert task_states(first)["retrain"] == "success"
    assert xcom(first, "retrain", key="return_value") == report
    runs = _target_runs(target)
    assert [r.run_id for r in runs] == ["aisec_retrain__000001"]
    conf = runs[0].conf["aisec_retrain"]
    assert conf["decision"] == "triggered"
    assert conf["monitor"] == {"dag_id": monitor.dag_id, "run_id": first.run_id, "task_id": "retrain"}
    drift_id = f"{monitor.dag_id}/{first.run_id}/drift"
    assert conf["triggering_report_ids"] == [drift_id]
    briefs = {b["id"]: b for b in conf["reports"]}
    assert briefs[drift_id]["summary"] == "drift test fail: psi 0.42"
    assert briefs[drift_id]["finding_ids"] == ["AISEC-DRIFT-X"]
    assert briefs[f"{monitor.dag_id}/{first.run_id}/integrity"]["status"] == "pass"

    second = run_dag(monitor)  # a separate DAG run: state must come from Airflow, not the operator object
    again = _decision(second)
    assert again["details"]["decision"] == "suppressed_cooldown"
    assert again["metrics"]["cooldown_remaining_seconds"] > 3500
    assert task_states(second)["retrain"] == "success"
    assert [r.run_id for r in _target_runs(target)] == ["aisec_retrain__000001"]


def test_asset_event_carries_the_decision():
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    target, monitor = _setup()
    dag_run = run_dag(monitor)
    with create_session() as session:
        events = (
            session.query(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .filter(AssetModel.uri == f"aisec://retrain/{target}", AssetEvent.source_run_id == dag_run.run_id)
            .all()
        )
        extras = [e.extra for e in events]
    assert len(extras) == 1
    assert extras[0]["decision"] == "triggered"
    assert extras[0]["triggered_run_id"] == "aisec_retrain__000001"


def test_no_drift_triggers_nothing():
    target, monitor = _setup()
    dag_run = run_dag(monitor, conf={"drift": "pass"})
    report = _decision(dag_run)
    assert report["details"]["decision"] == "no_drift"
    assert report["status"] == "pass"
    assert _target_runs(target) == []


def test_tampered_window_is_refused_and_the_task_still_succeeds():
    target, monitor = _setup()
    dag_run = run_dag(monitor, conf={"integrity": "fail"})
    states = task_states(dag_run)
    assert states["integrity"] == "failed"
    assert states["retrain"] == "success"
    report = _decision(dag_run)
    assert report["details"]["decision"] == "refused_provenance"
    assert "integrity (integrity fail)" in report["summary"]
    assert _target_runs(target) == []


def test_daily_cap_suppresses_once_reached():
    target, monitor = _setup(min_interval=0, max_per_day=2)
    decisions = [_decision(run_dag(monitor))["details"]["decision"] for _ in range(3)]
    assert decisions == ["triggered", "triggered", "suppressed_cap"]
    assert [r.run_id for r in _target_runs(target)] == ["aisec_retrain__000001", "aisec_retrain__000002"]


def test_dry_run_decides_but_starts_and_records_nothing():
    target, monitor = _setup(dry_run="{{ params.dry_run }}")
    monitor.params["dry_run"] = True  # the template renders the param
    first = _decision(run_dag(monitor))
    assert first["details"]["decision"] == "triggered"
    assert first["details"]["dry_run"] is True
    assert first["summary"].startswith("dry run: would trigger")
    assert _target_runs(target) == []
    live = _decision(run_dag(monitor, conf={"dry_run": False}))
    assert live["details"]["decision"] == "triggered"  # the dry run recorded no cooldown
    assert [r.run_id for r in _target_runs(target)] == ["aisec_retrain__000001"]


def test_lost_claim_catches_up_from_the_target_runs():
    """A concurrent monitor (or one that died before saving its state) already created claim #1."""
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    target, monitor = _setup(min_interval=timedelta(hours=1))

    with create_session() as session:
        dag = SerializedDagModel.get_dag(target, session=session)
        now = datetime.now(timezone.utc)
        dag.create_dagrun(
            run_id="aisec_retrain__000001",
            logical_date=None,
            data_interval=None,
            run_after=now,
            run_type=DagRunType.MANUAL,
            triggered_by=DagRunTriggeredByType.TEST,
            state=DagRunState.QUEUED,
            conf={"aisec_retrain": {"monitor": "another"}},
            session=session,
        )
    report = _decision(run_dag(monitor))
    assert report["details"]["decision"] == "suppressed_cooldown"
    assert report["metrics"]["claim_attempts"] == 2
    assert report["details"]["state"]["seq"] == 1
    runs = _target_runs(target)
    assert [r.run_id for r in runs] == ["aisec_retrain__000001"]
    assert runs[0].conf == {"aisec_retrain": {"monitor": "another"}}


def test_unknown_target_fails_closed_naming_it():
    monitor = _monitor_dag(f"no_such_dag_{uuid.uuid4().hex[:8]}")
    dag_run = run_dag(monitor)
    report = _decision(dag_run)
    assert task_states(dag_run)["retrain"] == "failed"
    assert report["status"] == "error"
    assert "trigger_dag_id" in report["summary"]


def test_bad_configuration_is_rejected_at_parse_time():
    from airflow_aisec.exceptions import AisecInputError
    from airflow_aisec.operators.retrain import RetrainTriggerOperator

    with pytest.raises(AisecInputError, match="max_per_day"):
        RetrainTriggerOperator(task_id="r", trigger_dag_id="t", report_task_ids="x", max_per_day=0)
    op = RetrainTriggerOperator(task_id="r", trigger_dag_id="train", report_task_ids="x")
    assert [o.uri for o in op.outlets] == ["aisec://retrain/train"]
