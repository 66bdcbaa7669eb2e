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
* version strings that PEP 440 cannot parse (legacy releases such as ``0.7.4.svn.r2010``) never
  crash the matcher: listed versions are compared as normalised strings, and a range with an
  unparsable bound is *indeterminate* — the explicit ``versions`` list then decides alone, and a
  record with neither is reported as a possible match that needs a human (fail closed).

No Airflow import here.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError

#: The OSV ecosystem this module indexes.
ECOSYSTEM = "PyPI"
#: Environment variable naming the offline database (zip or directory) DAGs use by default.
OSV_DB_ENV = "AISEC_OSV_DB"
#: Largest single OSV record accepted (bytes); a bigger member means a corrupt or hostile archive.
MAX_RECORD_BYTES = 16 * 1024 * 1024

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
        versions = self.affected.get("versions")
        if versions is None:
            return None
        return frozenset(version_key(str(v)) for v in versions)

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
        key = str(version) if isinstance(version, Version) else version_key(text)
        if listed is not None and key in listed:
            return Match(self, text, certain=True, reason="listed in affected versions")
        parsed = version if isinstance(version, Version) else parse_version(text)
        if parsed is None:
            if self.ranges and listed is None:
                return Match(self, text, certain=False, reason="installed version is not PEP 440; range not evaluable")
            return None
        verdict = self.range_verdict(parsed)
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
        if p.is_dir():
            blobs: Iterable[tuple[str, bytes]] = _iter_dir(p)
        else:
            try:
                data = p.read_bytes()
            except OSError as exc:
                raise AisecUndecidableError(f"offline OSV database {str(p)!r} cannot be read: {exc}") from exc
            sha = hashlib.sha256(data).hexdigest()
            blobs = _iter_zip(p, data)
        db = cls.from_records(str(p), blobs, sha256=sha)
        db.load_seconds = time.perf_counter() - t0
        if key is not None:
            _LOADED.clear()  # keep one database in memory at most
            _LOADED[key] = db
        return db

    @classmethod
    def from_records(
        cls, source: str, blobs: Iterable[tuple[str, bytes | dict[str, Any]]], *, sha256: str | None = None
    ) -> OsvDatabase:
        """Build the index from ``(member name, JSON bytes or parsed record)`` pairs."""
        index: dict[str, list[Advisory]] = {}
        records = withdrawn = 0
        newest = ""
        for name, blob in blobs:
            if isinstance(blob, dict):
                record = blob
            else:
                try:
                    record = json.loads(blob)
                except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                    raise AisecUndecidableError(
                        f"offline OSV database {source!r}: record {name!r} is not valid JSON ({exc})"
                    ) from exc
            if not isinstance(record, dict) or not isinstance(record.get("id"), str):
                raise AisecUndecidableError(f"offline OSV database {source!r}: record {name!r} has no 'id'")
            pypi = False
            for affected in record.get("affected") or ():
                pkg = affected.get("package") if isinstance(affected, dict) else None
                if not isinstance(pkg, dict) or pkg.get("ecosystem") != ECOSYSTEM or not pkg.get("name"):
                    continue
                pypi = True
                canon = canonicalize_name(str(pkg["name"]))
                index.setdefault(canon, []).append(Advisory(record["id"], canon, record, affected))
            if not pypi:
                continue
            records += 1
            withdrawn += bool(record.get("withdrawn"))
            modified = str(record.get("modified") or "")
            newest = max(newest, modified)
        if records == 0:
            raise AisecUndecidableError(f"offline OSV database {source!r} contains no {ECOSYSTEM} advisories")
        return cls(
            source=source,
            index=index,
            records=records,
            withdrawn=withdrawn,
            sha256=sha256,
            newest_modified=parse_timestamp(newest),
        )

    # ------------------------------------------------------------------ queries
    @property
    def packages(self) -> int:
        return len(self.index)

    def advisories(self, name: str) -> list[Advisory]:
        return self.index.get(canonicalize_name(name), [])

    def query(self, name: str, version: Version | str) -> list[Match]:
        """Every non-withdrawn advisory affecting ``name`` at ``version``."""
        hits: list[Match] = []
        for advisory in self.advisories(name):
            match = advisory.match(version)
            if match is not None:
                hits.append(match)
        return hits

    def age_days(self, now: datetime | None = None) -> float | None:
        """Days since the newest ``modified`` timestamp in the database (its freshness)."""
        if self.newest_modified is None:
            return None
        now = now or datetime.now(timezone.utc)
        return round((now - self.newest_modified).total_seconds() / 86400.0, 2)

    def describe(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "sha256": self.sha256,
            "records": self.records,
            "withdrawn": self.withdrawn,
            "packages": self.packages,
            "newest_modified": self.newest_modified.isoformat() if self.newest_modified else None,
        }


#: The last zip database loaded, keyed by (resolved path, size, mtime_ns).
_LOADED: dict[tuple[str, int, int], OsvDatabase] = {}


def parse_timestamp(text: str | None) -> datetime | None:
    """RFC 3339 timestamp → aware ``datetime`` (``None`` when absent or unparsable)."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _iter_zip(path: Path, data: bytes) -> Iterator[tuple[str, bytes]]:
    import io

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError) as exc:
        raise AisecUndecidableError(f"offline OSV database {str(path)!r} is not a valid zip archive: {exc}") from exc
    with archive:
        for info in archive.infolist():
            if info.is_dir() or not info.filename.endswith(".json"):
                continue
            if info.file_size > MAX_RECORD_BYTES:
                raise AisecUndecidableError(
                    f"offline OSV database {str(path)!r}: member {info.filename!r} is implausibly large"
                )
            try:
                yield info.filename, archive.read(info)
            except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:  # CRC error, truncation
                raise AisecUndecidableError(
                    f"offline OSV database {str(path)!r}: member {info.filename!r} is corrupt: {exc}"
                ) from exc


def _iter_dir(path: Path) -> Iterator[tuple[str, bytes]]:
    for root, _dirs, files in os.walk(path):
        for name in sorted(files):
            if name.endswith(".json") and not name.startswith("."):
                file = Path(root, name)
                if file.stat().st_size > MAX_RECORD_BYTES:
                    raise AisecUndecidableError(f"offline OSV database {str(path)!r}: {name!r} is implausibly large")
                yield str(file.relative_to(path)), file.read_bytes()


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
        local = Path(source[len("file://") :] if source.startswith("file://") else source)
        if not local.is_file():
            raise AisecInputError(f"osv-sync source {source!r} is not a file or an http(s) URL")
        data = local.read_bytes()
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
