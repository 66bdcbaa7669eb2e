"""Inference-log audit: abuse (rate), latency SLO, errors, probing and out-of-distribution inputs.

Reads structured inference logs — JSON lines with ``ts`` (ISO-8601 or epoch seconds), ``client_id``,
``input_hash`` and/or ``features``, ``output``, ``latency_ms`` and ``status`` (HTTP code or
``ok``/``error``/``rate_limited``) — as written by :mod:`airflow_aisec.serving.server`, and reports:

* per-client request rate over any sliding 60-second window against a limit (the article's "10 per
  minute"). A client whose **served** requests exceed it means the limit is not enforced (high,
  AML.T0024 exfiltration via inference API / model-extraction pattern); a client that **attempted**
  more but was throttled (HTTP 429) is reported as medium (abuse attempt, blocked);
* latency p50/p95/p99 against an SLO (p95 above it: high) and individual spikes above it (medium);
* error rate (5xx / ``error``) against a maximum;
* repeated-input probing: one client sending the same input hash many times;
* the share of out-of-distribution inputs against a reference (per-feature robust ranges built by
  :func:`build_reference_ranges` from reference data) — an adversarial/OOD signal (OWASP-ML01).

Findings never contain raw inputs: only input hashes, client ids, counts and timestamps.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError
from airflow_aisec.report import SEVERITY_RANK, Report
from airflow_aisec.utils.stats import percentile

TAGS = ("AML.T0024", "OWASP-ML01", "OWASP-ML05")
REFERENCE_SCHEMA = "aisec.inference-reference/v1"

F_RATE_UNENFORCED = "AISEC-INF-RATE-LIMIT-EXCEEDED"
F_RATE_ATTEMPT = "AISEC-INF-RATE-LIMIT-ABUSE-BLOCKED"
F_SLO = "AISEC-INF-LATENCY-SLO"
F_SPIKE = "AISEC-INF-LATENCY-SPIKE"
F_ERRORS = "AISEC-INF-ERROR-RATE"
F_PROBING = "AISEC-INF-REPEATED-INPUT"
F_OOD = "AISEC-INF-OOD-SHARE"
F_BAD_LINES = "AISEC-INF-UNPARSEABLE-LOG"


def input_hash(features: Any) -> str:
    """``sha256:<hex>`` of the canonical JSON of ``features`` (what the model server logs)."""
    canonical = json.dumps(features, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


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


def parse_timestamp(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ValueError("timestamp is not finite")
        return float(value)
    if isinstance(value, str):
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        return dt.timestamp()
    raise ValueError("timestamp missing")


def parse_time_arg(value: str | float | None, name: str) -> float | None:
    """A ``since``/``until`` bound (ISO-8601 or epoch seconds) or ``None``; bad input names itself."""
    if value is None or value == "":
        return None
    try:
        return parse_timestamp(value)
    except (ValueError, TypeError):
        raise AisecInputError(f"{name} {value!r} is not an ISO-8601 time or epoch seconds") from None


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Record:
    ts: float
    client_id: str
    input_hash: str | None
    features: list[float] | None
    latency_ms: float | None
    status: str  # ok | error | rate_limited | rejected


def _status(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        if value == 429:
            return "rate_limited"
        if value >= 500:
            return "error"
        if value >= 400:
            return "rejected"
        return "ok"
    text = str(value).lower()
    if text in ("ok", "success", "200"):
        return "ok"
    if text in ("rate_limited", "throttled", "429"):
        return "rate_limited"
    if text in ("rejected", "bad_request", "400"):
        return "rejected"
    return "error"


def parse_records(lines: Iterable[str]) -> tuple[list[Record], int]:
    """Parse JSON lines into records; return (records, number of unparseable lines)."""
    records: list[Record] = []
    bad = 0
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError("not an object")
            ts = parse_timestamp(row.get("ts", row.get("timestamp")))
            client = row.get("client_id", row.get("client"))
            if not isinstance(client, str) or not client:
                raise ValueError("client_id missing")
            feats = row.get("features")
            if feats is not None:
                if isinstance(feats, list) and feats and isinstance(feats[0], list):
                    feats = feats[0] if len(feats) == 1 else None  # batched: OOD per row not tracked
                if feats is not None and not (
                    isinstance(feats, list)
                    and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in feats)
                ):
                    feats = None
            ih = row.get("input_hash")
            if not isinstance(ih, str) or not ih:
                ih = input_hash(row["features"]) if row.get("features") is not None else None
            lat = row.get("latency_ms")
            lat = (
                float(lat)
                if isinstance(lat, (int, float)) and not isinstance(lat, bool) and math.isfinite(lat)
                else None
            )
            records.append(Record(ts, client, ih, feats, lat, _status(row.get("status", "ok"))))
        except (ValueError, TypeError, KeyError, OverflowError):
            bad += 1
    return records, bad


def read_log_lines(path: str | os.PathLike[str]) -> list[str]:
    """Lines of a local JSON-lines log file, or of every ``*.jsonl``/``*.log`` file in a directory."""
    p = os.fspath(path)
    if os.path.isdir(p):
        files = sorted(
            os.path.join(p, n)
            for n in os.listdir(p)
            if n.endswith((".jsonl", ".log", ".json")) and not n.startswith(".")
        )
        if not files:
            raise AisecInputError(f"inference log directory {p!r} has no .jsonl/.log files")
    elif os.path.isfile(p):
        files = [p]
    else:
        raise AisecInputError(f"inference log {p!r} does not exist")
    lines: list[str] = []
    for f in files:
        try:
            with open(f, encoding="utf-8", errors="replace") as fh:
                lines.extend(fh)
        except OSError as exc:
            raise AisecInputError(f"inference log {f!r} is unreadable: {exc.strerror}") from exc
    return lines


# --------------------------------------------------------------------------------------- reference
def build_reference_ranges(
    data: Any, *, feature_names: Sequence[str] | None = None, k: float = 3.0, source: str = ""
) -> dict[str, Any]:
    """Per-feature robust ranges ``[Q1 - k·IQR, Q3 + k·IQR]`` from reference data (rows × features).

    ``data``: a 2-D array-like or a pandas DataFrame (numeric columns). The result is JSON
    (``aisec.inference-reference/v1``) to save next to the model and pass to the audit.
    """
    import numpy as np

    if hasattr(data, "columns") and hasattr(data, "to_numpy"):
        feature_names = list(map(str, data.columns)) if feature_names is None else feature_names
        data = data.to_numpy(dtype=float)
    arr = np.asarray(data, dtype=float)
    if arr.ndim != 2 or arr.shape[0] < 2 or arr.shape[1] < 1:
        raise AisecInputError("reference data must be a 2-D table with at least 2 rows and 1 feature")
    names = list(feature_names) if feature_names is not None else [f"f{i}" for i in range(arr.shape[1])]
    if len(names) != arr.shape[1]:
        raise AisecInputError(f"reference data has {arr.shape[1]} features but {len(names)} names")
    features = []
    for i, name in enumerate(names):
        col = arr[:, i][np.isfinite(arr[:, i])]
        if col.size < 2:
            raise AisecInputError(f"reference feature {name!r} has fewer than 2 finite values")
        q1, med, q3 = np.percentile(col, [25, 50, 75])
        iqr = q3 - q1
        if iqr <= 0:  # constant-ish feature: fall back on the observed range
            spread = max(float(col.max() - col.min()), abs(float(med)) * 1e-6, 1e-9)
            low, high = float(col.min()) - k * spread, float(col.max()) + k * spread
        else:
            low, high = float(q1 - k * iqr), float(q3 + k * iqr)
        features.append({"name": name, "low": low, "high": high, "median": float(med)})
    return {"schema": REFERENCE_SCHEMA, "k": k, "rows": int(arr.shape[0]), "source": source, "features": features}


DRIFT_PROFILE_MAGIC = b"AISEC-DRIFT-PROFILE"


def reference_from_profile_columns(
    columns: Mapping[str, Any], *, features: Sequence[str] | None = None, k: float = 3.0, source: str = ""
) -> dict[str, Any]:
    """Per-feature ranges from a drift profile's columns (issue 5's ``Profile.columns``).

    Uses each numeric column's 1,000-quantile grid (``arrays["quantiles"]``) for Q1/Q3, falling back on
    ``meta`` min/max for constant columns. ``features`` selects and orders the columns (the model's
    input order, as logged); default: every numeric column in profile order.
    """
    import numpy as np

    names = (
        list(features) if features is not None else [n for n, c in columns.items() if c.meta.get("kind") == "numeric"]
    )
    out = []
    for name in names:
        col = columns.get(name)
        if col is None:
            raise AisecInputError(f"drift profile has no column {name!r}")
        if col.meta.get("kind") != "numeric" or "quantiles" not in col.arrays:
            raise AisecInputError(f"drift profile column {name!r} is not a usable numeric column")
        q = np.asarray(col.arrays["quantiles"], dtype=float)
        q1, med, q3 = (float(np.quantile(q, p)) for p in (0.25, 0.5, 0.75))
        iqr = q3 - q1
        if iqr <= 0:
            lo, hi = float(col.meta.get("min", q[0])), float(col.meta.get("max", q[-1]))
            spread = max(hi - lo, abs(med) * 1e-6, 1e-9)
            low, high = lo - k * spread, hi + k * spread
        else:
            low, high = q1 - k * iqr, q3 + k * iqr
        out.append({"name": name, "low": low, "high": high, "median": med})
    if not out:
        raise AisecInputError("drift profile has no numeric column to build OOD ranges from")
    return {"schema": REFERENCE_SCHEMA, "k": k, "rows": None, "source": source or "drift profile", "features": out}


def reference_from_drift_profile(
    path: str | os.PathLike[str], *, features: Sequence[str] | None = None, k: float = 3.0
) -> dict[str, Any]:
    """OOD ranges from a verified drift profile file (``aisec profile build``; drift engine, issue 5)."""
    try:
        from airflow_aisec.core.profile import load_profile  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise AisecInputError(
            f"{os.fspath(path)!r} is a drift profile but the drift engine (airflow_aisec.core.profile) is not installed"
        ) from None
    profile = load_profile(path)  # verifies header and payload hashes; fails closed
    return reference_from_profile_columns(profile.columns, features=features, k=k, source=os.fspath(path))


def load_reference(source: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, Any]:
    """A reference dict from a path or mapping, validated (``features``: list of {name, low, high}).

    A path may be the JSON of :func:`build_reference_ranges` or a drift profile file (issue 5).
    """
    if isinstance(source, Mapping):
        ref = dict(source)
    elif _is_drift_profile(source):
        ref = reference_from_drift_profile(source)
    else:
        try:
            with open(os.fspath(source), encoding="utf-8") as fh:
                ref = json.load(fh)
        except FileNotFoundError:
            raise AisecInputError(f"reference profile {os.fspath(source)!r} does not exist") from None
        except (OSError, ValueError) as exc:
            raise AisecInputError(f"reference profile {os.fspath(source)!r} is not readable JSON: {exc}") from exc
    feats = ref.get("features")
    if not isinstance(feats, list) or not feats:
        raise AisecInputError("reference profile must have a non-empty 'features' list")
    for f in feats:
        if not (
            isinstance(f, dict)
            and isinstance(f.get("low"), (int, float))
            and isinstance(f.get("high"), (int, float))
            and f["low"] <= f["high"]
        ):
            raise AisecInputError(f"reference feature {f!r} needs numeric low <= high")
    return ref


def _is_drift_profile(path: str | os.PathLike[str]) -> bool:
    try:
        with open(os.fspath(path), "rb") as fh:
            return fh.read(len(DRIFT_PROFILE_MAGIC)) == DRIFT_PROFILE_MAGIC
    except OSError:
        return False


def _is_ood(features: list[float], ranges: list[tuple[float, float]]) -> bool:
    if len(features) != len(ranges):
        return True
    return any(not (math.isfinite(v) and lo <= v <= hi) for v, (lo, hi) in zip(features, ranges, strict=True))


# --------------------------------------------------------------------------------------- audit
def _max_in_window(times: list[float], window: float) -> tuple[int, float]:
    """Largest number of events in any window of ``window`` seconds, and where it starts."""
    best, start, j = 0, times[0] if times else 0.0, 0
    for i, t in enumerate(times):
        while t - times[j] >= window:
            j += 1
        if i - j + 1 > best:
            best, start = i - j + 1, times[j]
    return best, start


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
    bad_lines: int = 0,
    fail_severity: str = "high",
) -> Report:
    """Audit parsed records; see the module docstring. Status: ``fail`` when a finding reaches
    ``fail_severity``, ``warn`` when only lower ones exist, else ``pass``.
    """
    if fail_severity not in SEVERITY_RANK:
        raise AisecInputError(f"fail_severity {fail_severity!r} is not a severity")
    if latency_slo_ms <= 0 or not 0 <= max_error_rate <= 1 or not 0 <= max_ood_share <= 1 or repeat_threshold < 2:
        raise AisecInputError("latency_slo_ms > 0, 0 <= max_error_rate/max_ood_share <= 1, repeat_threshold >= 2")
    report = Report.start("inference_audit", subject, tags=TAGS)
    recs = [r for r in records if (since is None or r.ts >= since) and (until is None or r.ts <= until)]
    if not recs:
        raise AisecUndecidableError(f"{subject}: no inference records in the audited window (cannot decide)")
    recs.sort(key=lambda r: r.ts)
    total = len(recs)
    exempt = set(exempt_clients)

    # -- rate per client
    by_client: dict[str, list[Record]] = defaultdict(list)
    for r in recs:
        by_client[r.client_id].append(r)
    limit = rate_limit_per_minute
    clients_over = 0
    client_rows = []
    for client, rows in sorted(by_client.items()):
        attempted, a_start = _max_in_window([r.ts for r in rows], 60.0)
        served_times = [r.ts for r in rows if r.status != "rate_limited"]
        served, s_start = _max_in_window(served_times, 60.0) if served_times else (0, 0.0)
        throttled = sum(r.status == "rate_limited" for r in rows)
        client_rows.append(
            {
                "client_id": client,
                "requests": len(rows),
                "max_per_minute_attempted": attempted,
                "max_per_minute_served": served,
                "rate_limited": throttled,
                "exempt": client in exempt,
            }
        )
        if client in exempt:
            continue
        details = {
            "client_id": client,
            "limit_per_minute": limit,
            "max_per_minute_attempted": attempted,
            "max_per_minute_served": served,
            "rate_limited_responses": throttled,
            "requests": len(rows),
            "distinct_inputs": len({r.input_hash for r in rows if r.input_hash}),
        }
        if served > limit:
            clients_over += 1
            details["window_start"] = _iso(s_start)
            report.add_finding(
                F_RATE_UNENFORCED,
                "high",
                f"Client served {served} requests/minute, above the limit {limit:g} (rate limit not enforced; "
                "model-extraction pattern)",
                f"client:{client}",
                details,
            )
        elif attempted > limit:
            clients_over += 1
            details["window_start"] = _iso(a_start)
            report.add_finding(
                F_RATE_ATTEMPT,
                "medium",
                f"Client attempted {attempted} requests/minute (limit {limit:g}); {throttled} throttled",
                f"client:{client}",
                details,
            )

    # -- latency
    lat = sorted(r.latency_ms for r in recs if r.latency_ms is not None and r.status in ("ok", "error"))
    p50, p95, p99 = (percentile(lat, q) for q in (50, 95, 99))
    if p95 is not None and p95 > latency_slo_ms:
        report.add_finding(
            F_SLO,
            "high",
            f"Latency p95 {p95:.1f} ms above the SLO {latency_slo_ms:g} ms",
            subject,
            {"p50_ms": p50, "p95_ms": p95, "p99_ms": p99, "slo_ms": latency_slo_ms},
        )
    spikes = [r for r in recs if r.latency_ms is not None and r.latency_ms > latency_slo_ms]
    if spikes:
        worst = max(spikes, key=lambda r: r.latency_ms or 0.0)
        report.add_finding(
            F_SPIKE,
            "medium",
            f"{len(spikes)} request(s) slower than the SLO {latency_slo_ms:g} ms (max {worst.latency_ms:.1f} ms)",
            subject,
            {
                "count": len(spikes),
                "max_ms": worst.latency_ms,
                "first_at": _iso(spikes[0].ts),
                "worst_at": _iso(worst.ts),
                "worst_client_id": worst.client_id,
                "worst_input_hash": worst.input_hash,
            },
        )

    # -- errors
    errors = sum(r.status == "error" for r in recs)
    answered = sum(r.status in ("ok", "error") for r in recs)
    error_rate = errors / answered if answered else 0.0
    if error_rate > max_error_rate:
        report.add_finding(
            F_ERRORS,
            "high",
            f"Error rate {error_rate:.1%} above the maximum {max_error_rate:.1%}",
            subject,
            {"errors": errors, "answered": answered, "max_error_rate": max_error_rate},
        )

    # -- repeated-input probing
    for client, rows in sorted(by_client.items()):
        if client in exempt:
            continue
        counts = Counter(r.input_hash for r in rows if r.input_hash)
        if not counts:
            continue
        ih, n = counts.most_common(1)[0]
        if n >= repeat_threshold:
            report.add_finding(
                F_PROBING,
                "medium",
                f"Client sent the same input {n} times (probing pattern)",
                f"client:{client}",
                {"client_id": client, "input_hash": ih, "repeats": n, "threshold": repeat_threshold},
            )

    # -- out-of-distribution share
    ood_share = None
    with_features = [r for r in recs if r.features is not None and r.client_id not in exempt]  # real traffic only
    if reference is not None:
        ref = load_reference(reference)
        ranges = [(float(f["low"]), float(f["high"])) for f in ref["features"]]
        if not with_features:
            raise AisecUndecidableError(
                f"{subject}: a reference profile was given but no record carries features (cannot compute OOD share)"
            )
        ood = [r for r in with_features if _is_ood(r.features or [], ranges)]
        ood_share = len(ood) / len(with_features)
        per_client = Counter(r.client_id for r in ood)
        details = {
            "ood": len(ood),
            "with_features": len(with_features),
            "share": ood_share,
            "max_share": max_ood_share,
            "top_clients": [{"client_id": c, "ood": n} for c, n in per_client.most_common(5)],
            "sample_input_hashes": sorted({r.input_hash for r in ood if r.input_hash})[:10],
        }
        if ood_share > max_ood_share:
            report.add_finding(
                F_OOD,
                "high",
                f"{ood_share:.1%} of inputs are out of distribution (max {max_ood_share:.1%}): adversarial/OOD signal",
                subject,
                details,
            )
        elif ood:
            report.add_finding(
                F_OOD, "info", f"{len(ood)} out-of-distribution input(s), within bounds", subject, details
            )

    if bad_lines:
        share = bad_lines / (bad_lines + len(records))
        report.add_finding(
            F_BAD_LINES,
            "high" if share > 0.5 else "medium",
            f"{bad_lines} log line(s) could not be parsed",
            subject,
            {"unparseable": bad_lines, "share": share},
        )

    report.metrics.update(
        {
            "requests": total,
            "clients": len(by_client),
            "clients_over_limit": clients_over,
            "rate_limited": sum(r.status == "rate_limited" for r in recs),
            "latency_p50_ms": p50,
            "latency_p95_ms": p95,
            "latency_p99_ms": p99,
            "latency_slo_ms": latency_slo_ms,
            "error_rate": error_rate,
            "ood_share": ood_share,
            "unparseable_lines": bad_lines,
            "window_seconds": recs[-1].ts - recs[0].ts,
        }
    )
    report.details["clients"] = client_rows[:200]
    report.details["window"] = {"from": _iso(recs[0].ts), "to": _iso(recs[-1].ts)}
    threshold = SEVERITY_RANK[fail_severity]
    top = max((SEVERITY_RANK[f.severity] for f in report.findings), default=-1)
    status = "fail" if top >= threshold else "warn" if top > SEVERITY_RANK["info"] else "pass"
    p95_txt = f"{p95:.1f}" if p95 is not None else "n/a"
    summary = (
        f"{total} requests from {len(by_client)} client(s): {clients_over} over {limit:g}/min, "
        f"p95 {p95_txt} ms (SLO {latency_slo_ms:g}), errors {error_rate:.1%}"
        + (f", OOD {ood_share:.1%}" if ood_share is not None else "")
    )
    return report.finish(status, summary)


def audit_log(
    log: str | os.PathLike[str] | Iterable[str],
    *,
    reference: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Report:
    """Audit a JSON-lines inference log (path, directory or iterable of lines); see :func:`audit_records`."""
    if isinstance(log, (str, os.PathLike)):
        subject = os.fspath(log)
        lines: Iterable[str] = read_log_lines(log)
    else:
        subject = kwargs.pop("subject", "inference log")
        lines = log
    records, bad = parse_records(lines)
    if not records:
        raise AisecUndecidableError(f"inference log {subject!r} has no parseable records ({bad} bad line(s))")
    ref = load_reference(reference) if reference is not None else None
    return audit_records(records, subject=subject, reference=ref, bad_lines=bad, **kwargs)
