"""Inference-log audit: abuse (rate), latency SLO, errors, probing and out-of-distribution inputs.

Audits the logs a model server wrote; it runs no inference itself.

Reads structured inference logs — JSON lines with ``ts`` (ISO-8601 or epoch seconds), ``client_id``,
``input_hash`` and/or ``features``, ``output``, ``latency_ms`` and ``status`` (HTTP code or
``ok``/``error``/``rate_limited``) — as written by the example model server, and reports:

* per-client rate in **rows** (a batch of 50 rows is 50) over any sliding 60-second window against a
  limit (default 10 rows per minute), clients keyed by a normalised id (:func:`normalise_client_id`).
  A client whose **served** rows exceed it means the limit is not enforced (high, AML.T0024
  exfiltration via inference API / model-extraction pattern); a client that **attempted** more but
  was throttled (HTTP 429) is reported as medium (abuse attempt, blocked);
* latency p50/p95/p99 against an SLO (p95 above it: high) and individual spikes above it (medium);
* error rate (5xx / ``error``) against a maximum;
* repeated-input probing: one client sending the same input hash many times;
* the share of out-of-distribution input rows (every row of a batch) against a reference (per-feature
  robust ranges built by :func:`build_reference_ranges` from reference data) — an adversarial/OOD
  signal (OWASP-ML01).

Log lines are untrusted: each is parsed strictly and bounded; a line that cannot be attributed to a
request is counted with its reason, and more of them than ``max_bad_line_share`` (default 0) makes
the audit ``error``. Rotated siblings of a log file are read too. Findings never contain raw
inputs or line content: only input hashes, client ids, counts, timestamps and file:line positions.

Layout: :mod:`.records` parses lines, :mod:`.logfiles` reads log files, :mod:`.ranges` builds and
loads the reference ranges, :mod:`.checks` holds the registered checks (one per finding family) and
this module the orchestrator: filter the window, measure, run every check, decide the status.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from airflow_aisec.core.inference_audit.checks import (
    CHECKS,
    F_BAD_LINES,
    F_ERRORS,
    F_IGNORED_FILES,
    F_NOT_READ,
    F_OOD,
    F_OOD_UNCHECKED,
    F_PROBING,
    F_RATE_ATTEMPT,
    F_RATE_UNENFORCED,
    F_ROWS_UNKNOWN,
    F_SLO,
    F_SPIKE,
    AuditWindow,
    ClientRate,
    Limits,
    reference_ranges,
)
from airflow_aisec.core.inference_audit.logfiles import (
    MAX_TOTAL_BYTES,
    decompress_bounded,
    is_log_name,
    read_log_lines,
    read_log_sources,
    rotated_siblings,
)
from airflow_aisec.core.inference_audit.ranges import (
    DRIFT_PROFILE_MAGIC,
    MAX_REFERENCE_FEATURES,
    REFERENCE_SCHEMA,
    build_reference_ranges,
    load_reference,
    reference_from_drift_profile,
    reference_from_profile_columns,
    validate_reference,
)
from airflow_aisec.core.inference_audit.records import (
    MAX_BATCH_ROWS,
    MAX_CLIENT_ID,
    MAX_LINE_BYTES,
    MAX_LINE_DEPTH,
    MAX_LINES,
    BadLines,
    LogLine,
    Record,
    _is_number,
    _iso,
    input_hash,
    normalise_client_id,
    parse_lines,
    parse_records,
    parse_time_arg,
    parse_timestamp,
)
from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError
from airflow_aisec.report import SEVERITIES, Report, Status, gate_status, parse_fail_on

TAGS = ("AML.T0024", "OWASP-ML01", "OWASP-ML05")

__all__ = [
    "CHECKS",
    "DRIFT_PROFILE_MAGIC",
    "F_BAD_LINES",
    "F_ERRORS",
    "F_IGNORED_FILES",
    "F_NOT_READ",
    "F_OOD",
    "F_OOD_UNCHECKED",
    "F_PROBING",
    "F_RATE_ATTEMPT",
    "F_RATE_UNENFORCED",
    "F_ROWS_UNKNOWN",
    "F_SLO",
    "F_SPIKE",
    "MAX_BATCH_ROWS",
    "MAX_CLIENT_ID",
    "MAX_LINES",
    "MAX_LINE_BYTES",
    "MAX_LINE_DEPTH",
    "MAX_REFERENCE_FEATURES",
    "MAX_TOTAL_BYTES",
    "REFERENCE_SCHEMA",
    "TAGS",
    "BadLines",
    "LogLine",
    "Record",
    "audit_log",
    "audit_records",
    "build_reference_ranges",
    "decompress_bounded",
    "input_hash",
    "is_log_name",
    "load_reference",
    "normalise_client_id",
    "parse_lines",
    "parse_rate",
    "parse_records",
    "parse_time_arg",
    "parse_timestamp",
    "read_log_lines",
    "read_log_sources",
    "reference_from_drift_profile",
    "reference_from_profile_columns",
    "rotated_siblings",
    "validate_reference",
]


def parse_rate(value: str | int | float) -> float:
    """``"10/minute"``, ``"2/second"``, ``"600/hour"`` or a number (per minute) → requests per minute."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        rate = float(value)
    else:
        text = str(value).strip().lower()
        num, _, unit = text.partition("/")
        per = {"": 1.0, "m": 1.0, "min": 1.0, "minute": 1.0, "s": 60.0, "sec": 60.0, "second": 60.0}
        per |= {"h": 1 / 60, "hour": 1 / 60}
        if unit not in per:
            raise AisecInputError(f"rate limit {value!r}: unit must be second, minute or hour")
        try:
            rate = float(num) * per[unit]
        except ValueError:
            raise AisecInputError(f"rate limit {value!r} must look like N/minute") from None
    if not math.isfinite(rate) or rate <= 0:
        raise AisecInputError(f"rate limit {value!r} must be a positive number of requests")
    return rate


def audit_records(
    records: Sequence[Record],
    *,
    subject: str = "inference log",
    rate_limit_per_minute: float = 10.0,
    latency_slo_ms: float = 500.0,
    max_error_rate: float = 0.05,
    repeat_threshold: int = 20,
    reference: Mapping[str, Any] | None = None,
    max_ood_share: float = 0.05,
    exempt_clients: Sequence[str] = (),
    since: float | None = None,
    until: float | None = None,
    bad_lines: int | BadLines = 0,
    max_bad_line_share: float = 0.0,
    sources: Mapping[str, Any] | None = None,
    fail_severity: str = "high",
) -> Report:
    """Audit parsed records; see the module docstring. Status: ``fail`` when a finding reaches
    ``fail_severity``, ``warn`` when only lower ones exist, else ``pass``; ``error`` (cannot decide)
    when the share of lines that could not be attributed exceeds ``max_bad_line_share`` (default 0:
    any such line), or when a log file next to the audited one could not be read.
    """
    parse_fail_on(fail_severity, choices=SEVERITIES, name="fail_severity")
    numbers = (latency_slo_ms, max_error_rate, max_ood_share, max_bad_line_share)
    if not all(_is_number(v) and math.isfinite(v) for v in numbers) or not _is_number(repeat_threshold):
        raise AisecInputError("thresholds must be finite numbers")
    if (
        latency_slo_ms <= 0
        or not 0 <= max_error_rate <= 1
        or not 0 <= max_ood_share <= 1
        or not 0 <= max_bad_line_share <= 1
        or repeat_threshold < 2
    ):
        raise AisecInputError(
            "latency_slo_ms > 0, 0 <= max_error_rate/max_ood_share/max_bad_line_share <= 1, repeat_threshold >= 2"
        )
    if isinstance(exempt_clients, str):
        raise AisecInputError("exempt_clients takes a list of client ids, not a string")
    bad = bad_lines if isinstance(bad_lines, BadLines) else BadLines(count=int(bad_lines))
    report = Report.start("inference_audit", subject, tags=TAGS)
    recs = [r for r in records if (since is None or r.ts >= since) and (until is None or r.ts <= until)]
    outside = len(records) - len(recs)
    if not recs:
        raise AisecUndecidableError(
            f"{subject}: no inference records in the audited window (cannot decide; "
            f"{outside} outside the window, {bad.count} line(s) not attributable)"
        )
    recs.sort(key=lambda r: r.ts)
    exempt = set(exempt_clients)  # matched exactly against the logged id: a variant is not exempt
    window = AuditWindow(
        subject=subject,
        limits=Limits(
            rate_limit_per_minute, latency_slo_ms, max_error_rate, repeat_threshold, max_ood_share, max_bad_line_share
        ),
        records=recs,
        audited=[r for r in recs if r.raw_client_id not in exempt],
        lines_parsed=len(records),
        bad=bad,
        sources=dict(sources or {}),
        ranges=reference_ranges(load_reference(reference)) if reference is not None else None,
    )
    CHECKS.run(window, report)
    report.metrics.update(_metrics(window, outside))
    report.details["clients"] = [_client_row(c) for c in window.client_rates][:200]
    report.details["window"] = {"from": _iso(recs[0].ts), "to": _iso(recs[-1].ts)}
    if window.sources:
        report.details["sources"] = {k: v[:200] for k, v in window.sources.items()}
    return _gate(report, window, fail_severity)


def _metrics(w: AuditWindow, outside: int) -> dict[str, Any]:
    p50, p95, p99 = w.latency
    ood = w.ood
    return {
        "requests": len(w.records),
        "rows": sum(r.rows for r in w.records),
        "clients": len(w.by_client),
        "clients_over_limit": w.clients_over,
        "exempt_requests": len(w.records) - len(w.audited),
        "rate_limited": sum(r.status == "rate_limited" for r in w.records),
        "latency_p50_ms": p50,
        "latency_p95_ms": p95,
        "latency_p99_ms": p99,
        "latency_slo_ms": w.limits.latency_slo_ms,
        "error_rate": w.errors[2],
        "ood_share": ood.share if ood is not None else None,
        "ood_unchecked_requests": ood.unchecked if ood is not None else 0,
        "requests_without_row_count": w.rows_unknown,
        "unparseable_lines": w.bad.count,
        "records_outside_window": outside,
        "files_read": len(w.sources.get("read", [])),
        "files_not_read": len(w.sources.get("not_read", [])),
        "window_seconds": w.records[-1].ts - w.records[0].ts,
    }


def _client_row(c: ClientRate) -> dict[str, Any]:
    return {
        "client_id": c.client_id,
        "requests": len(c.records),
        "rows": sum(r.rows for r in c.records),
        "max_rows_per_minute_attempted": c.attempted,
        "max_rows_per_minute_served": c.served,
        "rate_limited": c.throttled,
        "id_variants": len(c.variants),
    }


def _gate(report: Report, w: AuditWindow, fail_severity: str) -> Report:
    """``fail`` at ``fail_severity`` or above, ``warn`` below it (above info), else ``pass``;
    ``error`` whatever the findings when the audit cannot decide (:meth:`AuditWindow.undecidable`)."""
    status = gate_status([f.severity for f in report.findings], fail_severity)
    p95 = w.latency[1]
    p95_txt = f"{p95:.1f}" if p95 is not None else "n/a"
    ood_share = w.ood.share if w.ood is not None else None
    summary = (
        f"{len(w.records)} requests ({report.metrics['rows']} rows) from {len(w.by_client)} client(s): "
        f"{w.clients_over} over {w.limits.rate_limit_per_minute:g}/min, p95 {p95_txt} ms "
        f"(SLO {w.limits.latency_slo_ms:g}), errors {w.errors[2]:.1%}"
        + (f", OOD {ood_share:.1%}" if ood_share is not None else "")
    )
    undecidable = w.undecidable()
    if undecidable:
        status = Status.ERROR
        summary = "cannot decide: " + "; ".join(undecidable) + " — " + summary
    return report.finish(status, summary)


def audit_log(
    log: str | os.PathLike[str] | Iterable[LogLine],
    *,
    reference: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Report:
    """Audit a JSON-lines inference log (path, directory or iterable of lines); see :func:`audit_records`.

    A file path also reads its rotated siblings (``app.log.1``, ``app.log.2.gz``); a directory reads
    every log file in it. Lines that cannot be attributed are counted (see ``max_bad_line_share``).
    """
    sources = kwargs.pop("sources", None)
    if isinstance(log, (str, os.PathLike)):
        subject = os.fspath(log)
        kwargs.pop("subject", None)
        lines: Iterable[LogLine]
        lines, sources = read_log_sources(log)
    else:
        subject = kwargs.pop("subject", "inference log")
        lines = log
    records, bad = parse_lines(lines, source=subject)
    if not records:
        reasons = ", ".join(f"{k}: {n}" for k, n in bad.reasons.most_common(3))
        raise AisecUndecidableError(
            f"inference log {subject!r} has no parseable records ({bad.count} bad line(s){'; ' + reasons if reasons else ''})"
        )
    ref = load_reference(reference) if reference is not None else None
    return audit_records(records, subject=subject, reference=ref, bad_lines=bad, sources=sources, **kwargs)
