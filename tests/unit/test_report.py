from __future__ import annotations

import json
import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_aisec.exceptions import AisecInputError
from airflow_aisec.report import (
    EXIT_CODES,
    FAIL_ON_CHOICES,
    SCHEMA,
    SEVERITIES,
    SEVERITY_RANK,
    Report,
    Severity,
    Status,
    gate_status,
    jsonable,
    parse_fail_on,
    parse_severity,
    validate,
)


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


# ------------------------------------------------------------------------------------ the one gate
_severities = st.lists(st.sampled_from(SEVERITIES), max_size=8)


def _threshold_rank(fail_on: str) -> int:
    return SEVERITY_RANK["info" if fail_on == "any" else fail_on]


@given(severities=_severities, fail_on=st.sampled_from(FAIL_ON_CHOICES), degraded=st.booleans())
def test_gate_fails_iff_a_finding_reaches_the_threshold(severities, fail_on, degraded):
    report = Report.start("drift", "x")
    for i, sev in enumerate(severities):
        report.add_finding(f"F{i}", sev, "t")
    status = report.finish(fail_on=fail_on, degraded=degraded).status
    reaches = any(SEVERITY_RANK[s] >= _threshold_rank(fail_on) for s in severities)
    notable = any(s != "info" for s in severities)
    expected = "fail" if reaches else "warn" if (notable or degraded) else "pass"
    assert status == expected
    assert status == gate_status(severities, fail_on, degraded=degraded)
    assert report.to_dict()["status"] == expected


@given(severities=_severities, fail_on=st.sampled_from(FAIL_ON_CHOICES), degraded=st.booleans())
def test_gate_never_downgrades_error(severities, fail_on, degraded):
    report = Report.start("drift", "x", tags=())
    for i, sev in enumerate(severities):
        report.add_finding(f"F{i}", sev, "t")
    report.status = Status.ERROR
    assert report.finish(fail_on=fail_on, degraded=degraded).status == "error"
    assert Report.start("drift", "x").finish("error").status == "error"
    assert gate_status(severities, fail_on, degraded=degraded) != "error"


def test_gate_weighs_the_given_severities_not_only_listed_findings():
    report = Report.start("secrets", "repo")
    assert report.finish(fail_on="high", severities=["medium", "high"]).status == "fail"
    report = Report.start("secrets", "repo")
    report.add_finding("F", "high", "listed")
    assert report.finish(fail_on="high", severities=[]).status == "pass"


def test_finish_refuses_a_status_and_gate_inputs_together():
    with pytest.raises(ValueError, match="either a status or the gate's inputs"):
        Report.start("drift", "x").finish("pass", fail_on="high")


def test_default_gate_is_low_and_info_only_passes():
    report = Report.start("drift", "x")
    report.add_finding("F", "low", "t")
    assert report.finish().status == "fail"
    report = Report.start("drift", "x")
    report.add_finding("F", "info", "t")
    assert report.finish(fail_on="any").status == "fail"


@pytest.mark.parametrize("spelling", ["HIGH", " high", "", "none", "all", None, 3, "info "])
def test_parse_fail_on_rejects_unknown_spellings_naming_them(spelling):
    with pytest.raises(AisecInputError, match=r"fail_on must be one of .*not " + re.escape(repr(spelling))):
        parse_fail_on(spelling)


def test_parse_fail_on_honours_each_checks_choices():
    assert parse_fail_on("any") is Severity.INFO
    assert parse_fail_on("medium", choices=("high", "medium")) is Severity.MEDIUM
    with pytest.raises(ValueError, match=r"secret_gate must be one of \('high', 'medium'\), not 'low'"):
        parse_fail_on("low", choices=("high", "medium"), name="secret_gate")
    with pytest.raises(ValueError, match="not 'bogus'"):
        parse_fail_on("bogus", choices=("bogus",))  # a choice outside the vocabulary is still refused
    with pytest.raises(ValueError, match="severity must be one of"):
        parse_severity("severe")


def test_enums_serialise_as_the_same_json_strings():
    report = Report.start("drift", "x")
    report.add_finding("F", Severity.HIGH, "t")
    data = report.finish().to_dict()
    assert data["status"] == "fail" and type(data["status"]) is str
    assert type(data["findings"][0]["severity"]) is str
    assert json.dumps(data["findings"][0]["severity"]) == '"high"'
    assert f"{Status.WARN}/{Severity.LOW}" == "warn/low"
    rebuilt = Report.from_dict(json.loads(json.dumps(data)))
    assert rebuilt.status is Status.FAIL and rebuilt.findings[0].severity is Severity.HIGH
    assert json.dumps(rebuilt.to_dict(), sort_keys=True) == json.dumps(data, sort_keys=True)
