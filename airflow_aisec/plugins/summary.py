"""What the overview page and the metrics endpoint derive from stored reports (pure, no Airflow import).

All figures come from the *latest* report of each task (a finding fixed in the latest run is no longer
"open"), except drift history, which uses the last runs of each drift task.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from airflow_aisec.report import SEVERITIES

#: checks whose failure means an artifact cannot be trusted (integrity / provenance / unsafe model).
TRUST_CHECKS = ("integrity", "provenance", "model_scan")
#: report ``metrics`` names accepted as a drift share (0..1), first match wins.
DRIFT_SHARE_KEYS = ("drift_share", "share_drifted", "drifted_share", "dataset_drift_share")
#: report ``metrics`` names accepted as a p95 latency, with their factor to seconds.
LATENCY_P95_KEYS = (
    ("latency_p95_seconds", 1.0),
    ("p95_latency_seconds", 1.0),
    ("latency_p95_s", 1.0),
    ("latency_p95_ms", 0.001),
    ("p95_latency_ms", 0.001),
    ("latency_ms_p95", 0.001),
    ("p95_ms", 0.001),
)


class ReportLike(Protocol):
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    report: dict[str, Any]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:
        return None


def drift_share(report: Mapping[str, Any]) -> float | None:
    """The drift share (0..1) of a drift report, or ``None`` when it does not state one."""
    metrics = report.get("metrics") or {}
    for key in DRIFT_SHARE_KEYS:
        value = _number(metrics.get(key))
        if value is not None:
            return value
    return None


def latency_p95_seconds(report: Mapping[str, Any]) -> float | None:
    metrics = report.get("metrics") or {}
    for key, factor in LATENCY_P95_KEYS:
        value = _number(metrics.get(key))
        if value is not None:
            return value * factor
    return None


def severity_counts(findings: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    counts = dict.fromkeys(SEVERITIES, 0)
    for finding in findings:
        sev = finding.get("severity") if isinstance(finding, Mapping) else None
        if isinstance(sev, str) and sev in counts:
            counts[sev] += 1
    return counts


def max_severity(findings: Iterable[Mapping[str, Any]]) -> str | None:
    present = {f.get("severity") for f in findings if isinstance(f, Mapping) and isinstance(f.get("severity"), str)}
    for sev in SEVERITIES:
        if sev in present:
            return sev
    return None


def retrain_decision(report: Mapping[str, Any]) -> str:
    """A retrain report's decision: ``details.decision`` when given, else its summary."""
    details = report.get("details") or {}
    decision = details.get("decision") if isinstance(details, dict) else None
    return str(decision) if decision not in (None, "") else str(report.get("summary", ""))


@dataclass
class Overview:
    """Aggregates over the latest reports."""

    tasks: int = 0
    status_counts: dict[str, int] = field(default_factory=dict)
    severity_counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SEVERITIES, 0))
    open_vulnerabilities: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SEVERITIES, 0))
    trust_failures: list[Any] = field(default_factory=list)
    secrets_found: int = 0
    retrain: list[Any] = field(default_factory=list)
    drift_tasks: list[tuple[str, str]] = field(default_factory=list)
    drift_latest: dict[tuple[str, str], float] = field(default_factory=dict)
    by_dag: dict[str, dict[str, int]] = field(default_factory=dict)


def overview(latest: Iterable[ReportLike]) -> Overview:
    out = Overview()
    for row in latest:
        rep = row.report
        status = str(rep.get("status"))
        check = str(rep.get("check"))
        findings = rep.get("findings") or []
        out.tasks += 1
        out.status_counts[status] = out.status_counts.get(status, 0) + 1
        dag = out.by_dag.setdefault(row.dag_id, {"pass": 0, "warn": 0, "fail": 0, "error": 0})
        dag[status] = dag.get(status, 0) + 1
        for sev, n in severity_counts(findings).items():
            out.severity_counts[sev] += n
        if check == "dependency_audit":
            for sev, n in severity_counts(findings).items():
                out.open_vulnerabilities[sev] += n
        elif check in TRUST_CHECKS and status in ("fail", "error"):
            out.trust_failures.append(row)
        elif check == "secrets":
            out.secrets_found += sum(1 for f in findings if f.get("severity") != "info")
        elif check == "retrain":
            out.retrain.append(row)
        if check == "drift":
            key = (row.dag_id, row.task_id)
            if key not in out.drift_tasks:
                out.drift_tasks.append(key)
            share = drift_share(rep)
            if share is not None:
                out.drift_latest[key] = max(share, out.drift_latest.get(key, 0.0))
    return out


def top_drift_tasks(agg: Overview, max_dags: int) -> list[tuple[str, str]]:
    """Drift tasks of the ``max_dags`` DAGs with the highest latest drift share (charts stay bounded)."""
    dag_share: dict[str, float] = {}
    for dag_id, task_id in agg.drift_tasks:
        share = agg.drift_latest.get((dag_id, task_id), -1.0)
        dag_share[dag_id] = max(share, dag_share.get(dag_id, -1.0))
    top = set(sorted(dag_share, key=lambda d: (-dag_share[d], d))[:max_dags])
    return [task for task in agg.drift_tasks if task[0] in top]
