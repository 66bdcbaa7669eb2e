"""InferenceLogAuditOperator and EndpointLoadTestOperator under real Airflow (dag.test)."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from airflow_aisec.core.inference_audit import _iso, input_hash
from airflow_aisec.operators.inference import EndpointLoadTestOperator, InferenceLogAuditOperator
from tests.airflow_helpers import run_dag, task_states, xcom
from tests.http_helpers import ok_endpoint

T0 = 1_760_000_000.0  # 2025-10-09: log timestamps in the future are refused


@pytest.fixture
def endpoint():
    with ok_endpoint() as url:
        yield url


def _log(path, abusive: bool):
    rows = []
    for i in range(12):
        feats = [0.1 * i, 0.2]
        rows.append(
            {
                "ts": _iso(T0 + i * 10),
                "client_id": "app",
                "input_hash": input_hash(feats),
                "latency_ms": 3,
                "status": 200,
            }
        )
    if abusive:
        for i in range(25):
            rows.append(
                {
                    "ts": _iso(T0 + i),
                    "client_id": "bot",
                    "input_hash": f"sha256:{i:064x}",
                    "latency_ms": 3,
                    "status": 200,
                }
            )
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")


def test_audit_and_load_test_operators(airflow_db, tmp_path, endpoint):
    from airflow.sdk import DAG

    _log(tmp_path / "clean.jsonl", abusive=False)
    _log(tmp_path / "abused.jsonl", abusive=True)
    with DAG("test_inference_operators", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        InferenceLogAuditOperator(task_id="audit_clean", inference_log=str(tmp_path / "clean.jsonl"))
        InferenceLogAuditOperator(
            task_id="audit_abused", inference_log=str(tmp_path / "abused.jsonl"), rate_limit="10/minute"
        )
        InferenceLogAuditOperator(task_id="audit_missing", inference_log=str(tmp_path / "missing.jsonl"))
        EndpointLoadTestOperator(
            task_id="load", url=endpoint, requests=30, concurrency=3, payload={"features": [1, 2]}, slo_p95_ms=5000
        )
    run = run_dag(dag)
    assert task_states(run) == {
        "audit_clean": "success",
        "audit_abused": "failed",
        "audit_missing": "failed",
        "load": "success",
    }
    assert xcom(run, "audit_clean")["status"] == "pass"
    abused = xcom(run, "audit_abused")
    assert abused["status"] == "fail"
    assert abused["findings"][0]["location"] == "client:bot"
    missing = xcom(run, "audit_missing")
    assert missing["status"] == "error"
    assert "does not exist" in missing["summary"]
    load = xcom(run, "load")
    assert load["metrics"]["requests_sent"] == 30
    assert load["status"] == "pass"


def test_constructors_validate():
    with pytest.raises(ValueError, match="inference_log"):
        InferenceLogAuditOperator(task_id="a", inference_log="")
    with pytest.raises(ValueError, match="fail_severity"):
        InferenceLogAuditOperator(task_id="a", inference_log="x", fail_severity="urgent")
    with pytest.raises(ValueError, match="not both"):
        EndpointLoadTestOperator(task_id="b", url="http://127.0.0.1/x", payload="{}", payload_path="p.json")
    op = EndpointLoadTestOperator(task_id="b", url="http://127.0.0.1/x")
    assert "url" in op.template_fields


def test_audit_reads_object_storage_through_objectstoragepath():
    """A real fsspec filesystem (in-memory) behind ObjectStoragePath: directory and single object."""
    import fsspec

    fs = fsspec.filesystem("memory")
    for name, t in (("a.jsonl", 0), ("b.jsonl", 10), ("notes.txt", 20)):
        fs.pipe(
            f"/aisec-test-logs/{name}",
            (json.dumps({"ts": T0 + t, "client_id": "c", "input_hash": "sha256:ab"}) + "\n").encode(),
        )
    op = InferenceLogAuditOperator(task_id="remote", inference_log="memory://aisec-test-logs")
    assert len(op._read_remote("memory://aisec-test-logs")) == 2
    assert len(op._read_remote("memory://aisec-test-logs/a.jsonl")) == 1
