"""The inference-log audit's checks: each compares one measurement of the audited window to its limit.

:class:`AuditWindow` holds the records of the audited window and measures them once (per-client
rates, latency percentiles, error rate, out-of-distribution share); every check registered in
:data:`CHECKS` reads those measurements and returns its findings. The orchestrator
(:func:`airflow_aisec.core.inference_audit.audit_records`) runs them in registration order, which is
the order of the findings in the report.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from airflow_aisec.core.checks import CheckRegistry, Outcome
from airflow_aisec.core.inference_audit.ranges import _is_ood
from airflow_aisec.core.inference_audit.records import BadLines, Record, _iso, input_hash
from airflow_aisec.exceptions import AisecUndecidableError
from airflow_aisec.utils.stats import percentile

F_RATE_UNENFORCED = "AISEC-INF-RATE-LIMIT-EXCEEDED"
F_RATE_ATTEMPT = "AISEC-INF-RATE-LIMIT-ABUSE-BLOCKED"
F_SLO = "AISEC-INF-LATENCY-SLO"
F_SPIKE = "AISEC-INF-LATENCY-SPIKE"
F_ERRORS = "AISEC-INF-ERROR-RATE"
F_PROBING = "AISEC-INF-REPEATED-INPUT"
F_OOD = "AISEC-INF-OOD-SHARE"
F_BAD_LINES = "AISEC-INF-UNPARSEABLE-LOG"
F_NOT_READ = "AISEC-INF-LOG-NOT-READ"
F_IGNORED_FILES = "AISEC-INF-FILES-IGNORED"
F_OOD_UNCHECKED = "AISEC-INF-OOD-UNCHECKED"
F_ROWS_UNKNOWN = "AISEC-INF-ROWS-UNKNOWN"


def _row_key(row: Sequence[float]) -> str:
    """The input a row *means* to the model: every value as a float, ``-0.0`` as ``0.0``. ``[1, 0]``,
    ``[1.0, 0.0]`` and ``[1, -0.0]`` are one input (the model sees the same floats), so writing one
    probe in different number spellings does not split the repeat count."""
    values: list[float | int] = []
    for v in row:
        try:
            values.append(float(v) + 0.0)
        except OverflowError:  # an int beyond float range: kept exact
            values.append(v)
    return input_hash(values)


def _max_in_window(times: Sequence[float], window: float, weights: Sequence[int] | None = None) -> tuple[int, float]:
    """Largest total weight (rows; 1 per event by default) in any window of ``window`` seconds, and
    where it starts. ``times`` must be sorted."""
    best, start, j, total = 0, times[0] if times else 0.0, 0, 0
    for i, t in enumerate(times):
        total += weights[i] if weights is not None else 1
        while t - times[j] >= window:
            total -= weights[j] if weights is not None else 1
            j += 1
        if total > best:
            best, start = total, times[j]
    return best, start


@dataclass(frozen=True)
class Limits:
    """The audit's thresholds (validated by the orchestrator)."""

    rate_limit_per_minute: float
    latency_slo_ms: float
    max_error_rate: float
    repeat_threshold: int
    max_ood_share: float
    max_bad_line_share: float


@dataclass
class ClientRate:
    """One client's request rate, in rows per sliding 60-second window (a batch of 50 rows is 50)."""

    client_id: str
    records: list[Record]
    attempted: int
    attempted_start: float
    served: int
    served_start: float
    throttled: int
    variants: list[str]


@dataclass
class OodShare:
    """Out-of-distribution rows against the reference ranges (every row of a batch is checked)."""

    rows: int
    ood: int
    share: float
    requests_with_features: int
    malformed_requests: int
    per_client: Counter[str]
    ood_hashes: set[str]
    unchecked: int


@dataclass
class AuditWindow:
    """The records of the audited window (sorted by time) and what is measured on them."""

    subject: str
    limits: Limits
    records: list[Record]  # in the window, sorted by time
    audited: list[Record]  # ``records`` minus exempt clients
    lines_parsed: int  # records before the window filter
    bad: BadLines
    sources: dict[str, Any]
    ranges: list[tuple[float, float]] | None = None
    by_client: dict[str, list[Record]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        grouped: dict[str, list[Record]] = defaultdict(list)
        for r in self.audited:
            grouped[r.client_id].append(r)
        self.by_client = dict(grouped)

    @cached_property
    def client_rates(self) -> list[ClientRate]:
        out = []
        for client, rows in sorted(self.by_client.items()):
            attempted, a_start = _max_in_window([r.ts for r in rows], 60.0, [r.rows for r in rows])
            served_recs = [r for r in rows if r.status != "rate_limited"]
            served, s_start = (
                _max_in_window([r.ts for r in served_recs], 60.0, [r.rows for r in served_recs])
                if served_recs
                else (0, 0.0)
            )
            throttled = sum(r.status == "rate_limited" for r in rows)
            variants = sorted({r.raw_client_id for r in rows})
            out.append(ClientRate(client, rows, attempted, a_start, served, s_start, throttled, variants))
        return out

    @property
    def clients_over(self) -> int:
        limit = self.limits.rate_limit_per_minute
        return sum(1 for c in self.client_rates if c.served > limit or c.attempted > limit)

    @cached_property
    def rows_unknown(self) -> int:
        return sum(1 for r in self.audited if not r.rows_known and r.status != "rate_limited")

    @cached_property
    def latency(self) -> tuple[float | None, float | None, float | None]:
        lat = sorted(r.latency_ms for r in self.records if r.latency_ms is not None and r.status in ("ok", "error"))
        p50, p95, p99 = (percentile(lat, q) for q in (50, 95, 99))
        return p50, p95, p99

    @cached_property
    def errors(self) -> tuple[int, int, float]:
        errors = sum(r.status == "error" for r in self.records)
        answered = sum(r.status in ("ok", "error") for r in self.records)
        return errors, answered, errors / answered if answered else 0.0

    @cached_property
    def ood(self) -> OodShare | None:
        """``None`` without a reference; refuses (cannot decide) when no record carries features."""
        if self.ranges is None:
            return None
        with_features = [r for r in self.audited if r.features is not None or r.malformed_features]
        unchecked = sum(1 for r in self.audited if r.features is None and not r.malformed_features and r.status == "ok")
        if not with_features:
            raise AisecUndecidableError(
                f"{self.subject}: a reference profile was given but no record carries features "
                "(cannot compute OOD share)"
            )
        n_rows = 0
        n_ood = 0
        per_client: Counter[str] = Counter()
        ood_hashes: set[str] = set()
        for r in with_features:
            if r.malformed_features:  # logged features that are not numeric rows: out of distribution
                n_rows += r.rows
                bad_rows = r.rows
            else:
                rows_data = r.features or []
                n_rows += len(rows_data)
                bad_rows = sum(1 for row in rows_data if _is_ood(row, self.ranges))
            if bad_rows:
                n_ood += bad_rows
                per_client[r.client_id] += bad_rows
                if r.input_hash:
                    ood_hashes.add(r.input_hash)
        return OodShare(
            rows=n_rows,
            ood=n_ood,
            share=n_ood / n_rows if n_rows else 1.0,
            requests_with_features=len(with_features),
            malformed_requests=sum(1 for r in with_features if r.malformed_features),
            per_client=per_client,
            ood_hashes=ood_hashes,
            unchecked=unchecked,
        )

    @property
    def lines_total(self) -> int:
        return self.bad.count + self.lines_parsed

    @property
    def bad_share(self) -> float:
        return self.bad.count / self.lines_total if self.lines_total else 0.0

    def undecidable(self) -> list[str]:
        """Why the audit cannot decide: too many lines not attributable, log files not read."""
        reasons = []
        if self.bad.count and self.bad_share > self.limits.max_bad_line_share:
            reasons.append(f"{self.bad.count} of {self.lines_total} line(s) could not be attributed")
        if self.sources.get("not_read"):
            reasons.append(f"{len(self.sources['not_read'])} log file(s) not read")
        return reasons


#: The audit's checks, in report order.
CHECKS = CheckRegistry[AuditWindow]("inference audit")


@CHECKS.register("rate_limit", finds=(F_RATE_UNENFORCED, F_RATE_ATTEMPT))
def rate_limit(w: AuditWindow) -> Outcome:
    """Finds clients (keyed by normalised id, exempt clients left out) above the rate limit in rows
    per sliding minute: served above it means the limit is not enforced (high, model-extraction
    pattern); attempted above it but throttled (HTTP 429) is a blocked abuse attempt (medium)."""
    out = Outcome()
    limit = w.limits.rate_limit_per_minute
    for c in w.client_rates:
        details: dict[str, Any] = {
            "client_id": c.client_id,
            "id_variants": c.variants[:10],
            "n_id_variants": len(c.variants),
            "limit_per_minute": limit,
            "max_per_minute_attempted": c.attempted,
            "max_per_minute_served": c.served,
            "rate_limited_responses": c.throttled,
            "requests": len(c.records),
            "rows": sum(r.rows for r in c.records),
            "distinct_inputs": len({r.input_hash for r in c.records if r.input_hash}),
        }
        if c.served > limit:
            details["window_start"] = _iso(c.served_start)
            out.add(
                F_RATE_UNENFORCED,
                "high",
                f"Client served {c.served} rows/minute, above the limit {limit:g} (rate limit not enforced; "
                "model-extraction pattern)",
                f"client:{c.client_id}",
                details,
            )
        elif c.attempted > limit:
            details["window_start"] = _iso(c.attempted_start)
            out.add(
                F_RATE_ATTEMPT,
                "medium",
                f"Client attempted {c.attempted} rows/minute (limit {limit:g}); {c.throttled} request(s) throttled",
                f"client:{c.client_id}",
                details,
            )
    return out


@CHECKS.register("rows_unknown", finds=(F_ROWS_UNKNOWN,))
def rows_unknown(w: AuditWindow) -> Outcome:
    """Finds served requests that log neither features nor a row count, each counted as one row
    against the rate limit (info: the rate may be understated)."""
    out = Outcome()
    if w.rows_unknown:
        out.add(
            F_ROWS_UNKNOWN,
            "info",
            f"{w.rows_unknown} served request(s) log neither features nor a row count: each counted as one row",
            w.subject,
            {"requests": w.rows_unknown},
        )
    return out


@CHECKS.register("latency_slo", finds=(F_SLO,))
def latency_slo(w: AuditWindow) -> Outcome:
    """Finds a latency p95 (of answered requests: ``ok`` and ``error``) above the SLO (high)."""
    out = Outcome()
    p50, p95, p99 = w.latency
    slo = w.limits.latency_slo_ms
    if p95 is not None and p95 > slo:
        out.add(
            F_SLO,
            "high",
            f"Latency p95 {p95:.1f} ms above the SLO {slo:g} ms",
            w.subject,
            {"p50_ms": p50, "p95_ms": p95, "p99_ms": p99, "slo_ms": slo},
        )
    return out


@CHECKS.register("latency_spikes", finds=(F_SPIKE,))
def latency_spikes(w: AuditWindow) -> Outcome:
    """Finds individual requests slower than the SLO (medium), with the worst one's time and client."""
    out = Outcome()
    slo = w.limits.latency_slo_ms
    spikes = [r for r in w.records if r.latency_ms is not None and r.latency_ms > slo]
    if spikes:
        worst = max(spikes, key=lambda r: r.latency_ms or 0.0)
        out.add(
            F_SPIKE,
            "medium",
            f"{len(spikes)} request(s) slower than the SLO {slo:g} ms (max {worst.latency_ms:.1f} ms)",
            w.subject,
            {
                "count": len(spikes),
                "max_ms": worst.latency_ms,
                "first_at": _iso(spikes[0].ts),
                "worst_at": _iso(worst.ts),
                "worst_client_id": worst.client_id,
                "worst_input_hash": worst.input_hash,
            },
        )
    return out


@CHECKS.register("error_rate", finds=(F_ERRORS,))
def error_rate(w: AuditWindow) -> Outcome:
    """Finds an error rate (5xx / ``error`` among answered requests) above ``max_error_rate`` (high)."""
    out = Outcome()
    errors, answered, rate = w.errors
    if rate > w.limits.max_error_rate:
        out.add(
            F_ERRORS,
            "high",
            f"Error rate {rate:.1%} above the maximum {w.limits.max_error_rate:.1%}",
            w.subject,
            {"errors": errors, "answered": answered, "max_error_rate": w.limits.max_error_rate},
        )
    return out


@CHECKS.register("repeated_input", finds=(F_PROBING,))
def repeated_input(w: AuditWindow) -> Outcome:
    """Finds clients that sent one input at least ``repeat_threshold`` times (probing, medium).

    Counted per row when rows are logged, so one row hidden in varied batches still counts, and one
    probe written in different number spellings is one input (:func:`_row_key`).
    """
    out = Outcome()
    for client, rows in sorted(w.by_client.items()):
        counts: Counter[str] = Counter()
        shown: dict[str, str] = {}  # canonical key -> the hash of the row as first logged
        for r in rows:
            if r.features is not None:  # per row: a batch of one and a single row are the same input
                for row in r.features:
                    key = _row_key(row)
                    counts[key] += 1
                    shown.setdefault(key, input_hash(row))
            elif r.input_hash:
                counts[r.input_hash] += 1
        if not counts:
            continue
        key, n = counts.most_common(1)[0]
        ih = shown.get(key, key)
        if n >= w.limits.repeat_threshold:
            out.add(
                F_PROBING,
                "medium",
                f"Client sent the same input {n} times (probing pattern)",
                f"client:{client}",
                {"client_id": client, "input_hash": ih, "repeats": n, "threshold": w.limits.repeat_threshold},
            )
    return out


@CHECKS.register("ood_share", finds=(F_OOD,))
def ood_share(w: AuditWindow) -> Outcome:
    """With a reference: finds a share of out-of-distribution input rows above ``max_ood_share``
    (high, adversarial/OOD signal); fewer OOD rows are listed as info. Features logged in a shape
    that is not numeric rows count as out of distribution."""
    out = Outcome()
    ood = w.ood
    if ood is None:
        return out
    max_share = w.limits.max_ood_share
    details = {
        "ood": ood.ood,
        "with_features": ood.rows,
        "requests_with_features": ood.requests_with_features,
        "malformed_feature_requests": ood.malformed_requests,
        "share": ood.share,
        "max_share": max_share,
        "top_clients": [{"client_id": c, "ood": n} for c, n in ood.per_client.most_common(5)],
        "sample_input_hashes": sorted(ood.ood_hashes)[:10],
    }
    if ood.share > max_share:
        out.add(
            F_OOD,
            "high",
            f"{ood.share:.1%} of input rows are out of distribution (max {max_share:.1%}): adversarial/OOD signal",
            w.subject,
            details,
        )
    elif ood.ood:
        out.add(F_OOD, "info", f"{ood.ood} out-of-distribution row(s), within bounds", w.subject, details)
    return out


@CHECKS.register("ood_unchecked", finds=(F_OOD_UNCHECKED,))
def ood_unchecked(w: AuditWindow) -> Outcome:
    """With a reference: finds served requests logged without features, which the OOD check could
    not look at (medium)."""
    out = Outcome()
    if w.ood is not None and w.ood.unchecked:
        out.add(
            F_OOD_UNCHECKED,
            "medium",
            f"{w.ood.unchecked} served request(s) logged without features: not checked against the reference",
            w.subject,
            {"requests": w.ood.unchecked},
        )
    return out


@CHECKS.register("unattributable_lines", finds=(F_BAD_LINES,))
def unattributable_lines(w: AuditWindow) -> Outcome:
    """Finds log lines that could not be attributed to a request, with their reasons and positions:
    high above ``max_bad_line_share`` (the audit then cannot decide) or above half the lines, else
    medium."""
    out = Outcome()
    bad = w.bad
    if bad.count:
        over = w.bad_share > w.limits.max_bad_line_share
        out.add(
            F_BAD_LINES,
            "high" if over or w.bad_share > 0.5 else "medium",
            f"{bad.count} log line(s) could not be attributed to a request (share {w.bad_share:.2%}, "
            f"tolerated {w.limits.max_bad_line_share:.2%})",
            w.subject,
            {
                "unparseable": bad.count,
                "share": w.bad_share,
                "max_share": w.limits.max_bad_line_share,
                "reasons": dict(bad.reasons.most_common(20)),
                "examples": bad.examples,
            },
        )
    return out


@CHECKS.register("files_not_read", finds=(F_NOT_READ,))
def files_not_read(w: AuditWindow) -> Outcome:
    """Finds log files next to the audited one that could not be read (high; the audit then cannot
    decide): unsupported compression, not a regular file, unreadable."""
    out = Outcome()
    not_read = w.sources.get("not_read")
    if not_read:
        out.add(
            F_NOT_READ,
            "high",
            f"{len(not_read)} log file(s) next to the audited one could not be read",
            w.subject,
            {"files": not_read[:50]},
        )
    return out


@CHECKS.register("files_ignored", finds=(F_IGNORED_FILES,))
def files_ignored(w: AuditWindow) -> Outcome:
    """Finds files of a log directory that are not log files and were not read (info)."""
    out = Outcome()
    ignored = w.sources.get("ignored")
    if ignored:
        out.add(
            F_IGNORED_FILES,
            "info",
            f"{len(ignored)} file(s) in the log directory are not log files and were not read",
            w.subject,
            {"files": ignored[:50]},
        )
    return out


def reference_ranges(reference: Mapping[str, Any]) -> list[tuple[float, float]]:
    """``(low, high)`` per feature of a validated reference, in feature order."""
    return [(float(f["low"]), float(f["high"])) for f in reference["features"]]
