"""The offline OSV database: load a zip or directory of records once (bounded), index it, answer queries."""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from packaging.version import Version

from airflow_aisec.core.osv.matching import Advisory, Match
from airflow_aisec.core.osv.records import ECOSYSTEM, is_pypi, lookup_key, validate_record
from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError
from airflow_aisec.utils import strictjson

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
#: Freshness is the FRESHNESS_RANK-th newest ``modified`` date (the newest when fewer records).
FRESHNESS_RANK = 10


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
            blobs = iter_zip(p, data, ignored)
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


def iter_zip(path: Path, data: bytes, ignored: list[str] | None = None) -> Iterator[tuple[str, bytes]]:
    """``(member name, bytes)`` of every ``.json`` member of the zip ``data``, within the archive bounds.

    Other members are appended to ``ignored``; a corrupt archive or member is an :class:`AisecUndecidableError`.
    """
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
