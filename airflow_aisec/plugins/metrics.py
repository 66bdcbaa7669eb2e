"""Prometheus text exposition (format 0.0.4) derived from the latest stored reports (pure, no Airflow import).

Every series is labelled with ``dag_id`` and ``task_id`` (plus ``map_index`` for mapped tasks, ``check``
where useful). :data:`METRICS` lists every metric family this module can export; the alert rules in
``deploy/prometheus/alerts.yml`` may only use these names (a test checks it).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from airflow_aisec.plugins.summary import TRUST_CHECKS, ReportLike, drift_share, latency_p95_seconds, severity_counts
from airflow_aisec.report import SEVERITIES, STATUSES

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: name → (type, help). Every family the endpoint exports.
METRICS: dict[str, tuple[str, str]] = {
    "aisec_reports_stored": ("gauge", "Number of aisec reports stored in Airflow's metadata DB."),
    "aisec_check_status": ("gauge", "1 for the status of the latest report of each task, else 0."),
    "aisec_check_failed": ("gauge", "1 when the latest report of a task is fail or error."),
    "aisec_check_last_report_timestamp_seconds": ("gauge", "Unix time the latest report of a task was stored."),
    "aisec_findings": ("gauge", "Findings of the latest report of each task, by severity."),
    "aisec_vulnerabilities": ("gauge", "Open vulnerabilities (latest dependency_audit reports), by severity."),
    "aisec_integrity_failure": ("gauge", "1 when the latest integrity/provenance/model_scan report is fail/error."),
    "aisec_secrets_found": ("gauge", "Secrets found by the latest secrets report (findings above info)."),
    "aisec_drift_share": ("gauge", "Share of drifted features (0..1) in the latest drift report."),
    "aisec_inference_latency_p95_seconds": ("gauge", "p95 inference latency of the latest report stating one."),
    "aisec_report_metric": ("gauge", "Every numeric metric of the latest report of each task (label name)."),
}

_LABEL_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n"})
_NAME_OK = re.compile(r"[^a-zA-Z0-9_]")


def _labels(**labels: Any) -> str:
    parts = [
        f'{k}="{str(v).encode("utf-8", "replace").decode("utf-8").translate(_LABEL_ESCAPES)}"'
        for k, v in labels.items()
        if v is not None
    ]
    return "{" + ",".join(parts) + "}"


def _value(value: float) -> str:
    try:
        value = float(value)
    except OverflowError:  # an int beyond float range
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def _timestamp(value: Any) -> float | None:
    if isinstance(value, datetime):
        return value.timestamp()
    return None


def render(latest: Iterable[ReportLike], *, stored: int) -> str:
    """The exposition text for the latest report rows (one per task) and the stored-report count."""
    series: dict[str, list[str]] = {name: [] for name in METRICS}
    series["aisec_reports_stored"].append(f"aisec_reports_stored {stored}")
    for row in latest:
        rep = row.report
        check, status = str(rep.get("check")), str(rep.get("status"))
        findings = rep.get("findings") or []
        base = {"dag_id": row.dag_id, "task_id": row.task_id}
        if row.map_index >= 0:
            base["map_index"] = str(row.map_index)
        for st in STATUSES:
            series["aisec_check_status"].append(
                f"aisec_check_status{_labels(**base, check=check, status=st)} {int(st == status)}"
            )
        failed = int(status in ("fail", "error"))
        series["aisec_check_failed"].append(f"aisec_check_failed{_labels(**base, check=check)} {failed}")
        ts = _timestamp(getattr(row, "timestamp", None))
        if ts is not None:
            series["aisec_check_last_report_timestamp_seconds"].append(
                f"aisec_check_last_report_timestamp_seconds{_labels(**base, check=check)} {_value(ts)}"
            )
        counts = severity_counts(findings)
        for sev in SEVERITIES:
            series["aisec_findings"].append(f"aisec_findings{_labels(**base, check=check, severity=sev)} {counts[sev]}")
        if check == "dependency_audit":
            for sev in SEVERITIES:
                series["aisec_vulnerabilities"].append(
                    f"aisec_vulnerabilities{_labels(**base, severity=sev)} {counts[sev]}"
                )
        if check in TRUST_CHECKS:
            series["aisec_integrity_failure"].append(f"aisec_integrity_failure{_labels(**base, check=check)} {failed}")
        if check == "secrets":
            found = sum(counts[s] for s in SEVERITIES if s != "info")
            series["aisec_secrets_found"].append(f"aisec_secrets_found{_labels(**base)} {found}")
        if check == "drift":
            share = drift_share(rep)
            if share is not None:
                series["aisec_drift_share"].append(f"aisec_drift_share{_labels(**base)} {_value(share)}")
        p95 = latency_p95_seconds(rep)
        if p95 is not None:
            series["aisec_inference_latency_p95_seconds"].append(
                f"aisec_inference_latency_p95_seconds{_labels(**base, check=check)} {_value(p95)}"
            )
        for name, value in sorted((rep.get("metrics") or {}).items()):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            series["aisec_report_metric"].append(
                f"aisec_report_metric{_labels(**base, check=check, name=_NAME_OK.sub('_', str(name)))} {_value(value)}"
            )
    lines: list[str] = []
    for name, (kind, help_text) in METRICS.items():
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(series[name])
    return "\n".join(lines) + "\n"
