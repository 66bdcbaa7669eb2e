"""Guarded retraining: decide whether monitoring evidence should start a training run.

Retraining on drift is also a poisoning channel (OWASP ML02/ML10, ATLAS AML.T0020): whoever can push
live data can force "drift" and make the pipeline learn from their data, as often as they like. The
decision therefore goes through guards, each an explicit outcome rather than an error:

``refused_provenance``
    an integrity/provenance report of the live window is not ``pass`` (or is missing while required);
``no_drift``
    no drift/performance report calls for retraining (signals: univariate and multivariate drift,
    realised classification or regression performance, label-free estimated performance);
``suppressed_cooldown``
    the target was retrained less than ``min_interval_seconds`` ago;
``suppressed_cap``
    the target was retrained ``max_per_day`` times in the last 24 hours (rolling window);
``triggered``
    none of the above: start a run (or, in dry-run mode, say that one would start).

Everything here is pure (no Airflow import): :func:`decide` takes the consumed reports, the trigger
history (:class:`RetrainState`), the :class:`RetrainPolicy` and the current time. Each retrain the guard
starts is claimed under a sequence-numbered run id (:func:`claim_run_id`), so that two concurrent
deciders that saw the same history compete for the *same* run id and the metadata DB's unique
``(dag_id, run_id)`` lets only one of them win (see :mod:`airflow_aisec.operators.retrain`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError
from airflow_aisec.report import Report, validate

DECISIONS = ("triggered", "no_drift", "suppressed_cooldown", "suppressed_cap", "refused_provenance")
#: report checks that vouch for the live data (provenance gate)
PROVENANCE_CHECKS = ("integrity", "provenance")
#: report checks that can call for retraining (``performance_estimate``: label-free estimate)
SIGNAL_CHECKS = ("drift", "performance", "performance_estimate")
#: what kind of evidence a signal report carries (:meth:`ConsumedReport.signal_kinds`)
SIGNAL_KINDS = (
    "univariate_drift",
    "multivariate_drift",
    "classification_performance",
    "regression_performance",
    "estimated_performance",
)
#: run ids of the runs the guard starts: ``<prefix><seq>`` (zero-padded so they sort)
RUN_ID_PREFIX = "aisec_retrain__"
#: key of the trigger history in the retrain asset's state store
STATE_KEY = "aisec_retrain_state"
#: rolling window of the daily cap
DAY = timedelta(hours=24)
#: how many consumed reports' finding ids travel in the run conf
_MAX_FINDING_IDS = 20
#: tags of every retrain report: retraining on untrusted data is data/model poisoning
RETRAIN_TAGS = ("OWASP-ML02", "OWASP-ML10", "AML.T0020")


def _utc(value: datetime | str) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise AisecInputError(f"retrain state: {value!r} is not an ISO-8601 timestamp") from exc
    if value.tzinfo is None:
        raise AisecInputError(f"retrain state: timestamp {value.isoformat()} has no timezone")
    return value.astimezone(timezone.utc)


def _iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def claim_run_id(seq: int, prefix: str = RUN_ID_PREFIX) -> str:
    """Run id of the ``seq``-th retrain the guard starts (``aisec_retrain__000007``)."""
    if seq < 1:
        raise AisecInputError(f"retrain sequence number must be >= 1, not {seq}")
    return f"{prefix}{seq:06d}"


# ---------------------------------------------------------------------------------------------- policy
@dataclass(frozen=True)
class RetrainPolicy:
    """The guards' configuration.

    :param min_interval_seconds: cooldown: at most one retrain per target within this many seconds
        (``0`` disables the cooldown).
    :param max_per_day: daily cap: at most this many retrains per target in any rolling 24 hours
        (``None`` disables the cap).
    :param require_provenance: refuse when no integrity/provenance report is among the consumed
        reports (not only when one is there and does not pass).
    :param trigger_on: statuses of drift/performance reports that call for retraining.
    :param dry_run: decide and report, but start nothing and record nothing.
    """

    min_interval_seconds: float = 6 * 3600.0
    max_per_day: int | None = 4
    require_provenance: bool = True
    trigger_on: tuple[str, ...] = ("fail",)
    dry_run: bool = False

    def __post_init__(self) -> None:
        if self.min_interval_seconds < 0:
            raise AisecInputError(f"min_interval must be >= 0 seconds, not {self.min_interval_seconds}")
        if self.max_per_day is not None and self.max_per_day < 1:
            raise AisecInputError(f"max_per_day must be >= 1 (or None for no cap), not {self.max_per_day}")
        bad = [s for s in self.trigger_on if s not in ("warn", "fail")]
        if bad or not self.trigger_on:
            raise AisecInputError(f"trigger_on must be a non-empty subset of ('warn', 'fail'), not {self.trigger_on}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "min_interval_seconds": self.min_interval_seconds,
            "max_per_day": self.max_per_day,
            "require_provenance": self.require_provenance,
            "trigger_on": list(self.trigger_on),
            "dry_run": self.dry_run,
        }


# ----------------------------------------------------------------------------------------------- state
@dataclass(frozen=True)
class TriggerRecord:
    """One retrain the guard started: sequence number, run id of the target run, when."""

    seq: int
    run_id: str
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "run_id": self.run_id, "at": _iso(self.at)}


@dataclass(frozen=True)
class RetrainState:
    """The guard's memory for one target DAG: last sequence number claimed and recent triggers.

    Plain JSON through :meth:`to_dict`/:meth:`from_dict` (it is kept in Airflow's asset state store).
    ``history`` is oldest-first and only keeps what the guards need (the last 24 hours, and at least the
    most recent trigger).
    """

    seq: int = 0
    history: tuple[TriggerRecord, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> RetrainState:
        if not data:
            return cls()
        try:
            seq = int(data.get("seq", 0))
            history = tuple(
                TriggerRecord(seq=int(h["seq"]), run_id=str(h["run_id"]), at=_utc(h["at"]))
                for h in data.get("history", ())
            )
        except (TypeError, KeyError, AttributeError) as exc:
            raise AisecInputError(f"retrain state is malformed: {exc!r}") from exc
        return cls(seq=seq, history=tuple(sorted(history, key=lambda h: (h.at, h.seq))))

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "history": [h.to_dict() for h in self.history]}

    @property
    def last(self) -> TriggerRecord | None:
        return self.history[-1] if self.history else None

    def recorded(self, record: TriggerRecord, now: datetime) -> RetrainState:
        """A new state with ``record`` added, pruned to the last 24 hours (the latest is always kept)."""
        merged = {h.seq: h for h in self.history}
        merged[record.seq] = record
        ordered = sorted(merged.values(), key=lambda h: (h.at, h.seq))
        keep = [h for h in ordered if h.at > _utc(now) - DAY] or ordered[-1:]
        if ordered and keep[-1] is not ordered[-1]:
            keep.append(ordered[-1])
        return RetrainState(seq=max(self.seq, record.seq), history=tuple(keep))

    def triggers_within(self, window: timedelta, now: datetime) -> int:
        cutoff = _utc(now) - window
        return sum(1 for h in self.history if h.at > cutoff)


def find_latest_seq(count_existing: Callable[[list[int]], int], start: int, *, limit: int = 1 << 20) -> int:
    """The highest sequence number ``>= start`` whose run exists, assuming runs ``start..N`` exist.

    ``count_existing(seqs)`` returns how many of ``seqs`` have a run. Galloping then bisection:
    ``O(log N)`` calls. Returns ``start - 1`` when ``start`` itself has no run.
    """
    if start < 1:
        raise AisecInputError(f"sequence search must start at >= 1, not {start}")
    if not count_existing([start]):
        return start - 1
    low, step = start, 1  # low exists
    while True:
        high = low + step
        if high - start > limit:
            raise AisecUndecidableError(f"more than {limit} retrain runs claimed after #{start}: refusing to guess")
        if not count_existing([high]):
            break
        low, step = high, step * 2
    while high - low > 1:  # low exists, high does not
        mid = (low + high) // 2
        if count_existing([mid]):
            low = mid
        else:
            high = mid
    return low


# ----------------------------------------------------------------------------------------- the inputs
@dataclass(frozen=True)
class ConsumedReport:
    """A report read from an upstream task (``report`` is ``None`` when that task left none)."""

    id: str  # "<dag_id>/<run_id>/<task_id>": where the report came from
    task_id: str
    report: dict[str, Any] | None

    @property
    def check(self) -> str | None:
        return self.report["check"] if self.report else None

    @property
    def status(self) -> str | None:
        return self.report["status"] if self.report else None

    def role(self) -> str:
        if self.report is None:
            return "missing"
        if self.check in PROVENANCE_CHECKS:
            return "provenance"
        if self.check in SIGNAL_CHECKS:
            return "signal"
        return "context"

    def signal_kinds(self) -> list[str]:
        """The kinds of evidence in a signal report (:data:`SIGNAL_KINDS`); empty for other reports."""
        if self.report is None or self.role() != "signal":
            return []
        metrics = self.report.get("metrics") or {}
        details = self.report.get("details") or {}
        if self.check == "performance_estimate":
            return ["estimated_performance"]
        if self.check == "performance":
            regression = details.get("problem_type") == "regression"
            return ["regression_performance" if regression else "classification_performance"]
        kinds = ["univariate_drift"] if "dataset_drift" in metrics else []
        if "multivariate_drift" in metrics:
            kinds.append("multivariate_drift")
        return kinds or ["univariate_drift"]

    def brief(self) -> dict[str, Any]:
        """What travels in the training run's conf: where from, what, verdict, one line, finding ids."""
        if self.report is None:
            return {"id": self.id, "task_id": self.task_id, "role": "missing"}
        return {
            "id": self.id,
            "task_id": self.task_id,
            "role": self.role(),
            "signal_kinds": self.signal_kinds(),
            "check": self.check,
            "status": self.status,
            "subject": self.report.get("subject"),
            "summary": self.report.get("summary"),
            "finished_at": self.report.get("finished_at"),
            "finding_ids": [f["id"] for f in self.report.get("findings", [])][:_MAX_FINDING_IDS],
        }


def consume(source: Mapping[str, Any], *, dag_id: str, run_id: str) -> list[ConsumedReport]:
    """Validate the reports pulled from XCom (``{task_id: report-or-None}``), naming any bad one."""
    consumed = []
    for task_id, report in source.items():
        if report is not None:
            try:
                validate(report)
            except ValueError as exc:
                raise AisecInputError(f"XCom of upstream task {task_id!r} is not an aisec report: {exc}") from exc
        consumed.append(ConsumedReport(id=f"{dag_id}/{run_id}/{task_id}", task_id=task_id, report=report))
    if not consumed:
        raise AisecInputError("report_task_ids is empty: the retrain trigger needs at least one upstream report")
    return consumed


# ------------------------------------------------------------------------------------------ decision
@dataclass
class RetrainDecision:
    """What :func:`decide` concluded and why (all JSON-friendly through :meth:`to_dict`)."""

    decision: str
    reason: str
    reports: list[ConsumedReport]
    triggering: list[str] = field(default_factory=list)  # ids of the reports that call for retraining
    seq: int | None = None  # sequence number to claim (only when triggered)
    run_id: str | None = None  # run id to claim (only when triggered)
    cooldown_remaining_seconds: float = 0.0
    triggers_last_24h: int = 0

    def __post_init__(self) -> None:
        if self.decision not in DECISIONS:
            raise ValueError(f"decision must be one of {DECISIONS}, not {self.decision!r}")


def decide(
    reports: Sequence[ConsumedReport],
    state: RetrainState,
    policy: RetrainPolicy,
    now: datetime,
    *,
    run_id_prefix: str = RUN_ID_PREFIX,
) -> RetrainDecision:
    """Apply the guards in order: provenance gate, need, cooldown, daily cap.

    :raises AisecUndecidableError: no upstream task left a report at all (the monitoring run broke
        before producing evidence); or no report calls for retraining but the evidence is incomplete (a
        drift/performance report is ``error`` or an upstream task left no report): "no drift" would be
        a silent pass.
    """
    now = _utc(now)
    recent = state.triggers_within(DAY, now)
    base: dict[str, Any] = {"reports": list(reports), "triggers_last_24h": recent}

    if all(r.role() == "missing" for r in reports):
        names = ", ".join(r.task_id for r in reports)
        raise AisecUndecidableError(
            f"no upstream task left a report ({names}): the monitoring run produced no evidence"
        )

    # 1. provenance gate: never learn from a window whose integrity is not established
    provenance = [r for r in reports if r.role() == "provenance"]
    bad = [r for r in provenance if r.status != "pass"]
    if bad:
        names = ", ".join(f"{r.task_id} ({r.check} {r.status})" for r in bad)
        return RetrainDecision("refused_provenance", f"live data not trusted: {names}", **base)
    if policy.require_provenance and not provenance:
        missing = [r.task_id for r in reports if r.role() == "missing"]
        hint = f" (no report from {', '.join(missing)})" if missing else ""
        return RetrainDecision(
            "refused_provenance", f"no integrity/provenance report vouches for the live data{hint}", **base
        )

    # 2. need: does any drift/performance report call for retraining?
    signals = [r for r in reports if r.role() == "signal"]
    triggering = [r for r in signals if r.status in policy.trigger_on]
    if not triggering:
        undecided = [r for r in reports if r.role() == "missing" or (r.role() == "signal" and r.status == "error")]
        if undecided or not signals:
            what = ", ".join(f"{r.task_id} ({r.status or 'no report'})" for r in undecided) or "none consumed"
            raise AisecUndecidableError(f"cannot rule out drift: drift/performance evidence incomplete: {what}")
        statuses = ", ".join(f"{r.task_id} {r.status}" for r in signals)
        return RetrainDecision("no_drift", f"no drift/performance report calls for retraining ({statuses})", **base)
    why = "; ".join(f"{r.task_id}: {(r.report or {}).get('summary', '')}" for r in triggering)
    base["triggering"] = [r.id for r in triggering]

    # 3. cooldown
    last = state.last
    if last is not None and policy.min_interval_seconds > 0:
        remaining = policy.min_interval_seconds - (now - last.at).total_seconds()
        if remaining > 0:
            return RetrainDecision(
                "suppressed_cooldown",
                f"retrained {_ago(policy.min_interval_seconds - remaining)} ago (run {last.run_id}); "
                f"cooldown {_ago(policy.min_interval_seconds)}, {_ago(remaining)} left — would retrain for: {why}",
                cooldown_remaining_seconds=round(remaining, 3),
                **base,
            )

    # 4. daily cap (rolling 24 h)
    if policy.max_per_day is not None and recent >= policy.max_per_day:
        return RetrainDecision(
            "suppressed_cap",
            f"{recent} retrain(s) in the last 24 h reach the cap of {policy.max_per_day} — would retrain for: {why}",
            **base,
        )

    seq = state.seq + 1
    return RetrainDecision("triggered", f"retrain for: {why}", seq=seq, run_id=claim_run_id(seq, run_id_prefix), **base)


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}min"
    return f"{seconds / 3600:.1f}h"


# ------------------------------------------------------------------------------------------- outputs
def build_conf(decision: RetrainDecision, *, monitor: Mapping[str, Any], decided_at: datetime) -> dict[str, Any]:
    """The ``conf`` of the training run: why it runs (reports' ids and summaries) and who started it."""
    return {
        "aisec_retrain": {
            "decision": decision.decision,
            "reason": decision.reason,
            "seq": decision.seq,
            "decided_at": _iso(decided_at),
            "monitor": dict(monitor),
            "triggering_report_ids": list(decision.triggering),
            "reports": [r.brief() for r in decision.reports],
        }
    }


def build_report(
    decision: RetrainDecision,
    *,
    target_dag_id: str,
    policy: RetrainPolicy,
    state: RetrainState,
    triggered_run_id: str | None,
    conf: Mapping[str, Any] | None = None,
    attempts: int = 1,
) -> Report:
    """The ``retrain`` report. Status: ``pass`` for ``no_drift``, ``warn`` for every other decision.

    Guards are decisions, not failures: the report never has status ``fail``, so the task succeeds.
    """
    report = Report.start("retrain", target_dag_id, tags=RETRAIN_TAGS)
    d = decision.decision
    if d == "refused_provenance":
        report.add_tags("AML.M0025")
        report.add_finding(
            "AISEC-RETRAIN-REFUSED-PROVENANCE",
            "high",
            "Retraining refused: the live data's integrity/provenance is not established",
            location=target_dag_id,
            details={"reason": decision.reason},
        )
    elif d in ("suppressed_cooldown", "suppressed_cap"):
        report.add_finding(
            f"AISEC-RETRAIN-{d.upper().replace('_', '-')}",
            "medium",
            "Retraining needed but suppressed by the " + ("cooldown" if d == "suppressed_cooldown" else "daily cap"),
            location=target_dag_id,
            details={"reason": decision.reason},
        )
    elif d == "triggered":
        report.add_finding(
            "AISEC-RETRAIN-DRY-RUN" if policy.dry_run else "AISEC-RETRAIN-TRIGGERED",
            "info",
            ("Dry run: retraining would be triggered" if policy.dry_run else "Retraining triggered"),
            location=f"{target_dag_id}/{triggered_run_id}" if triggered_run_id else target_dag_id,
            details={"triggering_report_ids": decision.triggering},
        )
    prefix = "dry run: " if policy.dry_run else ""
    verb = {
        "triggered": f"would trigger {target_dag_id}" if policy.dry_run else f"triggered {target_dag_id}",
        "no_drift": "no retraining needed",
        "suppressed_cooldown": "retraining suppressed by cooldown",
        "suppressed_cap": "retraining suppressed by daily cap",
        "refused_provenance": "retraining refused by provenance gate",
    }[d]
    run = f" run {triggered_run_id}" if triggered_run_id else ""
    report.metrics.update(
        {
            "triggered": int(d == "triggered" and not policy.dry_run),
            "reports_consumed": len(decision.reports),
            "reports_missing": sum(1 for r in decision.reports if r.role() == "missing"),
            "signals_calling_for_retrain": len(decision.triggering),
            "triggers_last_24h": decision.triggers_last_24h,
            "cooldown_remaining_seconds": decision.cooldown_remaining_seconds,
            "claim_attempts": attempts,
        }
    )
    report.details.update(
        {
            "decision": d,
            "reason": decision.reason,
            "dry_run": policy.dry_run,
            "target_dag_id": target_dag_id,
            "triggered_run_id": triggered_run_id,
            "triggering_report_ids": decision.triggering,
            "reports": [r.brief() for r in decision.reports],
            "policy": policy.to_dict(),
            "state": state.to_dict(),
        }
    )
    if conf is not None:
        report.details["conf"] = dict(conf)
    return report.finish("pass" if d == "no_drift" else "warn", f"{prefix}{verb}{run}: {decision.reason}")
