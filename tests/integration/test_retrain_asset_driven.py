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

from tests.airflow_helpers import run_dag, serialize_to_db

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
