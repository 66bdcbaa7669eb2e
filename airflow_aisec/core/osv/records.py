"""OSV records are untrusted input: field-by-field validation, timestamps, package-name keys."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from packaging.utils import canonicalize_name

from airflow_aisec.exceptions import AisecInputError
from airflow_aisec.utils import strictjson

#: The OSV ecosystem this module indexes.
ECOSYSTEM = "PyPI"
#: Longest version string, package name and advisory ID accepted from a record.
MAX_VERSION_CHARS = 256
MAX_NAME_CHARS = 256
#: How far in the future a record's timestamps may lie (clock skew); beyond is an error.
FUTURE_SKEW = timedelta(days=1)


def parse_timestamp(text: str | None) -> datetime | None:
    """RFC 3339 timestamp → aware ``datetime`` (``None`` when absent or unparsable). Trusted input only."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


# ------------------------------------------------------------------------------------ validation
_TIMESTAMP = re.compile(
    r"(?P<year>[0-9]{1,4})-(?P<rest>[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?)"
    r"(?P<zone>[Zz]|[+-][0-9]{2}:[0-9]{2})?"
)
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+-]{0,199}")
_EVENT_KINDS = ("introduced", "fixed", "last_affected", "limit")
RANGE_TYPES = ("ECOSYSTEM", "SEMVER", "GIT")


def is_pypi(ecosystem: str) -> bool:
    """``PyPI`` in any case (fail closed: a mis-cased ecosystem is still indexed)."""
    return ecosystem.strip().lower() == ECOSYSTEM.lower()


def lookup_key(name: str) -> str:
    """Index key of a package name: PEP 503 normalised, separators trimmed (``Gratient_`` → ``gratient``)."""
    return canonicalize_name(name).strip("-")


def record_timestamp(value: Any, where: str, *, now: datetime) -> datetime | None:
    """An OSV timestamp: an aware datetime, ``None`` for zero / pre-1990 placeholders (``0001-01-01``).

    Wrong types, unparsable text and dates more than :data:`FUTURE_SKEW` in the future are errors.
    """
    strictjson.expect(value, str, where)
    m = _TIMESTAMP.fullmatch(value.strip()) if len(value) <= 64 else None
    if m is None:
        raise AisecInputError(f"{where}: not an RFC 3339 timestamp: {value[:40]!r}")
    year = int(m["year"])
    if year < strictjson.EARLIEST.year:
        return None  # Go's zero time and similar placeholders: real records carry them
    text = f"{year:04d}-{m['rest']}{m['zone'] or 'Z'}".replace("z", "Z").replace("t", "T")
    frac = re.search(r"\.([0-9]+)", text)
    if frac and len(frac.group(1)) > 6:  # Python parses at most microseconds
        text = text.replace(frac.group(0), "." + frac.group(1)[:6])
    return strictjson.parse_timestamp(text, where, now=now, future=FUTURE_SKEW)


def _bounded_str(obj: dict[str, Any], key: str, where: str, limit: int, *, required: bool = False) -> str | None:
    value = strictjson.get_str(obj, key, where, ... if required else None)
    if value is not None and (len(value) > limit or (required and not value.strip())):
        raise AisecInputError(f"{where}.{key}: {'empty' if len(value) <= limit else f'longer than {limit} characters'}")
    return value


def validate_record(record: Any, where: str, *, now: datetime) -> datetime | None:
    """Check the fields of an OSV record that matching uses; return its ``modified`` (``None``: placeholder).

    Refused (:class:`AisecInputError` naming the field): a non-object, a missing or odd ``id``, a missing
    or implausible ``modified`` (future-dated), wrong types anywhere in ``affected``, ``severity``,
    ``aliases``, ``withdrawn``; range events that are not exactly one of introduced / fixed /
    last_affected / limit with a string value; unknown range types; absurdly long strings.
    """
    strictjson.expect(record, dict, where)
    rid = _bounded_str(record, "id", where, 200, required=True)
    assert rid is not None
    if not _ID.fullmatch(rid):
        raise AisecInputError(f"{where}.id: {rid[:40]!r} is not an advisory identifier")
    where = f"advisory {rid}"
    if "modified" not in record:
        raise AisecInputError(f"{where}: missing 'modified'")
    modified = record_timestamp(record["modified"], f"{where}.modified", now=now)
    for key in ("published", "withdrawn"):
        if record.get(key) is not None:
            record_timestamp(record[key], f"{where}.{key}", now=now)
    for key in ("summary", "details"):
        strictjson.get_str(record, key, where, None)
    for key in ("aliases", "related"):
        for i, alias in enumerate(strictjson.get_list(record, key, where, None) or ()):
            strictjson.expect(alias, str, f"{where}.{key}[{i}]")
    for i, sev in enumerate(strictjson.get_list(record, "severity", where, None) or ()):
        strictjson.expect(sev, dict, f"{where}.severity[{i}]")
        strictjson.get_str(sev, "type", f"{where}.severity[{i}]")
        strictjson.get_str(sev, "score", f"{where}.severity[{i}]")
    db_specific = strictjson.get_dict(record, "database_specific", where, None)
    if db_specific is not None and "severity" in db_specific:
        strictjson.get_str(db_specific, "severity", f"{where}.database_specific", None)
    for i, affected in enumerate(strictjson.get_list(record, "affected", where, None) or ()):
        aw = f"{where}.affected[{i}]"
        strictjson.expect(affected, dict, aw)
        pkg = strictjson.get_dict(affected, "package", aw)
        _bounded_str(pkg, "ecosystem", f"{aw}.package", MAX_NAME_CHARS, required=True)
        _bounded_str(pkg, "name", f"{aw}.package", MAX_NAME_CHARS, required=True)
        versions = strictjson.get_list(affected, "versions", aw, None) or ()
        if not all(type(v) is str and 0 < len(v) <= MAX_VERSION_CHARS and not v.isspace() for v in versions):
            for j, version in enumerate(versions):  # the slow path only to name the culprit
                strictjson.expect(version, str, f"{aw}.versions[{j}]")
                if len(version) > MAX_VERSION_CHARS or not version.strip():
                    raise AisecInputError(f"{aw}.versions[{j}]: empty or longer than {MAX_VERSION_CHARS} characters")
        for j, rng in enumerate(strictjson.get_list(affected, "ranges", aw, None) or ()):
            rw = f"{aw}.ranges[{j}]"
            strictjson.expect(rng, dict, rw)
            kind = strictjson.get_str(rng, "type", rw)
            if kind not in RANGE_TYPES:
                raise AisecInputError(f"{rw}.type: unknown range type {kind[:40]!r}")
            events = strictjson.get_list(rng, "events", rw)
            if not events:
                raise AisecInputError(f"{rw}.events: empty")
            for k, event in enumerate(events):
                ew = f"{rw}.events[{k}]"
                strictjson.expect(event, dict, ew)
                if len(event) != 1 or next(iter(event)) not in _EVENT_KINDS:
                    raise AisecInputError(f"{ew}: must hold exactly one of {', '.join(_EVENT_KINDS)}")
                (key,) = event
                value = strictjson.get_str(event, key, ew)
                if len(value) > MAX_VERSION_CHARS or not value.strip():
                    raise AisecInputError(f"{ew}.{key}: empty or longer than {MAX_VERSION_CHARS} characters")
    return modified
