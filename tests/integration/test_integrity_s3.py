"""Integrity operators on ``s3://`` paths: ObjectStoragePath + s3fs through an Airflow AWS connection,
against a real S3 API (moto server on loopback)."""

from __future__ import annotations

import hashlib
import json
import uuid

import pendulum
import pytest
from airflow.sdk import DAG

from airflow_aisec.operators.integrity import ArtifactHashOperator, ArtifactIntegrityOperator
from airflow_aisec.sensors.integrity import ArtifactIntegritySensor
from tests.airflow_helpers import run_dag, task_states, xcom
from tests.fixtures.moto_server import moto_server  # noqa: F401

pytestmark = pytest.mark.integration
CONN_ID = "aisec_integrity_s3"


@pytest.fixture
def s3_model(moto_server, monkeypatch):  # noqa: F811
    conn = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"endpoint_url": moto_server.endpoint_url, "region_name": "us-east-1"},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))
    bucket = f"models-{uuid.uuid4().hex[:8]}"
    s3 = moto_server.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="churn/v1/weights.bin", Body=b"w" * 5000)
    s3.put_object(Bucket=bucket, Key="churn/v1/config.json", Body=b"{}")
    return s3, bucket


def test_hash_and_verify_s3_prefix(airflow_db, s3_model, tmp_path):
    s3, bucket = s3_model
    uri = f"s3://{bucket}/churn/v1"
    manifest = tmp_path / "churn.manifest.json"
    with DAG("t_integrity_s3", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
        h = ArtifactHashOperator(task_id="hash", path=uri, manifest_path=str(manifest), conn_id=CONN_ID)
        v = ArtifactIntegrityOperator(task_id="verify", path=uri, manifest_path=str(manifest), conn_id=CONN_ID)
        s = ArtifactIntegritySensor(
            task_id="wait_single",
            path=f"{uri}/weights.bin",
            expected_digest=hashlib.sha256(b"w" * 5000).hexdigest(),
            conn_id=CONN_ID,
            deferrable=True,
            poke_interval=1,
            timeout=60,
        )
        h >> v >> s
    dr = run_dag(dag)
    assert task_states(dr) == {"hash": "success", "verify": "success", "wait_single": "success"}
    entries = json.loads(manifest.read_text())["entries"]
    assert [(e["path"], e["size"]) for e in entries] == [("config.json", 2), ("weights.bin", 5000)]
    assert entries[1]["digest"] == hashlib.sha256(b"w" * 5000).hexdigest()

    s3.put_object(Bucket=bucket, Key="churn/v1/weights.bin", Body=b"swapped")  # tamper in the bucket
    with DAG("t_integrity_s3_tamper", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag2:
        ArtifactIntegrityOperator(task_id="verify", path=uri, manifest_path=str(manifest), conn_id=CONN_ID)
    dr2 = run_dag(dag2)
    assert task_states(dr2) == {"verify": "failed"}
    assert [f["location"] for f in xcom(dr2, "verify")["findings"]] == ["weights.bin"]
