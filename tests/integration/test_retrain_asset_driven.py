"""The asset-driven alternative to RetrainTriggerOperator: a training DAG scheduled on the drift asset.

The monitoring DAG's drift task has an outlet asset; its event (extra: drifted features, share) is
what Airflow's scheduler turns into a run of every DAG whose ``schedule`` depends on that asset. We run
the producer for real (``dag.test()``) and then ask the scheduler's own query
(``DagModel.dags_needing_dagruns``) whether the training DAG is due — for a single asset and for an
asset condition (drift AND performance).
"""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest

from tests.airflow_helpers import run_dag, serialize_to_db, task_states, xcom

pytestmark = [pytest.mark.usefixtures("airflow_db"), pytest.mark.integration]


def _producer(dag_id: str, outlets: dict[str, object]):
    from airflow.sdk import DAG, task

    with DAG(dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False, params={"emit": []}) as dag:
        for name, asset in outlets.items():

            @task(task_id=name, outlets=[asset])
            def emit(*, name=name, asset=asset, params=None, outlet_events=None):
                from airflow.sdk.exceptions import AirflowSkipException

                if name not in params["emit"]:
                    raise AirflowSkipException(f"{name} not asked for")  # skipped: no event
                outlet_events[asset].extra = {"drifted_features": ["f0", "f1"], "drift_share": 0.5}

            emit()
    return dag


def _consumer(dag_id: str, schedule):
    from airflow.sdk import DAG, task

    with DAG(dag_id, schedule=schedule, start_date=datetime(2026, 1, 1), catchup=False) as dag:

        @task
        def train(triggering_asset_events=None):
            return {str(k): [e.extra for e in v] for k, v in (triggering_asset_events or {}).items()}

        train()
    return dag


def _due(dag_id: str) -> bool:
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    with create_session() as session:
        session.query(DagModel).filter(DagModel.dag_id == dag_id).update({"is_paused": False})
        session.flush()
        _, triggered_date_by_dag = DagModel.dags_needing_dagruns(session)
        return dag_id in triggered_date_by_dag


def test_training_dag_scheduled_on_the_drift_asset_becomes_due_on_a_drift_event():
    from airflow.sdk import Asset

    tag = uuid.uuid4().hex[:8]
    drift = Asset(f"aisec://drift/churn_{tag}")
    consumer = _consumer(f"train_on_drift_{tag}", schedule=[drift])
    serialize_to_db(consumer)
    producer = _producer(f"monitor_{tag}", {"drift_test": drift})

    run_dag(producer, conf={"emit": []})
    assert not _due(consumer.dag_id)
    run_dag(producer, conf={"emit": ["drift_test"]})
    assert _due(consumer.dag_id)


def test_asset_condition_waits_for_both_drift_and_performance():
    from airflow.sdk import Asset

    tag = uuid.uuid4().hex[:8]
    drift, perf = Asset(f"aisec://drift/c_{tag}"), Asset(f"aisec://performance/c_{tag}")
    consumer = _consumer(f"train_on_both_{tag}", schedule=(drift & perf))
    serialize_to_db(consumer)
    producer = _producer(f"monitor2_{tag}", {"drift_test": drift, "performance": perf})

    run_dag(producer, conf={"emit": ["drift_test"]})
    assert not _due(consumer.dag_id)
    run_dag(producer, conf={"emit": ["performance"]})
    assert _due(consumer.dag_id)


def _drift_producer(dag_id: str, drift_asset, detected_asset, workdir: str):
    """The real DriftTestOperator on a generated window, plus the gate that emits only on drift."""
    from airflow.sdk import DAG, task

    from airflow_aisec.operators.drift import DriftTestOperator

    reference, current = f"{workdir}/reference.csv", f"{workdir}/current.csv"
    with DAG(dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False, params={"shift": 0.0}) as dag:

        @task
        def window(params=None):
            import os

            import numpy as np
            import pandas as pd

            os.makedirs(workdir, exist_ok=True)
            rng = np.random.default_rng(5)
            pd.DataFrame(rng.normal(size=(400, 3)), columns=["a", "b", "c"]).to_csv(reference, index=False)
            cur = rng.normal(size=(300, 3)) + float(params["shift"])
            pd.DataFrame(cur, columns=["a", "b", "c"]).to_csv(current, index=False)

        drift_test = DriftTestOperator(
            task_id="drift_test",
            reference_path=reference,
            current_path=current,
            on_drift="pass-through",
            outlets=[drift_asset],
        )

        @task(outlets=[detected_asset])
        def drift_detected(ti=None, outlet_events=None):
            from airflow.sdk.exceptions import AirflowSkipException

            dataset = ti.xcom_pull(task_ids="drift_test", key="aisec_report")["details"]["dataset"]
            if not dataset["drift"]:
                raise AirflowSkipException("no drift: no event")
            outlet_events[detected_asset].extra = {"drifted_features": dataset["drifted_features"]}

        window() >> drift_test >> drift_detected()
    return dag


def test_drift_test_operator_events_fire_on_every_test_so_gate_them_on_the_verdict(tmp_path):
    """DriftTestOperator puts an event (extra ``drift``: bool) on its outlet after *every* successful test;
    a training DAG scheduled on it directly would retrain on calm windows too. Scheduling on a gate
    asset that is only emitted on drift gives the asset-driven path the right trigger."""
    from airflow.sdk import Asset

    tag = uuid.uuid4().hex[:8]
    drift, detected = Asset(f"aisec://drift/real_{tag}"), Asset(f"aisec://drift-detected/real_{tag}")
    on_every_test = _consumer(f"train_on_every_test_{tag}", schedule=[drift])
    on_drift_only = _consumer(f"train_on_drift_only_{tag}", schedule=[detected])
    serialize_to_db(on_every_test)
    serialize_to_db(on_drift_only)
    producer = _drift_producer(f"drift_monitor_{tag}", drift, detected, str(tmp_path))

    calm = run_dag(producer, conf={"shift": 0.0})
    assert xcom(calm, "drift_test")["details"]["dataset"]["drift"] is False
    assert task_states(calm)["drift_detected"] == "skipped"
    assert _due(on_every_test.dag_id)  # a calm window fired the raw drift asset
    assert not _due(on_drift_only.dag_id)

    drifted = run_dag(producer, conf={"shift": 1.0})
    assert xcom(drifted, "drift_test")["status"] == "fail"
    assert _due(on_drift_only.dag_id)
