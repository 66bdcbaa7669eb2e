"""``aisec s3-posture`` / ``aisec iam-lint --role`` with boto3's standard credential chain (environment
variables here) and ``--endpoint-url`` pointing at the loopback moto server."""

from __future__ import annotations

import json
import uuid

import pytest

from airflow_aisec.cli import main
from airflow_aisec.report import validate

pytestmark = pytest.mark.integration


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))


def _run(capsys, *argv):
    code = main(list(argv))
    return code, capsys.readouterr()


def test_s3_posture_cli_finds_enforces_and_errors(moto_server, aws_env, capsys):
    bucket = f"cli-{uuid.uuid4().hex[:10]}"
    moto_server.client("s3").create_bucket(Bucket=bucket)
    url = moto_server.endpoint_url

    code, out = _run(capsys, "s3-posture", bucket, "--endpoint-url", url, "--format", "json")
    data = validate(json.loads(out.out))
    assert code == 1
    assert "AISEC-S3-ENC-NONE" in {f["id"] for f in data["findings"]}

    code, out = _run(
        capsys,
        "s3-posture",
        f"s3://{bucket}",
        "--endpoint-url",
        url,
        "--enforce",
        "--checks",
        "encryption,versioning,public_access_block",
    )
    assert code == 0, out.out
    assert out.out.startswith(f"[PASS] s3_posture s3://{bucket}")
    assert "changed 3 setting(s)" in out.out

    code, out = _run(capsys, "s3-posture", "aisec-cli-missing", "--endpoint-url", url)
    assert code == 2
    assert "bucket 'aisec-cli-missing' does not exist" in out.out


def test_s3_posture_cli_account_check(moto_server, aws_env, capsys):
    bucket = f"cli-acct-{uuid.uuid4().hex[:8]}"
    moto_server.client("s3").create_bucket(Bucket=bucket)
    code, out = _run(
        capsys,
        "s3-posture",
        bucket,
        "--endpoint-url",
        moto_server.endpoint_url,
        "--checks",
        "versioning",
        "--check-account",
    )
    assert code == 1
    assert "AISEC-S3-ACCOUNT-PAB" in out.out


def test_s3_posture_cli_unreachable_endpoint_is_transient_error(aws_env, capsys):
    from tests.fixtures.moto_server import free_port

    code, out = _run(
        capsys, "s3-posture", "any-bucket", "--endpoint-url", f"http://127.0.0.1:{free_port()}", "--max-attempts", "1"
    )
    assert code == 2
    assert "AisecTransientError" in out.out
    assert "still failing after 1 attempt(s)" in out.err


def test_iam_lint_cli_role(moto_server, aws_env, capsys):
    iam = moto_server.client("iam")
    role = f"serving-{uuid.uuid4().hex[:6]}"
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))
    iam.put_role_policy(
        RoleName=role,
        PolicyName="p",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        ),
    )
    code, out = _run(capsys, "iam-lint", "--role", role, "--endpoint-url", moto_server.endpoint_url, "--format", "json")
    data = json.loads(out.out)
    assert code == 1
    assert {"AISEC-IAM-ACTION-STAR", "AISEC-IAM-INFERENCE-WRITES-DATA"} <= {f["id"] for f in data["findings"]}
