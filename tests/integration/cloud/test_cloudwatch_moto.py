"""CloudWatch publishing against the loopback moto server: every datum arrives (in batches within the
API limits), values read back with GetMetricData, and the error-rate alarm is created."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from airflow_aisec.core.aws import cloudwatch
from airflow_aisec.plugins.metrics import render
from tests.unit.core.test_cloudwatch import Row

pytestmark = pytest.mark.integration


class Counting:
    """The real client, with the size of every PutMetricData call recorded."""

    def __init__(self, client):
        self.client, self.sizes = client, []

    def put_metric_data(self, **kwargs):
        self.sizes.append(len(kwargs["MetricData"]))
        return self.client.put_metric_data(**kwargs)


def _value(cw, namespace, name, dimensions):
    now = datetime.now(timezone.utc)
    out = cw.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "q",
                "MetricStat": {
                    "Metric": {"Namespace": namespace, "MetricName": name, "Dimensions": dimensions},
                    "Period": 60,
                    "Stat": "Maximum",
                },
            }
        ],
        StartTime=now - timedelta(minutes=10),
        EndTime=now + timedelta(minutes=10),
    )
    return out["MetricDataResults"][0]["Values"]


def test_every_series_is_published_in_batches_and_reads_back(moto_server):
    cw = moto_server.client("cloudwatch")
    namespace = f"Test/AISec-{uuid.uuid4().hex[:6]}"
    rows = [Row(f"t{i}", "fail" if i % 10 == 0 else "pass", api_calls=i) for i in range(100)]
    text = render(rows, stored=len(rows))
    client = Counting(cw)
    result = cloudwatch.publish(client, text, namespace=namespace, timestamp=datetime.now(timezone.utc))
    expected = len(cloudwatch.parse_exposition(text)) + 1
    assert result["datums"] == expected > 1000
    assert client.sizes == [1000, expected - 1000]  # the PutMetricData limit, nothing lost
    assert result["put_metric_data_calls"] == len(client.sizes)
    listed = []
    for page in cw.get_paginator("list_metrics").paginate(Namespace=namespace):
        listed += page["Metrics"]
    assert len(listed) == expected  # one metric (name + dimensions) per datum: nothing lost or merged
    dims = [{"Name": "Check", "Value": "s3_posture"}, {"Name": "DAG", "Value": "dag"}, {"Name": "Task", "Value": "t10"}]
    assert _value(cw, namespace, "aisec_check_failed", dims) == [1.0]
    assert _value(cw, namespace, "aisec_check_error_rate", []) == [pytest.approx(0.1)]


def test_error_rate_alarm_is_created(moto_server):
    cw = moto_server.client("cloudwatch")
    namespace = f"Test/AISec-{uuid.uuid4().hex[:6]}"
    name = cloudwatch.put_error_rate_alarm(cw, namespace=namespace, threshold=0.05)
    (alarm,) = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    assert (alarm["Namespace"], alarm["MetricName"]) == (namespace, "aisec_check_error_rate")
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0.05, "GreaterThanThreshold")
