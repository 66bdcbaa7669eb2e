"""Integrity operators reach object storage only through a named connection, and treat "still being
written" as transient: each line of the docs' table about it, attacked."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_aisec.core.hashing import ArtifactChangedError
from airflow_aisec.operators.integrity import ArtifactHashOperator, ArtifactIntegrityOperator


class _TI:
    dag_id, run_id, task_id, map_index = "d", "r", "t", -1

    def __init__(self) -> None:
        self.pushed: dict = {}

    def xcom_push(self, key, value):
        self.pushed[key] = value


@pytest.mark.parametrize(
    ("path", "conn", "message"),
    [
        ("s3://models/churn/v1", None, "is object storage: give storage_conn_id"),
        ("s3://models/churn/v1", "aisec_undefined_conn", "connection 'aisec_undefined_conn' is not defined"),
        ("s3:/models/churn/v1", None, "malformed URI"),
        ("s3://", "aisec_undefined_conn", "no bucket"),
        ("ftp://host/model.bin", None, "unsupported storage scheme 'ftp'"),
        ("file://host/model.bin", None, "names host 'host'"),
        ("/models/\x00x", None, "NUL"),
    ],
)
def test_bad_location_or_missing_connection_is_an_error_and_reads_nothing(monkeypatch, path, conn, message):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ambient")  # the worker's credentials: never used
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "ambient")
    read = []
    monkeypatch.setattr("airflow_aisec.core.integrity.verify_artifact", lambda *a, **k: read.append(a))
    for op in (
        ArtifactIntegrityOperator(task_id="t", path=path, expected_digest="0" * 64, storage_conn_id=conn),
        ArtifactHashOperator(task_id="t", path=path, conn_id=conn),  # the older parameter name
    ):
        ti = _TI()
        with pytest.raises(AirflowFailException, match=message):
            op.execute({"ti": ti, "outlet_events": {}})
        assert ti.pushed["aisec_report"]["status"] == "error"
    assert read == []


def test_artifact_changing_while_verified_is_retryable_not_a_verdict(monkeypatch, tmp_path):
    def changing(*args, **kwargs):
        raise ArtifactChangedError("file changed while it was being hashed: /m/a.bin")

    monkeypatch.setattr("airflow_aisec.core.integrity.verify_artifact", changing)
    op = ArtifactIntegrityOperator(task_id="t", path=str(tmp_path), expected_digest="0" * 64)
    ti = _TI()
    with pytest.raises(AirflowException, match="changed while it was being hashed") as raised:
        op.execute({"ti": ti, "outlet_events": {}})
    assert not isinstance(raised.value, AirflowFailException)  # Airflow's retries apply
    assert ti.pushed["aisec_report"]["status"] == "error"  # never a pass
