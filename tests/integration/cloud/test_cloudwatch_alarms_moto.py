"""``aisec cloudwatch-alarms --apply`` against the loopback moto server: alarms created once, a second
run changes nothing, a changed threshold updates exactly that alarm, and access denied (moto's IAM
authorisation, real ``AccessDenied`` answers) is a clear error, exit 2, no traceback."""

from __future__ import annotations

import json
import uuid

import pytest

from airflow_aisec.cli import main
from airflow_aisec.core.aws import cloudwatch
from airflow_aisec.report import validate

pytestmark = pytest.mark.integration


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))


def _apply(capsys, url, namespace, *extra):
    code = main(["cloudwatch-alarms", "--namespace", namespace, "--apply", "--endpoint-url", url, *extra])
    return code, capsys.readouterr()


def test_apply_is_idempotent_and_updates_only_the_changed_alarm(moto_server, aws_env, capsys):
    namespace = f"Test/AISec-{uuid.uuid4().hex[:6]}"
    url = moto_server.endpoint_url
    wanted = cloudwatch.alarm_definitions(namespace=namespace)
    n = len(wanted)

    code, out = _apply(capsys, url, namespace, "--format", "json")
    data = json.loads(out.out)
    assert code == 0, out
    assert data["summary"] == f"{n} created, 0 updated, 0 unchanged"
    cw = moto_server.client("cloudwatch")
    stored = {a["AlarmName"]: a for a in cw.describe_alarms(AlarmNamePrefix=namespace)["MetricAlarms"]}
    assert set(stored) == {a["AlarmName"] for a in wanted}
    missing = stored[f"{namespace} AisecMetricsMissing"]
    assert (missing["TreatMissingData"], missing["MetricName"]) == ("breaching", "aisec_reports_stored")
    drift = stored[f"{namespace} AisecDataDrift"]
    assert drift["Metrics"][0]["Expression"] == f'SELECT MAX(aisec_drift_share) FROM "{namespace}"'
    assert (drift["Threshold"], drift["TreatMissingData"]) == (0.3, "ignore")

    code, out = _apply(capsys, url, namespace)
    assert code == 0
    assert f"0 created, 0 updated, {n} unchanged" in out.out
    assert "(unchanged)" in out.out and "(created)" not in out.out

    code, out = _apply(capsys, url, namespace, "--latency-threshold", "3", "--format", "json")
    data = json.loads(out.out)
    assert code == 0
    assert data["summary"] == f"0 created, 1 updated, {n - 1} unchanged"
    assert data["updated"] == [f"{namespace} AisecInferenceLatencySpike"]
    (latency,) = cw.describe_alarms(AlarmNames=data["updated"])["MetricAlarms"]
    assert latency["Threshold"] == 3.0

    code, out = _apply(capsys, url, namespace, "--latency-threshold", "3")
    assert f"0 created, 0 updated, {n} unchanged" in out.out


def test_access_denied_is_a_clear_error(moto_server, aws_env, capsys, monkeypatch):
    iam = moto_server.client("iam")
    user = f"cw-reader-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    iam.put_user_policy(
        UserName=user,
        PolicyName="describe-only",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                # moto authorises CloudWatch under its endpoint prefix "monitoring:"; AWS under "cloudwatch:"
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": ["cloudwatch:DescribeAlarms", "monitoring:DescribeAlarms"],
                        "Resource": "*",
                    }
                ],
            }
        ),
    )
    key = iam.create_access_key(UserName=user)["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    namespace = f"Test/Denied-{uuid.uuid4().hex[:6]}"
    with moto_server.iam_auth():
        code, out = _apply(capsys, moto_server.endpoint_url, namespace, "--max-attempts", "1", "--format", "json")
    data = validate(json.loads(out.out))
    assert code == 2
    assert (data["check"], data["status"]) == ("cloudwatch", "error")
    assert f"access denied to CloudWatch alarm '{namespace} AisecDataDrift' on put_metric_alarm" in data["summary"]
    assert "aisec cloudwatch-alarms: error: access denied" in out.err
    assert "Traceback" not in out.out + out.err
    assert moto_server.client("cloudwatch").describe_alarms(AlarmNamePrefix=namespace)["MetricAlarms"] == []
