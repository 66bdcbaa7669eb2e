"""A malformed value under the ``aisec_report`` XCom key (any task can push one) must not take the
overview, the task page's tables or ``/metrics`` down for everyone: no traceback, valid UTF-8 out."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from airflow_aisec.plugins import metrics, store, summary
from airflow_aisec.report import SCHEMA

BASE = {"schema": SCHEMA, "check": "drift", "status": "pass", "summary": "ok", "findings": [], "metrics": {}}
HOSTILE = {
    "huge int metric": {"metrics": {"drift_share": 10**400, "latency_p95_ms": -(10**400), "x": 10**400}},
    "lone surrogate": {"check": "drift\ud800", "summary": "\udfff", "metrics": {"a\ud800": 1}},
    "findings not objects": {"findings": [1, "x", None, [{"severity": "high"}]]},
    "unhashable severity": {"findings": [{"severity": ["high"]}, {"severity": {"a": 1}}]},
    "findings not a list": {"findings": {"severity": "high"}},
    "huge int in a details table": {"details": {"features": [{"name": "a", "psi": 10**400}, {"name": "b", "psi": 1}]}},
    "non-finite floats": {
        "metrics": {"p": float("nan"), "q": float("inf")},
        "details": {"t": [{"n": "a", "s": -float("inf")}]},
    },
    "deep nesting": {"details": {"d": json.loads("[" * 200 + "]" * 200)}},
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
@pytest.mark.parametrize("as_text", [False, True])
def test_a_malformed_stored_report_never_breaks_metrics_or_the_overview(case: str, as_text: bool) -> None:
    value = {**BASE, **HOSTILE[case]}
    stored = json.dumps(value) if as_text else value  # XCom may hand over text or the decoded object
    report = store._as_report(stored)
    assert report is not None
    row = store.StoredReport("d", "r", "t", -1, datetime.now(timezone.utc), report)
    body = metrics.render([row], stored=1)
    body.encode("utf-8")  # a lone surrogate would make the response fail to encode (HTTP 500)
    assert 'aisec_check_failed{dag_id="d",task_id="t"' in body
    agg = summary.overview([row])
    assert agg is not None
    json.dumps(report, ensure_ascii=False, allow_nan=False).encode("utf-8")  # what the JSON route sends


def test_a_huge_int_in_a_details_table_is_shown_not_charted() -> None:
    from airflow_aisec.plugins.app import _detail_tables

    report = store._as_report({**BASE, **HOSTILE["huge int in a details table"]})
    assert report is not None
    (table,) = _detail_tables(report)
    assert table["total"] == 2
