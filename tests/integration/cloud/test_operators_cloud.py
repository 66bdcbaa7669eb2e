"""The cloud operators in real DAG runs (``dag.test()``), with boto3 clients from providers-amazon's
``AwsBaseHook`` pointed at the loopback moto server through an Airflow connection's ``endpoint_url``."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.airflow_helpers import run_dag, task_states, xcom
from tests.integration.cloud.test_s3_posture_moto import make_compliant_bucket

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]


def _dag(dag_id, *tasks_factory):
    from airflow.sdk import DAG

    with DAG(dag_id=f"{dag_id}_{uuid.uuid4().hex[:6]}", schedule=None, catchup=False) as dag:
        for make in tasks_factory:
            make()
    return dag


def test_s3_posture_operator_pass_fail_and_enforce(airflow_db, moto_server, aws_conn):
    from airflow_aisec.operators.cloud import S3BucketPostureOperator

    kms = moto_server.client("kms").create_key()["KeyMetadata"]["KeyId"]
    good, bad, fixme = (f"{p}-{uuid.uuid4().hex[:8]}" for p in ("op-good", "op-bad", "op-fixme"))
    make_compliant_bucket(moto_server, good, kms)
    s3 = moto_server.client("s3")
    s3.create_bucket(Bucket=bad)
    s3.create_bucket(Bucket=fixme)

    dag = _dag(
        "aisec_test_s3_posture",
        lambda: S3BucketPostureOperator(task_id="good", buckets=[good], aws_conn_id=aws_conn, require_kms=True),
        lambda: S3BucketPostureOperator(task_id="bad", buckets=f"s3://{bad}", aws_conn_id=aws_conn),
        lambda: S3BucketPostureOperator(
            task_id="fixme",
            buckets=[fixme],
            aws_conn_id=aws_conn,
            enforce=True,
            checks=["encryption", "public_access_block", "versioning"],
        ),
    )
    dr = run_dag(dag)
    assert task_states(dr) == {"good": "success", "bad": "failed", "fixme": "success"}
    good_report = xcom(dr, "good")
    assert (good_report["status"], good_report["findings"]) == ("pass", [])
    bad_report = xcom(dr, "bad")  # pushed before the task failed
    assert bad_report["status"] == "fail"
    assert {f["id"] for f in bad_report["findings"]} >= {"AISEC-S3-ENC-NONE", "AISEC-S3-PAB-MISSING"}
    fixed = xcom(dr, "fixme")
    assert fixed["status"] == "pass"
    assert [a["action"] for a in fixed["details"]["remediation_applied"]] == [
        "put_bucket_encryption",
        "put_public_access_block",
        "put_bucket_versioning",
    ]
    assert s3.get_bucket_versioning(Bucket=fixme)["Status"] == "Enabled"
    assert "Status" not in s3.get_bucket_versioning(Bucket=bad)  # no enforce, no change


def test_s3_posture_operator_missing_bucket_fails_without_retry(airflow_db, moto_server, aws_conn):
    from airflow_aisec.operators.cloud import S3BucketPostureOperator

    dag = _dag(
        "aisec_test_s3_missing",
        lambda: S3BucketPostureOperator(
            task_id="missing", buckets=["aisec-not-there"], aws_conn_id=aws_conn, retries=2
        ),
    )
    dr = run_dag(dag)
    assert task_states(dr) == {"missing": "failed"}  # AirflowFailException: retries do not apply
    report = xcom(dr, "missing")
    assert report["status"] == "error"
    assert "bucket 'aisec-not-there' does not exist" in report["summary"]


def test_iam_lint_operator_files_and_role(airflow_db, moto_server, aws_conn):
    from airflow.sdk import Asset

    from airflow_aisec.operators.cloud import IamPolicyLintOperator

    iam = moto_server.client("iam")
    role = f"model-training-{uuid.uuid4().hex[:6]}"
    iam.create_role(
        RoleName=role,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
    )
    iam.put_role_policy(
        RoleName=role,
        PolicyName="cleanup",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::m/*"}],
            }
        ),
    )
    data = REPO / "data" / "iam"
    dag = _dag(
        "aisec_test_iam_lint",
        lambda: IamPolicyLintOperator(
            task_id="least_privilege",
            policy_files=[
                str(data / "inference-role-least-privilege.json"),
                str(data / "training-role-least-privilege.json"),
            ],
            aws_conn_id=None,
            outlets=[Asset("aisec://iam/least-privilege")],
        ),
        lambda: IamPolicyLintOperator(task_id="role", role_names=[role], aws_conn_id=aws_conn),
    )
    dr = run_dag(dag)
    assert task_states(dr) == {"least_privilege": "success", "role": "failed"}
    assert xcom(dr, "least_privilege")["status"] == "pass"
    assert _asset_event_extra(dr, "least_privilege") == {
        "aisec_check": "iam_policy",
        "status": "pass",
        "findings": {},
        "subject": "2 IAM policy sources",
    }
    report = xcom(dr, "role")
    assert [f["id"] for f in report["findings"]] == ["AISEC-IAM-TRAINING-CAN-DELETE"]
    assert report["subject"] == f"role/{role}"


def test_sagemaker_posture_operator(airflow_db, moto_server, aws_conn):
    from airflow_aisec.operators.cloud import SageMakerPostureOperator
    from tests.integration.cloud.test_sagemaker_moto import _default_resources

    nb, job = _default_resources(moto_server.client("sagemaker"))
    dag = _dag(
        "aisec_test_sagemaker",
        lambda: SageMakerPostureOperator(
            task_id="defaults", notebook_instances=nb, training_jobs=[job], aws_conn_id=aws_conn
        ),
        lambda: SageMakerPostureOperator(
            task_id="lenient", training_jobs=[job], aws_conn_id="{{ 'aisec_s3_test' }}", fail_on="critical"
        ),
    )
    dr = run_dag(dag)
    assert task_states(dr) == {"defaults": "failed", "lenient": "success"}
    report = xcom(dr, "defaults")
    assert report["status"] == "fail"
    assert {f["location"] for f in report["findings"]} == {
        f"sagemaker/notebook-instance/{nb}",
        f"sagemaker/training-job/{job}",
    }
    assert xcom(dr, "lenient")["status"] == "warn"


def test_cloudwatch_metrics_operator_publishes_upstream_reports(airflow_db, moto_server, aws_conn, tmp_path):
    from airflow_aisec.core.aws import cloudwatch
    from airflow_aisec.operators.cloud import IamPolicyLintOperator
    from airflow_aisec.operators.cloudwatch import CloudWatchMetricsOperator

    namespace = f"Test/AISec-{uuid.uuid4().hex[:6]}"
    data = REPO / "data" / "iam"
    stored = tmp_path / "reports" / "other_dag" / "run1"
    stored.mkdir(parents=True)
    (stored / "scan.json").write_text(json.dumps({"check": "model_scan", "status": "error", "findings": []}))

    def lint(task_id, name):
        return IamPolicyLintOperator(task_id=task_id, policy_files=[str(data / name)], aws_conn_id=None)

    def build():
        upstream = [
            lint("good", "inference-role-least-privilege.json"),
            lint("bad", "inference-role-overprivileged.json"),
        ]
        upstream >> CloudWatchMetricsOperator(
            task_id="publish",
            report_task_ids=["good", "bad"],
            report_dir=str(tmp_path / "reports"),
            namespace=namespace,
            aws_conn_id=aws_conn,
            create_alarm=True,
            create_rule_alarms=True,
            trigger_rule="all_done",
        )

    dag = _dag("aisec_test_cloudwatch", build)
    dr = run_dag(dag)
    assert task_states(dr) == {"good": "success", "bad": "failed", "publish": "success"}
    result = xcom(dr, "publish", key="return_value")
    assert result["reports"] == 3
    cw = moto_server.client("cloudwatch")
    failed = {}
    for page in cw.get_paginator("list_metrics").paginate(Namespace=namespace, MetricName="aisec_check_failed"):
        for metric in page["Metrics"]:
            dims = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
            failed[(dims["DAG"], dims["Task"], dims["Check"])] = True
    assert set(failed) == {
        (dr.dag_id, "good", "iam_policy"),
        (dr.dag_id, "bad", "iam_policy"),
        ("other_dag", "scan", "model_scan"),
    }
    (alarm,) = cw.describe_alarms(AlarmNames=[result["alarm"]])["MetricAlarms"]
    assert alarm["MetricName"] == "aisec_check_error_rate"
    rule_alarms = cloudwatch.alarm_definitions(namespace=namespace)
    assert result["rule_alarms"]["summary"] == f"{len(rule_alarms)} created, 0 updated, 0 unchanged"
    stored = cw.describe_alarms(AlarmNamePrefix=f"{namespace} Aisec")["MetricAlarms"]
    assert {a["AlarmName"] for a in stored} == {a["AlarmName"] for a in rule_alarms}


def _asset_event_extra(dag_run, task_id):
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    with create_session() as session:
        (event,) = (
            session.query(AssetEvent)
            .filter(
                AssetEvent.source_dag_id == dag_run.dag_id,
                AssetEvent.source_run_id == dag_run.run_id,
                AssetEvent.source_task_id == task_id,
            )
            .all()
        )
        return dict(event.extra)
