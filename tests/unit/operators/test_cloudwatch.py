"""CloudWatchMetricsOperator: construction, templating, the report directory (publishing against a real
CloudWatch API is in tests/integration/cloud/test_operators_cloud.py)."""

from __future__ import annotations

import json
import os

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_aisec.operators.cloudwatch import CloudWatchMetricsOperator, latest_reports_in


def test_template_fields_and_lazy_hook():
    assert CloudWatchMetricsOperator.template_fields == (
        "report_task_ids",
        "report_dir",
        "namespace",
        "alarm_name",
        "aws_conn_id",
        "region_name",
        "verify",
    )
    op = CloudWatchMetricsOperator(task_id="t", report_task_ids="a,b", aws_conn_id="nope")
    assert "hook" not in op.__dict__
    assert op._hook_parameters["client_type"] == "cloudwatch"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "needs report_task_ids or report_dir"),
        ({"report_dir": "d", "max_datums": 1001}, "max_datums must be between 1 and 1000"),
        ({"report_dir": "d", "alarm_threshold": 1.5}, r"alarm_threshold must be a share in \[0, 1\)"),
        ({"report_dir": "d", "max_attempts": 0}, "max_attempts must be at least 1"),
    ],
)
def test_constructor_validates(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CloudWatchMetricsOperator(task_id="t", **kwargs)


def _write(path, report, mtime):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report))
    os.utime(path, (mtime, mtime))


def test_report_dir_gives_the_latest_report_of_each_task(tmp_path):
    _write(tmp_path / "d" / "run1" / "scan.json", {"check": "model_scan", "status": "fail"}, 1000)
    _write(tmp_path / "d" / "run2" / "scan.json", {"check": "model_scan", "status": "pass"}, 2000)
    _write(tmp_path / "d" / "run1" / "map.3.json", {"check": "drift", "status": "warn"}, 1000)
    rows = latest_reports_in(str(tmp_path))
    got = sorted((r.dag_id, r.task_id, r.map_index, r.run_id, r.report["status"]) for r in rows)
    assert got == [("d", "map", 3, "run1", "warn"), ("d", "scan", -1, "run2", "pass")]


def test_an_unreadable_stored_report_fails_instead_of_being_left_out(tmp_path):
    (tmp_path / "d" / "r").mkdir(parents=True)
    (tmp_path / "d" / "r" / "t.json").write_text("{not json")
    with pytest.raises(AirflowFailException, match=r"stored report .*t\.json cannot be read"):
        latest_reports_in(str(tmp_path))
    with pytest.raises(AirflowFailException, match="is not a directory"):
        latest_reports_in(str(tmp_path / "missing"))
