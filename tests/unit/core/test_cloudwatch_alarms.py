"""CloudWatch alarms equivalent to the Prometheus alert rules: every rule has its alarm (read from
deploy/prometheus/alerts.yml, so the two cannot drift apart), the definitions are valid PutMetricAlarm
parameters, and applying them is idempotent (fake client here; the moto server in tests/integration)."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from botocore.exceptions import ClientError

from airflow_aisec.core.aws import cloudwatch
from airflow_aisec.core.aws.common import RetryPolicy
from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError
from airflow_aisec.plugins.metrics import METRICS
from tests.unit.plugins.test_alerts import metric_names, rules

DURATION = {"s": 1, "m": 60, "h": 3600}


def _by_alert(alarms: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {a["AlarmName"].split(" ")[1]: a for a in alarms}


def _metric(alarm: dict[str, Any]) -> str:
    if "MetricName" in alarm:
        return str(alarm["MetricName"])
    m = re.match(r"SELECT [A-Z]+\((\w+)\) FROM ", alarm["Metrics"][0]["Expression"])
    assert m, alarm["Metrics"][0]["Expression"]
    return m.group(1)


def test_every_prometheus_alert_has_a_cloudwatch_alarm_on_the_same_metric():
    alarms = _by_alert(cloudwatch.alarm_definitions(namespace="Test/AISec"))
    shipped = rules()
    assert {r["alert"] for r in shipped} == set(cloudwatch.ALERT_ALARMS)
    for rule in shipped:
        alarm = alarms[cloudwatch.ALERT_ALARMS[rule["alert"]]]
        assert _metric(alarm) in metric_names(rule["expr"]), rule["alert"]
        assert rule["alert"] in alarm["AlarmDescription"]
        # "for: 10m" → the alarm needs the condition over at least as long
        wait = rule.get("for", "0m")
        seconds = int(wait[:-1]) * DURATION[wait[-1]]
        period = alarm.get("Period") or alarm["Metrics"][0]["Period"]
        assert alarm["DatapointsToAlarm"] * period >= seconds, rule["alert"]
        if rule["expr"].startswith("absent("):  # missing data is the alert itself
            assert alarm["TreatMissingData"] == "breaching"
        else:  # the metrics describe the latest reports: a quiet period keeps the state, never reads healthy
            assert alarm["TreatMissingData"] == "ignore"
        m = re.search(r"\)\s*(>|==)\s*([\d.]+)$", rule["expr"])
        if m and rule["alert"] != "AisecInferenceLatencySpike":  # static thresholds carried over as they are
            op, value = m.groups()
            want = ("GreaterThanThreshold", float(value)) if op == ">" else ("GreaterThanOrEqualToThreshold", 1.0)
            assert (alarm["ComparisonOperator"], alarm["Threshold"]) == want, rule["alert"]


def test_alarms_use_only_exported_metrics_and_the_brief_extra_rates():
    alarms = _by_alert(cloudwatch.alarm_definitions(namespace="N"))
    assert {_metric(a) for a in alarms.values()} <= set(METRICS)
    failing = alarms["AisecChecksFailing"]
    assert (failing["Threshold"], failing["ComparisonOperator"]) == (0.05, "GreaterThanThreshold")
    assert failing["Metrics"][0]["Expression"] == 'SELECT AVG(aisec_check_failed) FROM "N"'
    errors = alarms["AisecInferenceErrorRate"]
    assert errors["Metrics"][0]["Expression"] == "SELECT MAX(aisec_report_metric) FROM \"N\" WHERE Name = 'error_rate'"
    assert errors["Threshold"] == 0.05


def test_definitions_are_valid_put_metric_alarm_parameters():
    from botocore.session import get_session

    shape = get_session().get_service_model("cloudwatch").operation_model("PutMetricAlarm").input_shape
    members = set(shape.members)
    alarms = cloudwatch.alarm_definitions(namespace="A/B", dimensions={"DAG": "d"}, alarm_actions=["arn:x"])
    for alarm in alarms:
        assert set(alarm) <= members
        assert set(shape.required_members) <= set(alarm)
        assert ("Metrics" in alarm) != ("MetricName" in alarm)  # one or the other, never both
        if "Metrics" in alarm:
            assert sum(q["ReturnData"] for q in alarm["Metrics"]) == 1
        assert alarm["AlarmActions"] == ["arn:x"]
        assert set(cloudwatch.ALARM_FIELDS) >= set(alarm) - {"AlarmName"}


def test_severity_filter_is_critical_or_high_without_or():
    alarms = _by_alert(cloudwatch.alarm_definitions(namespace="N"))
    query = alarms["AisecNewCriticalOrHighVulnerability"]["Metrics"][0]["Expression"]
    assert query == (
        "SELECT MAX(aisec_vulnerabilities) FROM \"N\" WHERE Severity != 'medium' AND Severity != 'low' "
        "AND Severity != 'info'"
    )
    increased = alarms["AisecVulnerabilityCountIncreased"]["Metrics"]
    assert [q["ReturnData"] for q in increased] == [False, True]
    assert increased[1]["Expression"] == "DIFF(m)"


def test_dimensions_narrow_every_query_and_the_name():
    alarms = cloudwatch.alarm_definitions(namespace="N", dimensions={"DAG": "prod", "Task": "audit"})
    for alarm in alarms:
        assert alarm["AlarmName"].endswith(" [DAG=prod] [Task=audit]")
        if "Metrics" in alarm:
            assert alarm["Metrics"][0]["Expression"].endswith("DAG = 'prod' AND Task = 'audit'")
        else:  # aisec_reports_stored has no dimensions: filtering it would make it always missing
            assert "Dimensions" not in alarm


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"namespace": "AWS/EC2"}, "reserved"),
        ({"namespace": 'a"b'}, "must not contain"),
        ({"dimensions": {"DAG": "x' OR 1=1 --"}}, "without quotes"),
        ({"dimensions": {"bad key": "x"}}, "KEY=VALUE"),
        ({"latency_threshold": 0}, "latency_threshold"),
        ({"latency_threshold": float("nan")}, "latency_threshold"),
        ({"missing_after": 100}, "missing_after"),
        ({"missing_after": 90_000}, "missing_after"),
    ],
)
def test_bad_input_is_refused(kwargs, match):
    with pytest.raises(AisecInputError, match=match):
        cloudwatch.alarm_definitions(**kwargs)


def test_parse_dimensions():
    assert cloudwatch.parse_dimensions(["DAG=a=b", "Task=t"]) == {"DAG": "a=b", "Task": "t"}
    with pytest.raises(AisecInputError, match="given twice"):
        cloudwatch.parse_dimensions(["DAG=a", "DAG=b"])
    with pytest.raises(AisecInputError, match="KEY=VALUE"):
        cloudwatch.parse_dimensions(["DAG"])


def test_missing_after_sets_the_window():
    alarms = _by_alert(cloudwatch.alarm_definitions(namespace="N", missing_after=3600))
    missing = alarms["AisecMetricsMissing"]
    assert missing["EvaluationPeriods"] * missing["Period"] == 3600
    assert (missing["Statistic"], missing["ComparisonOperator"], missing["Threshold"]) == (
        "SampleCount",
        "LessThanThreshold",
        1.0,
    )


class FakeCloudWatch:
    """DescribeAlarms / PutMetricAlarm over a dict, answering as CloudWatch does (extra fields, floats)."""

    def __init__(self, page_size: int = 100, deny: str | None = None) -> None:
        self.alarms: dict[str, dict[str, Any]] = {}
        self.puts: list[str] = []
        self.page_size, self.deny = page_size, deny

    def _denied(self, op: str) -> None:
        if self.deny == op:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not allowed"}}, op)

    def describe_alarms(self, AlarmNames, AlarmTypes, NextToken=None):
        self._denied("DescribeAlarms")
        found = [self.alarms[n] for n in AlarmNames if n in self.alarms]
        start = int(NextToken or 0)
        page = {"MetricAlarms": copy.deepcopy(found[start : start + self.page_size])}
        if start + self.page_size < len(found):
            page["NextToken"] = str(start + self.page_size)
        return page

    def put_metric_alarm(self, **kwargs):
        self._denied("PutMetricAlarm")
        self.puts.append(kwargs["AlarmName"])
        stored = {**copy.deepcopy(kwargs), "StateValue": "INSUFFICIENT_DATA", "OKActions": [], "Dimensions": []}
        stored["EvaluationPeriods"] = int(kwargs["EvaluationPeriods"])
        self.alarms[kwargs["AlarmName"]] = stored


def test_apply_creates_then_changes_nothing_then_updates_only_what_changed():
    client = FakeCloudWatch(page_size=3)  # several DescribeAlarms pages
    alarms = cloudwatch.alarm_definitions(namespace="N")
    first = cloudwatch.apply_alarms(client, alarms)
    assert first["summary"] == f"{len(alarms)} created, 0 updated, 0 unchanged"
    assert client.puts == [a["AlarmName"] for a in alarms]
    client.puts.clear()
    second = cloudwatch.apply_alarms(client, alarms)
    assert second["summary"] == f"0 created, 0 updated, {len(alarms)} unchanged"
    assert client.puts == []
    third = cloudwatch.apply_alarms(client, cloudwatch.alarm_definitions(namespace="N", latency_threshold=5))
    (name,) = client.puts
    assert name == "N AisecInferenceLatencySpike"
    assert third["updated"] == [name]
    assert third["changed_fields"] == {name: ["AlarmDescription", "Threshold"]}


def test_an_alarm_changed_outside_is_put_back():
    client = FakeCloudWatch()
    alarms = cloudwatch.alarm_definitions(namespace="N", alarm_actions=["arn:a"])
    cloudwatch.apply_alarms(client, alarms)
    client.alarms["N AisecSecretsFound"]["TreatMissingData"] = "notBreaching"
    client.alarms["N AisecDataDrift"]["AlarmActions"] = []
    client.alarms["N AisecDataDrift"]["Metrics"][0]["Expression"] = 'SELECT MAX(x) FROM "N"'
    result = cloudwatch.apply_alarms(client, alarms)
    assert sorted(result["updated"]) == ["N AisecDataDrift", "N AisecSecretsFound"]
    assert result["changed_fields"]["N AisecDataDrift"] == ["AlarmActions", "Metrics"]
    assert result["changed_fields"]["N AisecSecretsFound"] == ["TreatMissingData"]


def test_changed_fields_compares_numbers_as_numbers_and_lists_exactly():
    want = {"Threshold": 1.0, "EvaluationPeriods": 3, "AlarmActions": ["a"], "ActionsEnabled": True}
    assert cloudwatch.changed_fields(want, {**want, "Threshold": 1, "EvaluationPeriods": 3.0}) == []
    assert cloudwatch.changed_fields(want, {**want, "AlarmActions": ["a", "b"]}) == ["AlarmActions"]
    assert cloudwatch.changed_fields(want, {**want, "ActionsEnabled": 1}) == ["ActionsEnabled"]
    assert cloudwatch.changed_fields(want, {}) == ["ActionsEnabled", "AlarmActions", "EvaluationPeriods", "Threshold"]


@pytest.mark.parametrize("op", ["DescribeAlarms", "PutMetricAlarm"])
def test_access_denied_cannot_decide(op):
    client = FakeCloudWatch(deny=op)
    with pytest.raises(AisecUndecidableError, match="access denied to CloudWatch alarm.* \\(AccessDenied\\)"):
        cloudwatch.apply_alarms(client, cloudwatch.alarm_definitions(namespace="N"), retry=RetryPolicy(max_attempts=1))
    assert client.puts == []
