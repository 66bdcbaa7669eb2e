"""``aisec cloudwatch-alarms`` without ``--apply``: the definitions printed, no AWS call; bad input is an
error report (exit 2). ``--apply`` runs against the moto server in tests/integration/cloud."""

from __future__ import annotations

import json

from airflow_aisec.cli import main
from airflow_aisec.core.aws import cloudwatch
from airflow_aisec.report import validate


def test_plan_prints_the_definitions_as_json_and_calls_nothing(capsys, monkeypatch):
    def no_client(*args, **kwargs):
        raise AssertionError("no AWS client without --apply")

    monkeypatch.setattr("airflow_aisec.cli.cloud._client", no_client)
    code = main(["cloudwatch-alarms", "--namespace", "Test/AISec", "--dimension", "DAG=prod", "--format", "json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert data["applied"] is False
    assert data["alarms"] == cloudwatch.alarm_definitions(namespace="Test/AISec", dimensions={"DAG": "prod"})


def test_plan_as_text_names_every_alarm_and_its_missing_data_rule(capsys):
    code = main(["cloudwatch-alarms", "--namespace", "N", "--alarm-actions", "arn:aws:sns:us-east-1:1:t"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("[PLAN] cloudwatch alarms in N\n")
    for alert in cloudwatch.ALERT_ALARMS:
        assert f"  - N {alert}: " in out
    assert (
        "N AisecMetricsMissing: SampleCount(aisec_reports_stored) LessThanThreshold 1, missing data: breaching" in out
    )
    assert "DIFF(m) where m = SELECT SUM(aisec_vulnerabilities)" in out


def test_bad_dimension_is_an_error_report_exit_2(capsys):
    code = main(["cloudwatch-alarms", "--namespace", "N", "--dimension", "DAG='x", "--format", "json"])
    captured = capsys.readouterr()
    data = validate(json.loads(captured.out))
    assert code == 2
    assert (data["check"], data["status"]) == ("cloudwatch", "error")
    assert "dimension must be KEY=VALUE" in data["summary"]
    assert "aisec cloudwatch-alarms: error: dimension must be KEY=VALUE" in captured.err
    assert "Traceback" not in captured.out + captured.err


def test_reserved_namespace_is_an_error_in_text_too(capsys):
    code = main(["cloudwatch-alarms", "--namespace", "AWS/EC2"])
    out = capsys.readouterr().out
    assert code == 2
    assert out.startswith("[ERROR] cloudwatch CloudWatch namespace AWS/EC2")
