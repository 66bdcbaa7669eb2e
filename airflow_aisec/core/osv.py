"""Offline OSV vulnerability database for PyPI: load once, index by package, match per the OSV spec.

The database is a zip of OSV JSON records (the layout of OSV's per-ecosystem ``all.zip`` exports:
one ``<ID>.json`` per advisory) or a directory of such files. :meth:`OsvDatabase.load` reads it once
into an index keyed by the PEP 503-normalised package name; matching is then a dictionary lookup
plus version comparisons with :mod:`packaging.version` (PEP 440 ordering).

Matching follows https://ossf.github.io/osv-schema/#evaluation:

* a version is affected when it is listed in ``affected[].versions`` **or** falls inside one of
  the ``ECOSYSTEM`` ranges (``introduced`` / ``fixed`` / ``last_affected`` events, bounded by
  ``limit``); ``GIT`` ranges cannot be evaluated against package versions and are ignored;
* ``withdrawn`` records never match;
* versions are compared as PEP 440 versions everywhere (``0.5`` == ``0.5.0`` == ``v0.5`` ==
  ``0!0.5``), and local labels (``+ubuntu1``) are ignored: a local build of an affected release is
  affected (fail closed);
* version strings that PEP 440 cannot parse (legacy releases such as ``0.7.4.svn.r2010``) never
  crash the matcher: listed versions are compared as normalised strings, and a range with an
  unparsable bound (or no ``introduced`` event at all) is *indeterminate* — the explicit ``versions``
  list (an empty one lists nothing) then decides alone, and a
  record with neither is reported as a possible match that needs a human (fail closed). So is an
  ``affected`` entry that carries no version information the matcher can evaluate (no ``versions``,
  no ``ECOSYSTEM``/``SEMVER`` range: e.g. only ``GIT`` ranges, or nothing at all).

Records are untrusted input: every member is parsed with :mod:`airflow_aisec.utils.strictjson` and
checked field by field (types, lengths, timestamps); anything odd is an error naming the member, never
a skipped record. The archive itself is bounded (members, bytes per member and in total, compression
ratio). Freshness is the :data:`FRESHNESS_RANK`-th newest ``modified`` date, so one outlier record
cannot make an old database look fresh; a record modified in the future is an error.

No Airflow import here.
"""

from __future__ import annotations

import hashlib
import os
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import cached_property
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError
from airflow_aisec.utils import strictjson

#: The OSV ecosystem this module indexes.
ECOSYSTEM = "PyPI"
#: Environment variable naming the offline database (zip or directory) DAGs use by default.
OSV_DB_ENV = "AISEC_OSV_DB"
#: Largest single OSV record accepted (bytes, decompressed); real records are < 64 KiB.
MAX_RECORD_BYTES = 16 * 1024 * 1024
#: Largest total of decompressed record bytes in one database (the PyPI export is ~0.2 GiB).
MAX_TOTAL_BYTES = 1024 * 1024 * 1024
#: Most members (files) accepted in one archive or directory.
MAX_MEMBERS = 500_000
#: Largest compression ratio accepted for a member above :data:`RATIO_MIN_BYTES` (real JSON: < 20).
MAX_RATIO = 200
RATIO_MIN_BYTES = 1024 * 1024
#: Largest database file (zip) read.
MAX_DB_BYTES = 512 * 1024 * 1024
#: Longest version string, package name and advisory ID accepted from a record.
MAX_VERSION_CHARS = 256
MAX_NAME_CHARS = 256
#: Freshness is the FRESHNESS_RANK-th newest ``modified`` date (the newest when fewer records).
FRESHNESS_RANK = 10
#: How far in the future a record's timestamps may lie (clock skew); beyond is an error.
FUTURE_SKEW = timedelta(days=1)

SEVERITY_LEVELS = ("critical", "high", "medium", "low", "info")


def parse_version(text: str) -> Version | None:
    """``Version(text)``, or ``None`` when ``text`` is not PEP 440."""
    try:
        return Version(text)
    except (InvalidVersion, TypeError):
        return None


_N = r"(?:0|[1-9][0-9]*)"
#: PEP 440 versions already in normal form (what ``str(Version(text)) == text`` holds for).
_NORMAL_FORM = re.compile(
    rf"(?:[1-9][0-9]*!)?{_N}(?:\.{_N})*(?:(?:a|b|rc){_N})?(?:\.post{_N})?(?:\.dev{_N})?(?:\+[a-z0-9]+(?:\.[a-z0-9]+)*)?"
)


def version_key(text: str) -> str:
    """Comparable form of a version string: PEP 440 normal form, else the stripped lower-case text."""
    if _NORMAL_FORM.fullmatch(text):  # already normal (the vast majority): skip the parser
        return text
    parsed = parse_version(text)
    return str(parsed) if parsed is not None else text.strip().lower()


def cvss_severity(score: float) -> str:
    """CVSS base score → our severity (FIRST's qualitative scale; 0.0 → ``info``)."""
    if score >= 9.0:
        return "critical"
    if score >= 7.0:
        return "high"
    if score >= 4.0:
        return "medium"
    if score > 0.0:
        return "low"
    return "info"


_DB_SPECIFIC_SEVERITY = {"critical": "critical", "high": "high", "moderate": "medium", "medium": "medium", "low": "low"}


@dataclass(frozen=True)
class Severity:
    """Severity of an advisory and where it came from (``CVSS_V4``, ``CVSS_V3``, ``database_specific``, ``default``)."""

    level: str
    source: str
    score: float | None = None
    vector: str | None = None


def severity_of(record: dict[str, Any], default: str = "high") -> Severity:
    """Severity of an OSV record: CVSS v4, else CVSS v3 base score, else ``database_specific.severity``, else ``default``."""
    by_type = {
        str(s.get("type")): str(s.get("score"))
        for s in record.get("severity") or ()
        if isinstance(s, dict) and s.get("score")
    }
    for kind in ("CVSS_V4", "CVSS_V3"):
        vector = by_type.get(kind)
        if not vector:
            continue
        try:
            if kind == "CVSS_V4":
                from cvss import CVSS4

                score = float(CVSS4(vector).base_score)
            else:
                from cvss import CVSS3

                score = float(CVSS3(vector).base_score)
        except Exception:
            continue
        return Severity(cvss_severity(score), kind, score, vector)
    db_specific = record.get("database_specific") or {}
    level = (
        _DB_SPECIFIC_SEVERITY.get(str(db_specific.get("severity", "")).lower())
        if isinstance(db_specific, dict)
        else None
    )
    if level:
        return Severity(level, "database_specific")
    return Severity(default, "default")


def _public(version: Version) -> Version:
    """``version`` without its local label (``1.0+ubuntu1`` → ``1.0``)."""
    return version if version.local is None else Version(version.public)


# ----------------------------------------------------------------------------------------- ranges
@dataclass(frozen=True)
class _Range:
    """One compiled ``ECOSYSTEM`` range: events sorted by version, or indeterminate."""

    events: tuple[tuple[Version | None, str], ...]  # (version or None for "0", kind); sorted
    limits: tuple[Version, ...]
    indeterminate: bool  # some bound could not be parsed
    raw: dict[str, Any]
    #: (start, end, end_inclusive) intervals paired in document order; None start = "0", None end = open.
    pairs: tuple[tuple[Version | None, Version | None, bool], ...] = ()

    @classmethod
    def compile(cls, raw: dict[str, Any]) -> _Range:
        events: list[tuple[Version | None, str]] = []
        limits: list[Version] = []
        pairs: list[tuple[Version | None, Version | None, bool]] = []
        start: Version | None = None
        open_interval = False
        indeterminate = False
        for event in raw.get("events") or ():
            if not isinstance(event, dict):
                indeterminate = True
                continue
            for kind in ("introduced", "fixed", "last_affected", "limit"):
                if kind not in event:
                    continue
                text = str(event[kind])
                if kind == "introduced" and text == "0":
                    events.append((None, kind))
                    if not open_interval:
                        start, open_interval = None, True
                    continue
                if kind == "limit" and text == "*":
                    continue
                parsed = parse_version(text)
                if parsed is None:
                    indeterminate = True
                elif kind == "limit":
                    limits.append(parsed)
                else:
                    events.append((parsed, kind))
                    if kind == "introduced":
                        if not open_interval:
                            start, open_interval = parsed, True
                    elif open_interval:
                        pairs.append((start, parsed, kind == "last_affected"))
                        open_interval = False
        if open_interval:
            pairs.append((start, None, False))
        if not any(kind == "introduced" for _, kind in events):
            # The OSV schema requires an ``introduced`` event: without one (only fixed / last_affected /
            # limit, or an unparsable introduced) the sweep would say "never affected" — fail closed.
            indeterminate = True
        # "0" sorts first; at equal versions an introduced event precedes fixed/last_affected.
        order = {"introduced": 0, "fixed": 1, "last_affected": 2}
        events.sort(key=lambda e: (e[0] is not None, e[0] or Version("0"), order[e[1]]))
        return cls(tuple(events), tuple(limits), indeterminate, raw, tuple(pairs))

    def contains(self, version: Version) -> bool:
        """Whether ``version`` is in this range (callers check :attr:`indeterminate` first).

        The OSV spec's evaluation (sweep the events in version order) **or** the intervals read in
        document order (``introduced`` paired with the next ``fixed``/``last_affected``). Both agree on
        well-formed ranges; real PyPA records sometimes pack overlapping intervals into one range
        (``PYSEC-2022-236`` pyspark, ``PYSEC-2021-114`` wagtail), where the sweep alone would miss
        affected versions — the union fails closed.
        """
        if any(version >= limit for limit in self.limits):
            return False
        for start, end, inclusive in self.pairs:
            if (start is None or version >= start) and (end is None or version < end or (inclusive and version == end)):
                return True
        affected = False
        for bound, kind in self.events:
            if kind == "introduced":
                if bound is None or version >= bound:
                    affected = True
            elif kind == "fixed":
                if version >= bound:  # type: ignore[operator]
                    affected = False
            elif kind == "last_affected" and version > bound:  # type: ignore[operator]
                affected = False
        return affected


@dataclass
class Advisory:
    """One OSV record's ``affected`` entry for one package (a record can name several packages)."""

    id: str
    package: str  # normalised name
    record: dict[str, Any] = field(repr=False)
    affected: dict[str, Any] = field(repr=False)

    @property
    def aliases(self) -> list[str]:
        return [str(a) for a in self.record.get("aliases") or ()]

    @property
    def withdrawn(self) -> str | None:
        value = self.record.get("withdrawn")
        return str(value) if value else None

    @property
    def summary(self) -> str:
        text = self.record.get("summary") or self.record.get("details") or "N/A"
        return " ".join(str(text).split())

    @cached_property
    def ranges(self) -> tuple[_Range, ...]:
        return tuple(
            _Range.compile(r)
            for r in self.affected.get("ranges") or ()
            if isinstance(r, dict) and r.get("type") in ("ECOSYSTEM", "SEMVER")
        )

    @cached_property
    def listed_versions(self) -> frozenset[str] | None:
        """Listed versions that PEP 440 cannot parse, as normalised strings (``None``: no list)."""
        versions = self.affected.get("versions")
        if not versions:  # an empty list lists nothing: it cannot decide an indeterminate range
            return None
        return frozenset(version_key(str(v)) for v in versions if parse_version(str(v)) is None)

    @cached_property
    def listed_parsed(self) -> frozenset[Version]:
        """Listed PEP 440 versions by their public part (``0.5`` == ``0.5.0``; ``+local`` ignored)."""
        out: set[Version] = set()
        for v in self.affected.get("versions") or ():
            parsed = parse_version(str(v))
            if parsed is not None:
                out.add(_public(parsed))
        return frozenset(out)

    @cached_property
    def unevaluable(self) -> bool:
        """No listed version and no range the matcher can evaluate (only GIT ranges, or nothing)."""
        return not self.affected.get("versions") and not self.ranges

    @cached_property
    def fix_versions(self) -> list[Version]:
        fixes = {bound for rng in self.ranges for bound, kind in rng.events if kind == "fixed" and bound is not None}
        return sorted(fixes)  # type: ignore[type-var]

    def range_verdict(self, version: Version) -> bool | None:
        """Whether the ECOSYSTEM ranges alone say ``version`` is affected; ``None`` when they cannot tell."""
        if not self.ranges:
            return None
        if any(rng.contains(version) for rng in self.ranges if not rng.indeterminate):
            return True
        if any(rng.indeterminate for rng in self.ranges):
            return None
        return False

    def match(self, version: Version | str) -> Match | None:
        """Evaluate this advisory for ``version``; ``None`` when not affected."""
        if self.withdrawn:
            return None
        text = str(version)
        listed = self.listed_versions
        parsed = version if isinstance(version, Version) else parse_version(text)
        if self.unevaluable:
            return Match(self, text, certain=False, reason="advisory names the package without evaluable versions")
        if parsed is not None and _public(parsed) in self.listed_parsed:
            return Match(self, text, certain=True, reason="listed in affected versions")
        if parsed is None and listed is not None and version_key(text) in listed:
            return Match(self, text, certain=True, reason="listed in affected versions")
        if parsed is None:
            if self.ranges and listed is None:
                return Match(self, text, certain=False, reason="installed version is not PEP 440; range not evaluable")
            return None
        verdict = self.range_verdict(parsed)
        if not verdict and parsed.local is not None:
            verdict = self.range_verdict(_public(parsed)) or verdict
        if verdict:
            return Match(self, text, certain=True, reason="within an affected range")
        if verdict is None and listed is None and self.ranges:
            return Match(self, text, certain=False, reason="affected range has an unparsable bound")
        return None


@dataclass(frozen=True)
class Match:
    """An advisory that applies to an installed version (``certain=False``: needs a human, counted as a hit)."""

    advisory: Advisory
    version: str
    certain: bool
    reason: str

    @property
    def fix_versions(self) -> list[Version]:
        parsed = parse_version(self.version)
        fixes = self.advisory.fix_versions
        return [f for f in fixes if parsed is None or f > parsed]


# --------------------------------------------------------------------------------------- database
@dataclass
class OsvDatabase:
    """An in-memory index of PyPI OSV advisories (see the module docstring)."""

    source: str
    index: dict[str, list[Advisory]]
    records: int
    withdrawn: int
    sha256: str | None
    newest_modified: datetime | None
    #: the FRESHNESS_RANK-th newest ``modified`` date: what the freshness gate uses
    freshness: datetime | None = None
    #: records naming no PyPI package (not indexed, counted)
    other_ecosystem_records: int = 0
    #: PyPI records whose ``modified`` is a zero/pre-1990 placeholder (matched, not used for freshness)
    undated_records: int = 0
    #: archive members that are not ``.json`` records (not read, counted)
    members_ignored: int = 0
    load_seconds: float = 0.0

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> OsvDatabase:
        """Load a zip or directory of OSV JSON records (the last zip loaded is reused while unchanged).

        A zip is identified by its resolved path, size and modification time; a changed file is
        re-read and re-hashed. Directories are always re-read.

        :raises AisecInputError: the path does not exist.
        :raises AisecUndecidableError: the archive or a record is corrupt, or holds no PyPI advisory.
        """
        import time

        t0 = time.perf_counter()
        p = Path(path)
        if not p.exists():
            raise AisecInputError(f"offline OSV database {str(p)!r} does not exist")
        sha: str | None = None
        key: tuple[str, int, int] | None = None
        if p.is_file():
            st = p.stat()
            key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
            cached = _LOADED.get(key)
            if cached is not None:
                return cached
        ignored: list[str] = []
        if p.is_dir():
            blobs: Iterable[tuple[str, bytes]] = _iter_dir(p, ignored)
        else:
            if not p.is_file():
                raise AisecInputError(f"offline OSV database {str(p)!r} is not a regular file or directory")
            if p.stat().st_size > MAX_DB_BYTES:
                raise AisecUndecidableError(f"offline OSV database {str(p)!r} is larger than {MAX_DB_BYTES} bytes")
            try:
                data = p.read_bytes()
            except OSError as exc:
                raise AisecUndecidableError(f"offline OSV database {str(p)!r} cannot be read: {exc}") from exc
            sha = hashlib.sha256(data).hexdigest()
            blobs = _iter_zip(p, data, ignored)
        db = cls.from_records(str(p), blobs, sha256=sha)
        db.members_ignored = len(ignored)
        db.load_seconds = time.perf_counter() - t0
        if key is not None:
            _LOADED.clear()  # keep one database in memory at most
            _LOADED[key] = db
        return db

    @classmethod
    def from_records(
        cls,
        source: str,
        blobs: Iterable[tuple[str, bytes | dict[str, Any]]],
        *,
        sha256: str | None = None,
        now: datetime | None = None,
    ) -> OsvDatabase:
        """Build the index from ``(member name, JSON bytes or parsed record)`` pairs.

        Every record is validated (:func:`validate_record`); any problem is an
        :class:`AisecUndecidableError` naming the member — a record is never skipped silently.
        """
        now = now or datetime.now(timezone.utc)
        index: dict[str, list[Advisory]] = {}
        records = withdrawn = other = 0
        dates: list[datetime] = []
        undated = 0
        seen_ids: dict[str, str] = {}
        for name, blob in blobs:
            where = f"offline OSV database {source!r}: record {name!r}"
            try:
                record = blob if isinstance(blob, dict) else strictjson.loads(blob, source="not valid JSON")
                modified = validate_record(record, "advisory", now=now)
            except AisecInputError as exc:
                raise AisecUndecidableError(f"{where}: {exc}") from None
            rid = record["id"]
            if rid in seen_ids:
                raise AisecUndecidableError(f"{where}: advisory {rid!r} also defined by {seen_ids[rid]!r}")
            seen_ids[rid] = name
            pypi = False
            for affected in record.get("affected") or ():
                pkg = affected["package"]
                if not is_pypi(pkg["ecosystem"]):
                    continue
                pypi = True
                canon = lookup_key(pkg["name"])
                index.setdefault(canon, []).append(Advisory(rid, canon, record, affected))
            if not pypi:
                other += 1
                continue
            records += 1
            withdrawn += bool(record.get("withdrawn"))
            if modified is None:
                undated += 1
            else:
                dates.append(modified)
        if records == 0:
            raise AisecUndecidableError(f"offline OSV database {source!r} contains no {ECOSYSTEM} advisories")
        dates.sort(reverse=True)
        return cls(
            source=source,
            index=index,
            records=records,
            withdrawn=withdrawn,
            sha256=sha256,
            newest_modified=dates[0] if dates else None,
            freshness=dates[min(FRESHNESS_RANK, len(dates)) - 1] if dates else None,
            other_ecosystem_records=other,
            undated_records=undated,
        )

    # ------------------------------------------------------------------ queries
    @property
    def packages(self) -> int:
        return len(self.index)

    def advisories(self, name: str) -> list[Advisory]:
        return self.index.get(lookup_key(name), [])

    def query(self, name: str, version: Version | str) -> list[Match]:
        """Every non-withdrawn advisory affecting ``name`` at ``version``."""
        hits: list[Match] = []
        for advisory in self.advisories(name):
            match = advisory.match(version)
            if match is not None:
                hits.append(match)
        return hits

    def age_days(self, now: datetime | None = None) -> float | None:
        """Days since the database's freshness date (the FRESHNESS_RANK-th newest ``modified``)."""
        if self.freshness is None:
            return None
        now = now or datetime.now(timezone.utc)
        return round((now - self.freshness).total_seconds() / 86400.0, 2)

    def describe(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "sha256": self.sha256,
            "records": self.records,
            "withdrawn": self.withdrawn,
            "packages": self.packages,
            "newest_modified": self.newest_modified.isoformat() if self.newest_modified else None,
            "freshness": self.freshness.isoformat() if self.freshness else None,
            "freshness_rule": f"{FRESHNESS_RANK}th newest 'modified' date (future-dated records are an error)",
            "other_ecosystem_records": self.other_ecosystem_records,
            "undated_records": self.undated_records,
            "members_ignored": self.members_ignored,
        }


#: The last zip database loaded, keyed by (resolved path, size, mtime_ns).
_LOADED: dict[tuple[str, int, int], OsvDatabase] = {}


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


# ------------------------------------------------------------------------------------ containers
def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, where: str, budget: int) -> bytes:
    """A member's bytes, read with bounds that do not trust the declared sizes."""
    limit = min(MAX_RECORD_BYTES, budget)
    with archive.open(info) as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        if limit < MAX_RECORD_BYTES:
            raise AisecUndecidableError(f"{where}: total decompressed size exceeds {MAX_TOTAL_BYTES} bytes")
        raise AisecUndecidableError(f"{where} is implausibly large (over {MAX_RECORD_BYTES} bytes decompressed)")
    if len(data) >= RATIO_MIN_BYTES and len(data) > MAX_RATIO * max(1, info.compress_size):
        raise AisecUndecidableError(f"{where}: compression ratio above {MAX_RATIO} (a zip bomb?)")
    return data


def _iter_zip(path: Path, data: bytes, ignored: list[str] | None = None) -> Iterator[tuple[str, bytes]]:
    import io

    label = f"offline OSV database {str(path)!r}"
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except Exception as exc:  # BadZipFile, OSError, ValueError, NotImplementedError …: hostile bytes
        raise AisecUndecidableError(f"{label} is not a valid zip archive: {type(exc).__name__}: {exc}") from None
    if len(infos) > MAX_MEMBERS:
        raise AisecUndecidableError(f"{label} has {len(infos)} members (at most {MAX_MEMBERS})")
    total = 0
    with archive:
        for info in infos:
            if info.is_dir():
                continue
            if not info.filename.endswith(".json"):
                if ignored is not None:
                    ignored.append(info.filename)
                continue
            where = f"{label}: member {info.filename!r}"
            try:
                blob = _read_member(archive, info, where, MAX_TOTAL_BYTES - total)
            except AisecUndecidableError:
                raise
            except Exception as exc:  # CRC error, truncation, encryption, unsupported compression
                raise AisecUndecidableError(f"{where} is corrupt: {type(exc).__name__}: {exc}") from None
            total += len(blob)
            yield info.filename, blob


def _iter_dir(path: Path, ignored: list[str] | None = None) -> Iterator[tuple[str, bytes]]:
    import stat

    label = f"offline OSV database {str(path)!r}"
    total = members = 0
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for d in dirs:  # os.walk lists a symlinked directory but never enters it: its records would vanish
            if os.path.islink(os.path.join(root, d)):
                rel = os.path.relpath(os.path.join(root, d), path)
                raise AisecUndecidableError(f"{label}: {rel!r} is a symbolic link to a directory (not followed)")
        for name in sorted(files):
            file = Path(root, name)
            rel = str(file.relative_to(path))
            if not name.endswith(".json") or name.startswith("."):
                if ignored is not None:
                    ignored.append(rel)
                continue
            members += 1
            if members > MAX_MEMBERS:
                raise AisecUndecidableError(f"{label} has more than {MAX_MEMBERS} records")
            try:
                st = file.stat()
                if not stat.S_ISREG(st.st_mode):
                    raise AisecUndecidableError(f"{label}: {rel!r} is not a regular file")
                if st.st_size > MAX_RECORD_BYTES:
                    raise AisecUndecidableError(f"{label}: {rel!r} is implausibly large")
                with open(file, "rb") as fh:
                    blob = fh.read(MAX_RECORD_BYTES + 1)
            except OSError as exc:
                raise AisecUndecidableError(f"{label}: {rel!r} cannot be read: {exc.strerror or exc}") from None
            if len(blob) > MAX_RECORD_BYTES:
                raise AisecUndecidableError(f"{label}: {rel!r} is implausibly large")
            total += len(blob)
            if total > MAX_TOTAL_BYTES:
                raise AisecUndecidableError(f"{label}: total size exceeds {MAX_TOTAL_BYTES} bytes")
            yield rel, blob


def resolve_db_path(explicit: str | os.PathLike[str] | None, *, online_requested: bool = False) -> str | None:
    """The offline database to use: ``explicit``, else ``$AISEC_OSV_DB``, else ``None`` (online service).

    :param online_requested: the caller explicitly chose an online endpoint (e.g. ``--osv-url``); the
        environment default then does not override that choice.
    """
    if explicit:
        return os.fspath(explicit)
    if online_requested:
        return None
    return os.environ.get(OSV_DB_ENV) or None


# ------------------------------------------------------------------------------------------- sync
#: OSV's export of every PyPI advisory (what ``aisec osv-sync`` mirrors by default).
DEFAULT_SYNC_SOURCE = "https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip"
#: Largest archive ``sync`` downloads (bytes): the PyPI export is ~10 MB; this bounds a runaway download.
MAX_SYNC_BYTES = 512 * 1024 * 1024


def sync(
    source: str = DEFAULT_SYNC_SOURCE,
    dest: str | os.PathLike[str] = ".",
    *,
    name: str = "osv-pypi.zip",
    timeout: float = 60.0,
    max_bytes: int = MAX_SYNC_BYTES,
) -> dict[str, Any]:
    """Mirror an OSV export (URL or local zip) into ``dest/name`` atomically, after validating it.

    The archive is fully loaded as an :class:`OsvDatabase` before it replaces the cached copy, so a
    truncated or corrupt download never overwrites a good database. A ``<name>.json`` manifest next
    to it records the source, SHA-256, record count and newest ``modified`` date.

    :raises AisecInputError: the source does not exist or the destination is not a directory.
    :raises AisecTransientError: the download failed (retryable).
    :raises AisecUndecidableError: the archive is not a valid OSV export.
    """
    from airflow_aisec.utils.fs import write_bytes_atomic, write_json_atomic

    dest_dir = Path(dest)
    if dest_dir.exists() and not dest_dir.is_dir():
        raise AisecInputError(f"osv-sync destination {str(dest_dir)!r} is not a directory")
    if "/" in name or name in ("", ".", ".."):
        raise AisecInputError(f"osv-sync file name {name!r} must be a plain file name")
    if source.startswith(("http://", "https://")):
        data = _download(source, timeout=timeout, max_bytes=max_bytes)
    else:
        from airflow_aisec.utils.uri import is_remote, local_path

        try:
            local = None if is_remote(source) else Path(local_path(source))
        except AisecInputError:
            local = None
        if local is None or not local.is_file():
            raise AisecInputError(f"osv-sync source {source!r} is not a file or an http(s) URL")
        with open(local, "rb") as fh:
            data = fh.read(max_bytes + 1)  # never the whole of a runaway file
        if len(data) > max_bytes:
            raise AisecUndecidableError(f"osv-sync source {source!r} is larger than {max_bytes} bytes")
    sha = hashlib.sha256(data).hexdigest()
    db = OsvDatabase.from_records(source, _iter_zip(Path(source), data), sha256=sha)
    target = dest_dir / name
    write_bytes_atomic(target, data)
    manifest = {
        "source": source,
        "path": str(target),
        "sha256": sha,
        "bytes": len(data),
        "records": db.records,
        "packages": db.packages,
        "withdrawn": db.withdrawn,
        "newest_modified": db.newest_modified.isoformat() if db.newest_modified else None,
        "freshness": db.freshness.isoformat() if db.freshness else None,
        "synced_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    write_json_atomic(dest_dir / f"{name}.json", manifest)
    return manifest


def _download(url: str, *, timeout: float, max_bytes: int) -> bytes:
    import urllib.error
    import urllib.request

    from airflow_aisec.exceptions import AisecTransientError

    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            chunks: list[bytes] = []
            total = 0
            while True:
                chunk = response.read(1 << 20)
                if not chunk:
                    break
                total += len(chunk)
                if total > max_bytes:
                    raise AisecUndecidableError(f"osv-sync source {url!r} is larger than {max_bytes} bytes")
                chunks.append(chunk)
    except urllib.error.HTTPError as exc:
        if 400 <= exc.code < 500 and exc.code not in (408, 429):
            raise AisecInputError(f"osv-sync source {url!r} answered HTTP {exc.code}") from exc
        raise AisecTransientError(f"osv-sync source {url!r} answered HTTP {exc.code}") from exc
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise AisecTransientError(f"osv-sync source {url!r} unreachable: {exc}") from exc
    return b"".join(chunks)
