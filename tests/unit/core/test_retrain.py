"""Pure decision logic of the retrain guard (no Airflow)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from airflow_aisec.core import retrain as core
from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError
from airflow_aisec.report import Report, validate

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


def _report(check: str, status: str, summary: str = "", findings: tuple[str, ...] = ()) -> dict:
    r = Report.start(check, "live-window")
    for fid in findings:
        r.add_finding(fid, "high", "x")
    return r.finish(status, summary or f"{check} {status}").to_dict()


def _consumed(**reports: dict | None) -> list[core.ConsumedReport]:
    return core.consume(reports, dag_id="mon", run_id="r1")


def _state(*ages_seconds: float) -> core.RetrainState:
    state = core.RetrainState()
    for i, age in enumerate(sorted(ages_seconds, reverse=True), start=1):
        state = state.recorded(core.TriggerRecord(i, core.claim_run_id(i), NOW - timedelta(seconds=age)), NOW)
    return state


POLICY = core.RetrainPolicy(min_interval_seconds=3600, max_per_day=2)
DRIFT = {"integrity": _report("integrity", "pass"), "drift": _report("drift", "fail", "3/4 features drifted")}


def test_drift_with_verified_window_triggers_the_next_claim():
    d = core.decide(_consumed(**DRIFT), _state(7200), POLICY, NOW)
    assert d.decision == "triggered"
    assert (d.seq, d.run_id) == (2, "aisec_retrain__000002")
    assert d.triggering == ["mon/r1/drift"]
    assert "3/4 features drifted" in d.reason


def test_provenance_gate_comes_first_even_with_drift():
    reports = {**DRIFT, "integrity": _report("integrity", "fail", "window hash mismatch")}
    d = core.decide(_consumed(**reports), core.RetrainState(), POLICY, NOW)
    assert d.decision == "refused_provenance"
    assert "integrity (integrity fail)" in d.reason


def test_missing_provenance_report_is_refused_when_required_and_named():
    d = core.decide(_consumed(drift=DRIFT["drift"], integrity=None), core.RetrainState(), POLICY, NOW)
    assert d.decision == "refused_provenance"
    assert "no report from integrity" in d.reason
    relaxed = core.RetrainPolicy(require_provenance=False, min_interval_seconds=0)
    assert core.decide(_consumed(drift=DRIFT["drift"]), core.RetrainState(), relaxed, NOW).decision == "triggered"


def test_no_report_at_all_is_undecidable_not_a_refusal():
    with pytest.raises(AisecUndecidableError, match=r"no upstream task left a report \(integrity, drift\)"):
        core.decide(_consumed(integrity=None, drift=None), core.RetrainState(), POLICY, NOW)


def test_no_drift_when_every_signal_passes():
    reports = {"integrity": _report("integrity", "pass"), "drift": _report("drift", "pass")}
    d = core.decide(_consumed(**reports), _state(10), POLICY, NOW)
    assert d.decision == "no_drift"
    assert d.run_id is None


def test_warn_triggers_only_when_asked():
    reports = {"integrity": _report("integrity", "pass"), "perf": _report("performance", "warn")}
    assert core.decide(_consumed(**reports), core.RetrainState(), POLICY, NOW).decision == "no_drift"
    eager = core.RetrainPolicy(trigger_on=("warn", "fail"))
    assert core.decide(_consumed(**reports), core.RetrainState(), eager, NOW).decision == "triggered"


@pytest.mark.parametrize(
    "signals",
    [
        {"drift": _report("drift", "error", "reference missing")},
        {"drift": _report("drift", "pass"), "perf": None},
        {},
    ],
)
def test_incomplete_evidence_without_drift_fails_closed(signals):
    reports = {"integrity": _report("integrity", "pass"), **signals}
    with pytest.raises(AisecUndecidableError, match="cannot rule out drift"):
        core.decide(_consumed(**reports), core.RetrainState(), POLICY, NOW)


def test_cooldown_suppresses_within_min_interval_and_releases_after():
    d = core.decide(_consumed(**DRIFT), _state(600), POLICY, NOW)
    assert d.decision == "suppressed_cooldown"
    assert d.cooldown_remaining_seconds == pytest.approx(3000)
    assert core.decide(_consumed(**DRIFT), _state(3601), POLICY, NOW).decision == "triggered"


def test_daily_cap_is_a_rolling_24h_window():
    assert core.decide(_consumed(**DRIFT), _state(80000, 4000), POLICY, NOW).decision == "suppressed_cap"
    assert core.decide(_consumed(**DRIFT), _state(90000, 4000), POLICY, NOW).decision == "triggered"


def test_state_round_trips_and_prunes_to_24h_keeping_the_latest():
    state = _state(200000, 100000, 50)
    assert [h.seq for h in state.history] == [3]
    assert state.seq == 3
    again = core.RetrainState.from_dict(state.to_dict())
    assert again == state
    old_only = _state(200000, 100000)
    assert [h.seq for h in old_only.history] == [2]


def test_malformed_state_and_reports_name_the_input():
    with pytest.raises(AisecInputError, match="retrain state is malformed"):
        core.RetrainState.from_dict({"seq": 1, "history": [{"seq": 1}]})
    with pytest.raises(AisecInputError, match="not an ISO-8601"):
        core.RetrainState.from_dict({"history": [{"seq": 1, "run_id": "x", "at": "yesterday"}]})
    with pytest.raises(AisecInputError, match="upstream task 'drift' is not an aisec report"):
        core.consume({"drift": {"status": "fail"}}, dag_id="d", run_id="r")
    with pytest.raises(AisecInputError, match="report_task_ids is empty"):
        core.consume({}, dag_id="d", run_id="r")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_interval_seconds": -1}, "min_interval"),
        ({"max_per_day": 0}, "max_per_day"),
        ({"trigger_on": ("pass",)}, "trigger_on"),
    ],
)
def test_policy_validation(kwargs, message):
    with pytest.raises(AisecInputError, match=message):
        core.RetrainPolicy(**kwargs)


@pytest.mark.parametrize(("start", "existing"), [(1, 0), (1, 1), (1, 5), (3, 17), (4, 4), (1, 1000)])
def test_find_latest_seq_gallops_to_the_last_existing_claim(start, existing):
    calls = []

    def count(seqs):
        calls.append(seqs)
        return sum(1 for s in seqs if s <= existing)

    expected = existing if existing >= start else start - 1
    assert core.find_latest_seq(count, start) == expected
    assert len(calls) <= 2 * max(1, existing).bit_length() + 2


def test_conf_and_report_carry_ids_summaries_and_decision():
    reports = {**DRIFT, "drift": _report("drift", "fail", "psi high", findings=("AISEC-DRIFT-PSI",))}
    d = core.decide(_consumed(**reports), core.RetrainState(), POLICY, NOW)
    conf = core.build_conf(d, monitor={"dag_id": "mon", "run_id": "r1", "task_id": "retrain"}, decided_at=NOW)
    body = conf["aisec_retrain"]
    assert body["triggering_report_ids"] == ["mon/r1/drift"]
    by_task = {r["task_id"]: r for r in body["reports"]}
    assert by_task["drift"]["summary"] == "psi high"
    assert by_task["drift"]["finding_ids"] == ["AISEC-DRIFT-PSI"]
    assert by_task["integrity"]["role"] == "provenance"
    report = core.build_report(
        d, target_dag_id="train", policy=POLICY, state=core.RetrainState(), triggered_run_id=d.run_id, conf=conf
    ).to_dict()
    validate(report)
    assert report["status"] == "warn"
    assert report["details"]["decision"] == "triggered"
    assert report["metrics"]["triggered"] == 1
    assert report["details"]["conf"] == conf


def test_dry_run_report_says_would_and_counts_no_trigger():
    policy = core.RetrainPolicy(dry_run=True)
    d = core.decide(_consumed(**DRIFT), core.RetrainState(), policy, NOW)
    report = core.build_report(
        d, target_dag_id="train", policy=policy, state=core.RetrainState(), triggered_run_id=None
    )
    data = report.to_dict()
    assert data["summary"].startswith("dry run: would trigger train")
    assert data["metrics"]["triggered"] == 0
    assert data["findings"][0]["id"] == "AISEC-RETRAIN-DRY-RUN"


def test_refusal_report_is_warn_with_a_high_finding():
    reports = {**DRIFT, "integrity": _report("integrity", "fail")}
    d = core.decide(_consumed(**reports), core.RetrainState(), POLICY, NOW)
    data = core.build_report(d, target_dag_id="t", policy=POLICY, state=core.RetrainState(), triggered_run_id=None)
    out = data.to_dict()
    assert out["status"] == "warn"
    assert out["findings"][0]["id"] == "AISEC-RETRAIN-REFUSED-PROVENANCE"
    assert "AML.M0025" in out["tags"]


def test_label_free_estimate_and_multivariate_drift_are_signals_with_kinds():
    estimate = _report("performance_estimate", "fail", "estimated degradation: accuracy≈0.71")
    d = core.decide(_consumed(integrity=_report("integrity", "pass"), estimate=estimate), _state(), POLICY, NOW)
    assert d.decision == "triggered" and d.triggering == ["mon/r1/estimate"]
    multivariate = Report.start("drift", "live-window")
    multivariate.metrics.update(dataset_drift=0, multivariate_drift=1)
    regression = Report.start("performance", "live-window")
    regression.details["problem_type"] = "regression"
    consumed = _consumed(
        integrity=_report("integrity", "pass"),
        drift=multivariate.finish("fail").to_dict(),
        perf=regression.finish("pass").to_dict(),
        estimate=estimate,
    )
    kinds = {r.task_id: r.brief()["signal_kinds"] for r in consumed}
    assert kinds == {
        "integrity": [],
        "drift": ["univariate_drift", "multivariate_drift"],
        "perf": ["regression_performance"],
        "estimate": ["estimated_performance"],
    }
    assert set().union(*kinds.values()) <= set(core.SIGNAL_KINDS)
