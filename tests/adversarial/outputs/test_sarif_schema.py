"""Any report, however hostile its strings and details, renders as schema-valid SARIF 2.1.0."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_aisec.cli._common import emit
from airflow_aisec.outputs.sarif import FINGERPRINT_KEY, dumps, report_to_sarif
from airflow_aisec.report import CHECKS, SEVERITIES, STATUSES, validate
from tests.adversarial.strategies import json_values
from tests.sarif_helpers import assert_valid_sarif

_text = st.text(max_size=40)
_locations = st.one_of(
    _text,
    st.builds(lambda p, n: f"{p}:{n}", _text, st.integers(-5, 2**40)),
    st.sampled_from(["", "a.py:0", "C:\\x\\y.py:3", "s3://b/k", "/etc/passwd:1", "torch==2.0", "x\n:1", "%41:2"]),
)
_details = st.one_of(
    st.dictionaries(st.text(max_size=8), json_values(), max_size=4),
    st.fixed_dictionaries(
        {"file": st.one_of(_text, json_values()), "line": st.one_of(st.integers(-3, 2**40), json_values())}
    ),
)
_findings = st.fixed_dictionaries(
    {
        "id": _text,
        "severity": st.sampled_from(SEVERITIES),
        "title": _text,
        "location": _locations,
        "details": _details,
    }
)
_reports = st.fixed_dictionaries(
    {
        "schema": st.just("aisec.report/v1"),
        "check": st.sampled_from(CHECKS),
        "status": st.sampled_from(STATUSES),
        "subject": _text,
        "summary": _text,
        "metrics": st.dictionaries(st.text(max_size=6), st.none() | st.integers() | st.floats(allow_nan=False)),
        "findings": st.lists(_findings, max_size=5),
        "tags": st.lists(_text, max_size=3),
        "started_at": _text,
        "finished_at": _text,
        "tool": st.fixed_dictionaries({"name": _text, "version": _text}),
    }
)


@settings(max_examples=300)
@given(_reports)
def test_any_report_gives_schema_valid_sarif(report):
    validate(report)
    log = report_to_sarif(report)
    assert_valid_sarif(log)
    assert_valid_sarif(json.loads(dumps(report)))  # and survives its own serialisation
    run = log["runs"][0]
    assert run["invocations"][0]["executionSuccessful"] is (report["status"] != "error")
    if report["status"] != "error":
        assert len(run["results"]) == len(report["findings"])
        rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
        assert len(rule_ids) == len(set(rule_ids))
        for result in run["results"]:
            assert rule_ids[result["ruleIndex"]] == result["ruleId"]
            assert len(result["partialFingerprints"][FINGERPRINT_KEY]) == 64


@settings(max_examples=50)
@given(_reports)
def test_rendering_is_deterministic_and_emit_keeps_exit_codes(report):
    import io

    out = io.StringIO()
    code = emit(report, "sarif", out)
    assert code == {"pass": 0, "warn": 0, "fail": 1, "error": 2}[report["status"]]
    assert out.getvalue() == dumps(report) == dumps(json.loads(json.dumps(report)))
