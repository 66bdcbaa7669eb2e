"""CloudWatch publishing (pure parts): the endpoint's exposition read back, datums, batches, limits."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from airflow_aisec.core.aws import cloudwatch
from airflow_aisec.exceptions import AisecInputError
from airflow_aisec.plugins.metrics import render

NOW = datetime(2026, 12, 2, tzinfo=timezone.utc)


class Row:
    def __init__(self, task_id: str, status: str, dag_id: str = "dag", **metrics: float) -> None:
        self.dag_id, self.run_id, self.task_id, self.map_index = dag_id, "r", task_id, -1
        findings = [{"id": "X", "severity": "high"}] if status == "fail" else []
        self.report = {"check": "s3_posture", "status": status, "findings": findings, "metrics": metrics}


def test_every_series_of_the_endpoint_becomes_one_datum_with_its_labels_as_dimensions():
    text = render([Row("ok", "pass", api_calls=3), Row('we"ird\\task', "fail")], stored=2)
    samples = cloudwatch.parse_exposition(text)
    assert len(samples) == sum(1 for line in text.splitlines() if line and not line.startswith("#"))
    assert {s.name for s in samples} >= {"aisec_check_failed", "aisec_findings", "aisec_report_metric"}
    found = cloudwatch.metric_datums(samples, timestamp=NOW)
    assert len(found.datums) == len(samples) + 1  # + the error rate
    failed = [d for d in found.datums if d["MetricName"] == "aisec_check_failed"]
    dims = [{x["Name"]: x["Value"] for x in d["Dimensions"]} for d in failed]
    assert sorted((d["Value"], dim["Task"]) for d, dim in zip(failed, dims, strict=True)) == [
        (0, "ok"),
        (1, 'we"ird\\task'),
    ]
    assert all(dim == {"Check": "s3_posture", "DAG": "dag", "Task": dim["Task"]} for dim in dims)
    assert {dim["Name"] for d in found.datums for dim in d.get("Dimensions", [])} <= set(cloudwatch.DIMENSIONS.values())
    (rate,) = [d for d in found.datums if d["MetricName"] == "aisec_check_error_rate"]
    assert rate["Value"] == 0.5 and "Dimensions" not in rate


def test_values_cloudwatch_cannot_store_are_skipped_and_counted():
    samples = cloudwatch.parse_exposition("a 1\nb NaN\nc +Inf\nd -Inf\n")
    found = cloudwatch.metric_datums(samples, timestamp=NOW)
    assert [d["MetricName"] for d in found.datums] == ["a"]
    assert found.skipped_non_finite == 3


def test_text_that_is_not_an_exposition_is_refused():
    with pytest.raises(AisecInputError, match="line 2 is not a Prometheus sample"):
        cloudwatch.parse_exposition("a 1\nnot a sample at all\n")
    with pytest.raises(AisecInputError, match="unreadable labels"):
        cloudwatch.parse_exposition('a{x="1",y=2} 1\n')


def test_batches_respect_the_count_and_size_limits_and_keep_every_datum_in_order():
    datums = [{"MetricName": f"m{i}", "Value": i} for i in range(2345)]
    got = list(cloudwatch.batches(datums))
    assert [len(b) for b in got] == [1000, 1000, 345]
    assert [d for b in got for d in b] == datums
    assert [len(b) for b in cloudwatch.batches(datums[:10], max_datums=4)] == [4, 4, 2]
    big = [{"MetricName": "m", "Value": 1, "Dimensions": [{"Name": "N", "Value": "v" * 1024}] * 30}] * 100
    sizes = [len(b) for b in cloudwatch.batches(big)]
    assert sum(sizes) == 100 and len(sizes) > 1  # split by size, though under 1000 datums
    with pytest.raises(AisecInputError, match="max_datums must be between 1 and 1000"):
        list(cloudwatch.batches(datums, max_datums=1001))


@pytest.mark.parametrize("namespace", ["", "AWS/S3", ":x", "n" * 256])
def test_reserved_or_invalid_namespaces_are_refused(namespace):
    with pytest.raises(AisecInputError, match="namespace must be 1-255 characters"):
        cloudwatch.check_namespace(namespace)
