"""The example DAG ``dags/aisec_cloud_posture.py``, run as-is and with conf (real ``dag.test()``)."""

from __future__ import annotations

import importlib.util
import uuid

import pytest

from tests.airflow_helpers import run_dag, task_states, xcom
from tests.conftest import DAGS_FOLDER

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cloud_dag(airflow_db):
    spec = importlib.util.spec_from_file_location("aisec_cloud_posture_dag", DAGS_FOLDER / "aisec_cloud_posture.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


def test_runs_as_is_lints_bundled_policies_and_skips_s3(cloud_dag, monkeypatch):
    dr = run_dag(cloud_dag)
    assert task_states(dr) == {
        "policy_files": "success",
        "iam_lint": "success",
        "s3_target": "skipped",
        "s3_posture": "skipped",
    }
    report = xcom(dr, "iam_lint")
    assert report["status"] == "pass"
    assert report["metrics"]["policies"] == 2
    assert {p["purpose"] for p in report["details"]["policies"]} == {"inference", "training"}


def test_overprivileged_policy_set_fails_the_lint(cloud_dag):
    dr = run_dag(cloud_dag, conf={"policy_set": "overprivileged"})
    assert task_states(dr)["iam_lint"] == "failed"
    report = xcom(dr, "iam_lint")
    ids = {f["id"] for f in report["findings"]}
    assert {"AISEC-IAM-ACTION-STAR", "AISEC-IAM-INFERENCE-WRITES-DATA", "AISEC-IAM-TRAINING-CAN-DELETE"} <= ids


def test_s3_branch_runs_when_a_store_is_configured(cloud_dag, moto_server, aws_conn):
    bucket = f"dag-{uuid.uuid4().hex[:10]}"
    moto_server.client("s3").create_bucket(Bucket=bucket)
    dr = run_dag(
        cloud_dag,
        conf={"aws_conn_id": aws_conn, "buckets": bucket, "checks": "encryption,versioning", "enforce": True},
    )
    assert task_states(dr)["s3_posture"] == "success"
    report = xcom(dr, "s3_posture")
    assert report["status"] == "pass"
    assert [a["action"] for a in report["details"]["remediation_applied"]] == [
        "put_bucket_encryption",
        "put_bucket_versioning",
    ]
