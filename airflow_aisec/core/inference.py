"""Inference-log audit: abuse (rate), latency SLO, errors, probing and out-of-distribution inputs.

Reads structured inference logs — JSON lines with ``ts`` (ISO-8601 or epoch seconds), ``client_id``,
``input_hash`` and/or ``features``, ``output``, ``latency_ms`` and ``status`` (HTTP code or
``ok``/``error``/``rate_limited``) — as written by :mod:`airflow_aisec.serving.server`, and reports:

* per-client rate in **rows** (a batch of 50 rows is 50) over any sliding 60-second window against a
  limit (the article's "10 per minute"), clients keyed by a normalised id (:func:`normalise_client_id`).
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
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError
from airflow_aisec.report import SEVERITIES, Report, Status, gate_status, parse_fail_on
from airflow_aisec.utils.stats import percentile, robust_range

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
F_NOT_READ = "AISEC-INF-LOG-NOT-READ"
F_IGNORED_FILES = "AISEC-INF-FILES-IGNORED"
F_OOD_UNCHECKED = "AISEC-INF-OOD-UNCHECKED"
F_ROWS_UNKNOWN = "AISEC-INF-ROWS-UNKNOWN"


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


#: longest log line accepted, in bytes (the demo server's bodies are <= 64 KiB); longer: a bad line.
MAX_LINE_BYTES = 1024 * 1024
#: most bytes read from all log files together (decompressed), so a hostile log cannot exhaust memory.
MAX_TOTAL_BYTES = 1024 * 1024 * 1024
#: longest client id accepted (characters, after normalisation); longer: a bad line.
MAX_CLIENT_ID = 256
#: most feature rows one logged request may carry; more: the line is bad.
MAX_BATCH_ROWS = 100_000
#: most log lines one audit reads (memory stays bounded); more: an input error naming the limit.
MAX_LINES = 5_000_000
#: deepest JSON nesting accepted on one log line (a batch of rows is depth 3).
MAX_LINE_DEPTH = 16
#: a log file's rotated siblings: ``app.log.1``, ``app.log.2.gz``, ``app.log-20261201``, ``app.log.gz``.
_ROTATED_SUFFIX = re.compile(r"^(?:[.-]\d+)*(?:\.(?:gz|bz2|xz|zst|lz4|z|zip))?$", re.IGNORECASE)
_LOG_NAME = re.compile(r"\.(?:jsonl|log|json)(?:[.-]\d+)*(?:\.(?:gz|bz2|xz|zst|lz4|z|zip))?$", re.IGNORECASE)
_READABLE_COMPRESSION = ("", ".gz", ".bz2", ".xz")


def _epoch_bounds() -> tuple[float, float]:
    from airflow_aisec.utils.strictjson import EARLIEST, SKEW

    return EARLIEST.timestamp(), (datetime.now(timezone.utc) + SKEW).timestamp()


def parse_timestamp(value: Any, where: str = "ts") -> float:
    """Epoch seconds of a log timestamp: RFC 3339 text or epoch seconds (int/float).

    Refused (:class:`ValueError`): anything else, non-finite numbers, dates before 1990 or more than
    one day in the future (a year-9999 line cannot move a window), booleans.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ValueError(f"{where}: timestamp is not finite")
        low, high = _epoch_bounds()
        if not low <= value <= high:
            raise ValueError(f"{where}: implausible epoch timestamp (before 1990 or in the future)")
        return float(value)
    if isinstance(value, str):
        from airflow_aisec.utils.strictjson import parse_timestamp as strict_ts

        try:
            return strict_ts(value, where).timestamp()
        except AisecInputError as exc:
            raise ValueError(str(exc)) from None
    raise ValueError(f"{where}: timestamp missing or not a string/number")


def parse_time_arg(value: str | float | None, name: str) -> float | None:
    """A ``since``/``until`` bound (ISO-8601 or epoch seconds) or ``None``; bad input names itself.

    Bounds are configuration, not log data: any representable time is accepted (a window may end in
    the future).
    """
    if value is None or value == "":
        return None
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
                return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).timestamp()
            if math.isfinite(number):
                return number
    except (ValueError, OverflowError, OSError):
        pass
    raise AisecInputError(f"{name} {value!r} is not an ISO-8601 time or epoch seconds")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


#: Default_Ignorable_Code_Point characters that are not format/control (Cf/Cc) characters: invisible
#: marks and fillers (combining grapheme joiner, Hangul fillers, Khmer inherent vowels, Mongolian and
#: other variation selectors, tag/variation-selector supplement) — "scra\ufe0fper" looks like "scraper".
_INVISIBLE = re.compile(
    "[\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u3164\ufe00-\ufe0f\uffa0\ufff0-\ufff8"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff]"
)


def normalise_client_id(raw: str) -> str:
    """The key a client is counted under: NFKC, format/control characters, whitespace and other
    invisible (default-ignorable) characters such as variation selectors removed, case-folded. ``"Scraper"``, ``" scraper"``, ``"ｓｃｒａｐｅｒ"`` and ``"scra\u200bper"`` are one
    client. Homoglyphs across scripts (Cyrillic ``а`` vs Latin ``a``) are not merged: restrict ids to
    ASCII at the server (the demo server does) or key the limit on an authenticated identity.
    """
    text = unicodedata.normalize("NFKC", raw)
    text = "".join(ch for ch in text if not ch.isspace() and unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp"))
    text = _INVISIBLE.sub("", text)
    return _INVISIBLE.sub("", unicodedata.normalize("NFKC", text.casefold()))


@dataclass
class Record:
    ts: float
    client_id: str  # normalised (see normalise_client_id)
    input_hash: str | None
    features: list[list[float]] | None  # every logged row (a single request is one row)
    latency_ms: float | None
    status: str  # ok | error | rate_limited | rejected
    rows: int = 1  # rows (items) the request carried; 1 when the line does not say
    raw_client_id: str = ""  # as logged (exemptions match it exactly)
    rows_known: bool = True
    malformed_features: bool = False  # ``features`` present but not numeric rows: counted as OOD

    def __post_init__(self) -> None:
        if not self.raw_client_id:
            self.raw_client_id = self.client_id


@dataclass
class BadLines:
    """Lines that could not be attributed to a request: how many, why, and where (never content)."""

    count: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def add(self, where: str, reason: str) -> None:
        self.count += 1
        self.reasons[reason] += 1
        if len(self.examples) < 10:
            self.examples.append(f"{where}: {reason}")


def _status(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        if not 100 <= value <= 599:
            raise ValueError("status code outside 100-599")
        if value == 429:
            return "rate_limited"
        if value >= 500:
            return "error"
        if value >= 400:
            return "rejected"
        return "ok"
    if not isinstance(value, str):
        raise ValueError("status is not a string or an HTTP code")
    text = value.strip().lower()
    if text in ("ok", "success", "200"):
        return "ok"
    if text in ("rate_limited", "throttled", "429"):
        return "rate_limited"
    if text in ("rejected", "bad_request", "400"):
        return "rejected"
    return "error"


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _feature_rows(feats: Any) -> list[list[float]] | None:
    """``[x1, x2, ...]`` (one row) or ``[[...], [...]]`` (a batch) → rows; anything else → ``None``."""
    if not isinstance(feats, list):
        return None
    if feats and all(isinstance(r, list) for r in feats):
        if len(feats) > MAX_BATCH_ROWS:
            raise ValueError(f"batch of more than {MAX_BATCH_ROWS} rows")
        rows = feats
    elif all(_is_number(v) for v in feats):
        rows = [feats]
    else:
        return None
    if not all(all(_is_number(v) for v in r) for r in rows):
        return None
    return [list(r) for r in rows]  # numbers as logged (ints stay ints: same hash as the server's)


def _parse_line(raw: str | bytes, where: str) -> Record:
    """One log line → a :class:`Record`; ``ValueError`` (reason) when it cannot be attributed."""
    from airflow_aisec.utils.strictjson import loads

    if len(raw) > MAX_LINE_BYTES:
        raise ValueError(f"line longer than {MAX_LINE_BYTES} bytes")
    try:
        row = loads(raw, source=where, max_depth=MAX_LINE_DEPTH)
    except AisecInputError as exc:
        raise ValueError("invalid JSON" + (": duplicate key" if "duplicate key" in str(exc) else "")) from None
    if not isinstance(row, dict):
        raise ValueError("not a JSON object")
    if "ts" in row and "timestamp" in row:
        raise ValueError("both ts and timestamp")
    try:
        ts = parse_timestamp(row.get("ts", row.get("timestamp")), "ts")
    except ValueError:
        raise ValueError("bad timestamp (missing, not text/number, before 1990 or in the future)") from None
    if "client_id" in row and "client" in row:
        raise ValueError("both client_id and client")
    raw_client = row.get("client_id", row.get("client"))
    if not isinstance(raw_client, str):
        raise ValueError("client_id missing or not a string")
    client = normalise_client_id(raw_client)
    if not client:
        raise ValueError("client_id empty")
    if len(client) > MAX_CLIENT_ID:
        raise ValueError(f"client_id longer than {MAX_CLIENT_ID} characters")
    feats = row.get("features")
    rows_data = None
    malformed = False
    if feats is not None:
        rows_data = _feature_rows(feats)
        malformed = rows_data is None
    if "rows" in row and "n_rows" in row:
        raise ValueError("both rows and n_rows")
    declared = row.get("rows", row.get("n_rows"))
    if declared is not None and (not isinstance(declared, int) or isinstance(declared, bool) or declared < 0):
        raise ValueError("rows is not a non-negative integer")
    if declared is not None and declared > MAX_BATCH_ROWS:
        raise ValueError(f"rows above {MAX_BATCH_ROWS}")
    if rows_data is not None:
        n_rows = max(len(rows_data), declared or 0)
    elif declared is not None:
        n_rows = declared
    else:
        n_rows = 1
    ih = row.get("input_hash")
    if ih is not None and not isinstance(ih, str):
        raise ValueError("input_hash is not a string")
    if not ih:
        ih = input_hash(feats) if feats is not None else None
    lat = row.get("latency_ms")
    if lat is not None and not (_is_number(lat) and math.isfinite(lat) and lat >= 0):
        raise ValueError("latency_ms is not a non-negative number")
    return Record(
        ts,
        client,
        ih,
        rows_data,
        float(lat) if lat is not None else None,
        _status(row.get("status", "ok")),
        rows=max(n_rows, 1),
        raw_client_id=raw_client,
        rows_known=rows_data is not None or declared is not None,
        malformed_features=malformed,
    )


#: a log line: text, bytes, or ``(where, bytes)`` as read by :func:`read_log_sources`.
LogLine = str | bytes | tuple[str, bytes]


def parse_lines(lines: Iterable[LogLine], *, source: str = "log") -> tuple[list[Record], BadLines]:
    """Parse JSON lines into records; every line that cannot be attributed is counted with a reason."""
    records: list[Record] = []
    bad = BadLines()
    for lineno, line in enumerate(lines, 1):
        if lineno > MAX_LINES:
            raise AisecInputError(f"{source}: more than {MAX_LINES} log lines; audit a narrower window")
        if isinstance(line, tuple):  # (where, line) from read_log_sources
            where, line = line
        else:
            where = f"{source}:{lineno}"
        if len(line) > MAX_LINE_BYTES:
            bad.add(where, f"line longer than {MAX_LINE_BYTES} bytes")
            continue
        text = line.strip()
        if not text:
            continue
        try:
            records.append(_parse_line(text, where))
        except (ValueError, TypeError, KeyError, OverflowError, RecursionError) as exc:
            bad.add(where, str(exc) if isinstance(exc, ValueError) else type(exc).__name__)
    return records, bad


def parse_records(lines: Iterable[LogLine]) -> tuple[list[Record], int]:
    """Parse JSON lines into records; return (records, number of lines that could not be attributed)."""
    records, bad = parse_lines(lines)
    return records, bad.count


def is_log_name(name: str) -> bool:
    """A log file name (``*.jsonl``/``*.log``/``*.json``, possibly rotated/compressed)."""
    return bool(_LOG_NAME.search(name)) and not name.startswith(".")


def _compression(name: str) -> str:
    lowered = name.lower()
    for ext in (".gz", ".bz2", ".xz", ".zst", ".lz4", ".z", ".zip"):
        if lowered.endswith(ext):
            return ext
    return ""


def rotated_siblings(path: str) -> list[str]:
    """Rotated copies next to a log file (``app.log.1``, ``app.log.2.gz``, ``app.log-20261201``)."""
    folder, base = os.path.split(os.path.abspath(path))
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    out = []
    for name in names:
        if name != base and name.startswith(base) and _ROTATED_SUFFIX.match(name[len(base) :]):
            out.append(os.path.join(folder, name))
    return sorted(out)


class _Budget:
    def __init__(self, limit: int) -> None:
        self.left = limit

    def take(self, n: int, what: str) -> None:
        self.left -= n
        if self.left < 0:
            raise AisecInputError(
                f"inference log {what}: more than {MAX_TOTAL_BYTES} bytes (decompressed) in total; audit a narrower window"
            )


def decompress_bounded(data: bytes, name: str, limit: int) -> bytes:
    """``data`` decompressed according to ``name``'s suffix, refusing more than ``limit`` bytes out."""
    comp = _compression(name)
    if comp == "":
        return data
    if comp not in _READABLE_COMPRESSION:
        raise AisecInputError(f"{name}: unsupported compression {comp}")
    import io

    opener = {".gz": "gzip", ".bz2": "bz2", ".xz": "lzma"}[comp]
    module = __import__(opener)
    try:
        with module.open(io.BytesIO(data), "rb") as fh:
            out = fh.read(limit + 1)
    except (OSError, EOFError, ValueError) as exc:
        raise AisecInputError(f"{name}: corrupt {comp} stream ({type(exc).__name__})") from None
    if len(out) > limit:
        raise AisecInputError(f"{name}: decompresses to more than {limit} bytes")
    return bytes(out)


def _open_log(path: str) -> Any:
    comp = _compression(path)
    if comp == ".gz":
        import gzip

        return gzip.open(path, "rb")
    if comp == ".bz2":
        import bz2

        return bz2.open(path, "rb")
    if comp == ".xz":
        import lzma

        return lzma.open(path, "rb")
    return open(path, "rb")


def _iter_file_lines(path: str, budget: _Budget) -> Iterable[tuple[str, bytes]]:
    """``(where, line)`` of one file; a line longer than the limit is yielded truncated (counted bad)."""
    name = os.path.basename(path)
    with _open_log(path) as fh:
        lineno = 0
        while True:
            line = fh.readline(MAX_LINE_BYTES + 1)
            if not line:
                return
            lineno += 1
            budget.take(len(line), path)
            if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                while True:  # skip the rest of the over-long line without keeping it
                    rest = fh.readline(MAX_LINE_BYTES)
                    budget.take(len(rest), path)
                    if not rest or rest.endswith(b"\n"):
                        break
            yield f"{name}:{lineno}", line


def read_log_sources(path: str | os.PathLike[str]) -> tuple[list[tuple[str, bytes]], dict[str, Any]]:
    """Every line of a log file (and its rotated siblings), or of every log file in a directory.

    Returns ``(lines, sources)``; ``sources`` lists the files read (``read``), the files seen but not
    read with the reason (``not_read``: unsupported compression, unreadable) and the other files of
    a directory (``ignored``: not log names, hidden, sub-directories).
    """
    p = os.fspath(path)
    read: list[str] = []
    not_read: list[dict[str, str]] = []
    ignored: list[str] = []
    if os.path.isdir(p):
        candidates = []
        for n in sorted(os.listdir(p)):
            full = os.path.join(p, n)
            # a log-named symlink, directory or special file is a log the audit cannot read (never
            # followed or opened): listed as not read (fails closed), not silently ignored
            if is_log_name(n):
                candidates.append(full)
            else:
                ignored.append(n)
        if not any(os.path.isfile(c) and not os.path.islink(c) for c in candidates):
            raise AisecInputError(f"inference log directory {p!r} has no .jsonl/.log files")
    elif os.path.isfile(p):
        candidates = [p, *rotated_siblings(p)]
    else:
        raise AisecInputError(f"inference log {p!r} does not exist")
    budget = _Budget(MAX_TOTAL_BYTES)
    lines: list[tuple[str, bytes]] = []
    for f in candidates:
        if _compression(f) not in _READABLE_COMPRESSION:
            not_read.append({"file": os.path.basename(f), "reason": f"unsupported compression {_compression(f)}"})
            continue
        if not os.path.isfile(f) or os.path.islink(f) and f != p:
            not_read.append({"file": os.path.basename(f), "reason": "not a regular file"})
            continue
        try:
            lines.extend(_iter_file_lines(f, budget))
        except AisecInputError:  # the total budget: the whole audit stops (exit 2)
            raise
        except (OSError, EOFError, ValueError) as exc:  # ValueError: lzma/bz2 corrupt streams
            if f == p:
                raise AisecInputError(f"inference log {f!r} is unreadable: {exc}") from exc
            not_read.append({"file": os.path.basename(f), "reason": f"unreadable: {type(exc).__name__}"})
            continue
        read.append(os.path.basename(f))
    return lines, {"read": read, "not_read": not_read, "ignored": ignored}


def read_log_lines(path: str | os.PathLike[str]) -> list[str]:
    """Lines of a local JSON-lines log file (and its rotated siblings), or of a directory's log files."""
    lines, _ = read_log_sources(path)
    return [line.decode("utf-8", errors="replace") for _, line in lines]


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
        q1, med, q3 = (float(v) for v in np.percentile(col, [25, 50, 75]))
        # a constant-ish feature falls back on the observed range
        low, high = robust_range(q1, q3, k, observed=(float(col.min()), float(col.max())), median=med)
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
        observed = (float(col.meta.get("min", q[0])), float(col.meta.get("max", q[-1])))
        low, high = robust_range(q1, q3, k, observed=observed, median=med)
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


#: most features a reference may list.
MAX_REFERENCE_FEATURES = 100_000


def validate_reference(ref: Any, source: str) -> dict[str, Any]:
    """Check a reference (``{"features": [{"name", "low", "high"}, ...]}``) field by field.

    Refused with :class:`AisecInputError` naming the source (exit 2): not an object, a ``schema``
    other than ``aisec.inference-reference/v1``, no features, a feature without a unique non-empty
    name, ``low``/``high`` that are not finite numbers with ``low <= high``.
    """
    from airflow_aisec.utils.strictjson import expect

    expect(ref, dict, source)
    schema = ref.get("schema", REFERENCE_SCHEMA)
    if schema != REFERENCE_SCHEMA:
        raise AisecInputError(f"{source}: schema {str(schema)[:60]!r} is not {REFERENCE_SCHEMA}")
    feats = ref.get("features")
    if not isinstance(feats, list) or not feats:
        raise AisecInputError(f"{source}: reference profile must have a non-empty 'features' list")
    if len(feats) > MAX_REFERENCE_FEATURES:
        raise AisecInputError(f"{source}: more than {MAX_REFERENCE_FEATURES} features")
    names: set[str] = set()
    for i, f in enumerate(feats):
        where = f"{source}: features[{i}]"
        expect(f, dict, where)
        name = f.get("name", f"f{i}")
        if not isinstance(name, str) or not name or name in names:
            raise AisecInputError(f"{where}: name must be a unique non-empty string")
        names.add(name)
        low, high = f.get("low"), f.get("high")
        if not (_is_number(low) and _is_number(high) and math.isfinite(low) and math.isfinite(high) and low <= high):
            raise AisecInputError(f"reference feature {name[:60]!r} ({where}) needs finite numeric low <= high")
    return dict(ref)


def load_reference(source: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, Any]:
    """A reference dict from a path or mapping, validated (see :func:`validate_reference`).

    A path may be the JSON of :func:`build_reference_ranges` (read with strict JSON: duplicate keys,
    NaN, huge numbers, deep nesting are errors) or a drift profile file (issue 5).
    """
    from airflow_aisec.utils.strictjson import load_path

    if isinstance(source, Mapping):
        return validate_reference(dict(source), "reference profile")
    name = f"reference profile {os.fspath(source)!r}"
    if _is_drift_profile(source):
        return validate_reference(reference_from_drift_profile(source), name)
    if not os.path.exists(os.fspath(source)):
        raise AisecInputError(f"{name} does not exist")
    return validate_reference(load_path(source, source=name, max_bytes=64 * 1024 * 1024), name)


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
    total = len(recs)
    exempt = set(exempt_clients)  # matched exactly against the logged id: a variant is not exempt
    audited = [r for r in recs if r.raw_client_id not in exempt]
    n_exempt = total - len(audited)

    # -- rate per client, in rows (items): a batch of 50 rows is 50 against the limit
    by_client: dict[str, list[Record]] = defaultdict(list)
    for r in audited:
        by_client[r.client_id].append(r)
    limit = rate_limit_per_minute
    clients_over = 0
    client_rows = []
    for client, rows in sorted(by_client.items()):
        attempted, a_start = _max_in_window([r.ts for r in rows], 60.0, [r.rows for r in rows])
        served_recs = [r for r in rows if r.status != "rate_limited"]
        served, s_start = (
            _max_in_window([r.ts for r in served_recs], 60.0, [r.rows for r in served_recs])
            if served_recs
            else (0, 0.0)
        )
        throttled = sum(r.status == "rate_limited" for r in rows)
        variants = sorted({r.raw_client_id for r in rows})
        client_rows.append(
            {
                "client_id": client,
                "requests": len(rows),
                "rows": sum(r.rows for r in rows),
                "max_rows_per_minute_attempted": attempted,
                "max_rows_per_minute_served": served,
                "rate_limited": throttled,
                "id_variants": len(variants),
            }
        )
        details = {
            "client_id": client,
            "id_variants": variants[:10],
            "n_id_variants": len(variants),
            "limit_per_minute": limit,
            "max_per_minute_attempted": attempted,
            "max_per_minute_served": served,
            "rate_limited_responses": throttled,
            "requests": len(rows),
            "rows": sum(r.rows for r in rows),
            "distinct_inputs": len({r.input_hash for r in rows if r.input_hash}),
        }
        if served > limit:
            clients_over += 1
            details["window_start"] = _iso(s_start)
            report.add_finding(
                F_RATE_UNENFORCED,
                "high",
                f"Client served {served} rows/minute, above the limit {limit:g} (rate limit not enforced; "
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
                f"Client attempted {attempted} rows/minute (limit {limit:g}); {throttled} request(s) throttled",
                f"client:{client}",
                details,
            )
    rows_unknown = sum(1 for r in audited if not r.rows_known and r.status != "rate_limited")
    if rows_unknown:
        report.add_finding(
            F_ROWS_UNKNOWN,
            "info",
            f"{rows_unknown} served request(s) log neither features nor a row count: each counted as one row",
            subject,
            {"requests": rows_unknown},
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

    # -- repeated-input probing: per row when rows are logged, so one row hidden in varied batches counts
    for client, rows in sorted(by_client.items()):
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
        if n >= repeat_threshold:
            report.add_finding(
                F_PROBING,
                "medium",
                f"Client sent the same input {n} times (probing pattern)",
                f"client:{client}",
                {"client_id": client, "input_hash": ih, "repeats": n, "threshold": repeat_threshold},
            )

    # -- out-of-distribution share, per row: every row of a batch is checked
    ood_share = None
    unchecked = 0
    if reference is not None:
        ref = load_reference(reference)
        ranges = [(float(f["low"]), float(f["high"])) for f in ref["features"]]
        with_features = [r for r in audited if r.features is not None or r.malformed_features]
        unchecked = sum(1 for r in audited if r.features is None and not r.malformed_features and r.status == "ok")
        if not with_features:
            raise AisecUndecidableError(
                f"{subject}: a reference profile was given but no record carries features (cannot compute OOD share)"
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
                bad_rows = sum(1 for row in rows_data if _is_ood(row, ranges))
            if bad_rows:
                n_ood += bad_rows
                per_client[r.client_id] += bad_rows
                if r.input_hash:
                    ood_hashes.add(r.input_hash)
        ood_share = n_ood / n_rows if n_rows else 1.0
        details = {
            "ood": n_ood,
            "with_features": n_rows,
            "requests_with_features": len(with_features),
            "malformed_feature_requests": sum(1 for r in with_features if r.malformed_features),
            "share": ood_share,
            "max_share": max_ood_share,
            "top_clients": [{"client_id": c, "ood": n} for c, n in per_client.most_common(5)],
            "sample_input_hashes": sorted(ood_hashes)[:10],
        }
        if ood_share > max_ood_share:
            report.add_finding(
                F_OOD,
                "high",
                f"{ood_share:.1%} of input rows are out of distribution (max {max_ood_share:.1%}): "
                "adversarial/OOD signal",
                subject,
                details,
            )
        elif n_ood:
            report.add_finding(F_OOD, "info", f"{n_ood} out-of-distribution row(s), within bounds", subject, details)
        if unchecked:
            report.add_finding(
                F_OOD_UNCHECKED,
                "medium",
                f"{unchecked} served request(s) logged without features: not checked against the reference",
                subject,
                {"requests": unchecked},
            )

    # -- lines that could not be attributed, and files that were not read
    lines_total = bad.count + len(records)
    bad_share = bad.count / lines_total if lines_total else 0.0
    undecidable = []
    if bad.count:
        over = bad_share > max_bad_line_share
        report.add_finding(
            F_BAD_LINES,
            "high" if over or bad_share > 0.5 else "medium",
            f"{bad.count} log line(s) could not be attributed to a request (share {bad_share:.2%}, "
            f"tolerated {max_bad_line_share:.2%})",
            subject,
            {
                "unparseable": bad.count,
                "share": bad_share,
                "max_share": max_bad_line_share,
                "reasons": dict(bad.reasons.most_common(20)),
                "examples": bad.examples,
            },
        )
        if over:
            undecidable.append(f"{bad.count} of {lines_total} line(s) could not be attributed")
    src = dict(sources or {})
    if src.get("not_read"):
        report.add_finding(
            F_NOT_READ,
            "high",
            f"{len(src['not_read'])} log file(s) next to the audited one could not be read",
            subject,
            {"files": src["not_read"][:50]},
        )
        undecidable.append(f"{len(src['not_read'])} log file(s) not read")
    if src.get("ignored"):
        report.add_finding(
            F_IGNORED_FILES,
            "info",
            f"{len(src['ignored'])} file(s) in the log directory are not log files and were not read",
            subject,
            {"files": src["ignored"][:50]},
        )

    report.metrics.update(
        {
            "requests": total,
            "rows": sum(r.rows for r in recs),
            "clients": len(by_client),
            "clients_over_limit": clients_over,
            "exempt_requests": n_exempt,
            "rate_limited": sum(r.status == "rate_limited" for r in recs),
            "latency_p50_ms": p50,
            "latency_p95_ms": p95,
            "latency_p99_ms": p99,
            "latency_slo_ms": latency_slo_ms,
            "error_rate": error_rate,
            "ood_share": ood_share,
            "ood_unchecked_requests": unchecked,
            "requests_without_row_count": rows_unknown,
            "unparseable_lines": bad.count,
            "records_outside_window": outside,
            "files_read": len(src.get("read", [])),
            "files_not_read": len(src.get("not_read", [])),
            "window_seconds": recs[-1].ts - recs[0].ts,
        }
    )
    report.details["clients"] = client_rows[:200]
    report.details["window"] = {"from": _iso(recs[0].ts), "to": _iso(recs[-1].ts)}
    if src:
        report.details["sources"] = {k: v[:200] for k, v in src.items()}
    status = gate_status([f.severity for f in report.findings], fail_severity)
    p95_txt = f"{p95:.1f}" if p95 is not None else "n/a"
    summary = (
        f"{total} requests ({report.metrics['rows']} rows) from {len(by_client)} client(s): {clients_over} over "
        f"{limit:g}/min, p95 {p95_txt} ms (SLO {latency_slo_ms:g}), errors {error_rate:.1%}"
        + (f", OOD {ood_share:.1%}" if ood_share is not None else "")
    )
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
