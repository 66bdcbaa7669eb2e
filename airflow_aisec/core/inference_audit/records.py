"""Inference-log records: one JSON log line → a :class:`Record`, strictly parsed and bounded.

A line that cannot be attributed to a request (bad JSON, no timestamp, no client id, …) is counted in
:class:`BadLines` with its reason and position, never with its content.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from airflow_aisec.exceptions import AisecInputError


def input_hash(features: Any) -> str:
    """``sha256:<hex>`` of the canonical JSON of ``features`` (what the model server logs)."""
    canonical = json.dumps(features, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


#: longest log line accepted, in bytes (the demo server's bodies are <= 64 KiB); longer: a bad line.
MAX_LINE_BYTES = 1024 * 1024
#: longest client id accepted (characters, after normalisation); longer: a bad line.
MAX_CLIENT_ID = 256
#: most feature rows one logged request may carry; more: the line is bad.
MAX_BATCH_ROWS = 100_000
#: most log lines one audit reads (memory stays bounded); more: an input error naming the limit.
MAX_LINES = 5_000_000
#: deepest JSON nesting accepted on one log line (a batch of rows is depth 3).
MAX_LINE_DEPTH = 16


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
