"""The retrain guard under every mix of evidence: it triggers only when the evidence allows it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_aisec.core.retrain import ConsumedReport, RetrainPolicy, RetrainState, TriggerRecord, decide
from airflow_aisec.exceptions import AisecUndecidableError
from airflow_aisec.report import Report

NOW = datetime(2026, 12, 2, 12, tzinfo=timezone.utc)
STATUSES = ("pass", "warn", "fail", "error", None)  # None: the upstream task left no report
CHECKS = ("integrity", "provenance", "drift", "performance", "data_validation", "secrets")


def consumed(i: int, check: str, status: str | None) -> ConsumedReport:
    report = None if status is None else Report.start(check, f"s{i}").finish(status, f"{check} {status}").to_dict()
    return ConsumedReport(id=f"m/r/t{i}", task_id=f"t{i}", report=report)


EVIDENCE = st.lists(st.tuples(st.sampled_from(CHECKS), st.sampled_from(STATUSES)), min_size=1, max_size=6)


@settings(max_examples=400)
@given(evidence=EVIDENCE, require=st.booleans(), trigger_on=st.sampled_from([("fail",), ("warn", "fail")]))
def test_triggered_only_on_trusted_complete_evidence(evidence, require, trigger_on) -> None:
    reports = [consumed(i, c, s) for i, (c, s) in enumerate(evidence)]
    policy = RetrainPolicy(min_interval_seconds=0, max_per_day=None, require_provenance=require, trigger_on=trigger_on)
    provenance = [s for c, s in evidence if s is not None and c in ("integrity", "provenance")]
    signals = [s for c, s in evidence if s is not None and c in ("drift", "performance")]
    missing = any(s is None for _, s in evidence)
    try:
        decision = decide(reports, RetrainState(), policy, NOW).decision
    except AisecUndecidableError:
        decision = "error"
    if decision == "triggered":
        assert all(s == "pass" for s in provenance)
        assert provenance or not require
        assert any(s in trigger_on for s in signals)
    if decision == "no_drift":  # a silent pass: only when every signal was decided and none calls for retraining
        assert signals and not missing
        assert all(s not in ("error",) and s not in trigger_on for s in signals)
        assert all(s == "pass" for s in provenance) and (provenance or not require)
    if any(s != "pass" for s in provenance):
        assert decision in ("refused_provenance", "error")


@settings(max_examples=200)
@given(
    ago=st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    interval=st.floats(min_value=1, max_value=1e5, allow_nan=False),
)
def test_cooldown_cannot_be_skipped_by_a_record_in_the_future_or_recent_past(ago, interval) -> None:
    at = NOW - timedelta(seconds=ago)
    state = RetrainState(seq=1, history=(TriggerRecord(1, "aisec_retrain__000001", at),))
    policy = RetrainPolicy(min_interval_seconds=interval, max_per_day=None, require_provenance=False)
    decision = decide([consumed(0, "drift", "fail")], state, policy, NOW).decision
    elapsed = (NOW - at).total_seconds()  # what the guard sees, at microsecond resolution
    assert decision == ("triggered" if elapsed >= interval else "suppressed_cooldown")


def test_all_reports_missing_is_an_error() -> None:
    with pytest.raises(AisecUndecidableError, match="produced no evidence"):
        decide([consumed(0, "drift", None), consumed(1, "integrity", None)], RetrainState(), RetrainPolicy(), NOW)
