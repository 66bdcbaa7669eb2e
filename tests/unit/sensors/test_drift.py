"""DriftWindowSensor: poke counts rows; deferrable mode defers with the trigger and resumes."""

from __future__ import annotations

import pandas as pd
import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException, TaskDeferred

from airflow_aisec.sensors.drift import DriftWindowSensor
from airflow_aisec.triggers.drift import MinRowsTrigger


def test_poke_counts_rows(tmp_path):
    path = tmp_path / "w.parquet"
    sensor = DriftWindowSensor(task_id="s", path=str(path), min_rows=3)
    assert sensor.poke({}).is_done is False
    pd.DataFrame({"x": range(4)}).to_parquet(path)
    result = sensor.poke({})
    assert (result.is_done, result.xcom_value) == (True, 4)


def test_deferrable_defers_then_completes(tmp_path):
    path = tmp_path / "w.parquet"
    sensor = DriftWindowSensor(task_id="s", path=str(path), min_rows=3, deferrable=True, poke_interval=7, timeout=60)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    trigger = deferred.value.trigger
    assert isinstance(trigger, MinRowsTrigger)
    assert trigger.serialize()[1] == {"path": str(path), "min_rows": 3, "poke_interval": 7.0, "storage_conn_id": None}
    assert deferred.value.method_name == "execute_complete"
    assert sensor.execute_complete({}, {"status": "success", "rows": 5}) == 5
    with pytest.raises(AirflowException, match="ended without success"):
        sensor.execute_complete({}, {"status": "timeout"})
    pd.DataFrame({"x": range(4)}).to_parquet(path)
    assert sensor.execute({}) == 4  # enough rows already: no deferral


def test_object_storage_needs_a_connection_and_it_reaches_the_trigger(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ambient")  # never used
    sensor = DriftWindowSensor(task_id="s", path="s3://bucket/w.parquet", min_rows=3)
    with pytest.raises(AirflowFailException, match="is object storage: give storage_conn_id"):
        sensor.poke({})
    with pytest.raises(AirflowFailException, match="connection 'aisec_none_such' is not defined"):
        DriftWindowSensor(task_id="s", path="s3://b/w.parquet", min_rows=3, storage_conn_id="aisec_none_such").poke({})
    with pytest.raises(AirflowFailException, match="malformed URI"):
        DriftWindowSensor(task_id="s", path="s3:/b/w.parquet", min_rows=3).poke({})
    assert "storage_conn_id" in DriftWindowSensor.template_fields
