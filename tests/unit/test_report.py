from __future__ import annotations

import json
import math

import pytest

from airflow_aisec.report import EXIT_CODES, SCHEMA, Report, jsonable, validate


def test_report_round_trip_is_valid_json():
    report = Report.start("integrity", "/models/m1", tags=["AML.M0014"])
    report.add_finding("AISEC-INT-CHANGED", "high", "File changed", location="w.bin", details={"n": 1})
    report.metrics["files"] = 3
    data = report.finish().to_dict()
    assert data["schema"] == SCHEMA
    assert data["status"] == "fail"
    assert json.loads(json.dumps(data)) == data
    assert Report.from_dict(data).to_dict()["findings"] == data["findings"]


def test_status_derived_from_findings():
    report = Report.start("drift", "x")
    report.add_finding("INFO", "info", "just so you know")
    assert report.finish().status == "pass"
    assert Report.start("drift", "x").finish("warn", "careful").summary == "careful"


def test_error_report_and_exit_codes():
    data = Report.start("secrets", "repo").error("not a git repository").to_dict()
    assert data["status"] == "error"
    assert EXIT_CODES[data["status"]] == 2
    assert EXIT_CODES["fail"] == 1
    assert EXIT_CODES["pass"] == 0


def test_jsonable_handles_numpy_and_nan():
    np = pytest.importorskip("numpy")
    out = jsonable({"a": np.float64(1.5), "b": np.int64(3), "c": float("nan"), "d": np.array([1, 2]), "e": (1,)})
    assert out == {"a": 1.5, "b": 3, "c": None, "d": [1, 2], "e": [1]}
    assert not any(isinstance(v, float) and math.isnan(v) for v in out.values())


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: d.update(schema="other"), "schema"),
        (lambda d: d.update(check="nope"), "check"),
        (lambda d: d.update(status="ok"), "status"),
        (lambda d: d.pop("summary"), "summary"),
        (lambda d: d["metrics"].update(x="1"), "metrics"),
        (lambda d: d["findings"].append({"id": "x"}), "finding 0 is missing"),
    ],
)
def test_validate_rejects_malformed_reports(mutate, match):
    data = Report.start("integrity", "x").finish().to_dict()
    mutate(data)
    with pytest.raises(ValueError, match=match):
        validate(data)


def test_invalid_severity_and_check_are_rejected():
    with pytest.raises(ValueError, match="severity"):
        Report.start("integrity", "x").add_finding("X", "urgent", "t")
    with pytest.raises(ValueError, match="check"):
        Report.start("not-a-check", "x")
