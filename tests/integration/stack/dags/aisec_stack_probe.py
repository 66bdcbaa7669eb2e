"""Stack test DAG: one deferrable sensor and one reschedule-mode sensor, each waiting for a file the test
writes once it has seen the sensor wait (``deferred`` in the triggerer, ``up_for_reschedule`` between pokes).

Not an example: ``tests/integration/stack`` adds this folder as a second DAG bundle of its stack only.
"""

from __future__ import annotations

import os
from pathlib import Path

import pendulum
from airflow.sdk import DAG

from airflow_aisec.sensors.drift import DriftWindowSensor

PROBE_DIR = Path(os.environ.get("AISEC_DATA_DIR", "/tmp/aisec-data")) / "stack-probe"

with DAG(
    dag_id="aisec_stack_probe",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["aisec", "test"],
):
    DriftWindowSensor(
        task_id="deferred_wait",
        path=str(PROBE_DIR / "deferred.csv"),
        min_rows=1,
        deferrable=True,
        poke_interval=2,
        timeout=1200,
    )
    DriftWindowSensor(
        task_id="rescheduled_wait",
        path=str(PROBE_DIR / "rescheduled.csv"),
        min_rows=1,
        mode="reschedule",
        poke_interval=3,
        timeout=1200,
    )
