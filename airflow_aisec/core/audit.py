"""Dependency audit: pip-audit's dependency sources and auditor, online services or an offline OSV database.

What is audited comes from pip-audit's own dependency sources (no re-implemented resolution):

* the running interpreter's environment, or another one given as a virtualenv / site-packages path
  (``PipSource``);
* pinned requirements files, read strictly by :mod:`airflow_aisec.core.reqfile` (pip's own line
  parser; every line must be one exact ``==`` pin, as in a lock export — nothing is downloaded or
  resolved; ``-r``/``-c`` files inside the top-level file's directory are followed);
* a project directory: ``pylock.toml`` / ``pylock.*.toml`` when present (``PyLockSource``), else its
  ``pyproject.toml`` (``PyProjectSource``, which resolves with pip and so needs the package index).

Vulnerabilities come from :class:`OfflineOsvService` (a ``pip_audit._service.VulnerabilityService``
over :class:`~airflow_aisec.core.osv.OsvDatabase`) or from pip-audit's online ``osv`` / ``pypi``
services. The verdict applies a policy: severity gate (``fail_on``), an ignore file whose entries
expire, and a database freshness gate. "Vulnerable" (status ``fail``) and "could not audit" (status
``error``: unreachable service, corrupt database, unparsable requirements) stay distinct.

Whatever the audit cannot inspect (editable and direct-URL requirements, unpinned lines, index
options, includes it does not follow, packages without an auditable version) is counted in the
report (``unaudited*`` metrics, ``details.unaudited``) and is an ``error`` unless its kind is in
``allow_unaudited`` — then the status is at least ``warn``, never ``pass``.

No Airflow import here; pip-audit is imported inside functions (it spawns ``pip`` at import time).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from airflow_aisec.core.osv import FRESHNESS_RANK, OsvDatabase, severity_of
from airflow_aisec.core.reqfile import UNAUDITED_KINDS, ParsedRequirements, Unaudited, parse_requirement_files
from airflow_aisec.exceptions import AisecError, AisecInputError, AisecTransientError
from airflow_aisec.report import SEVERITY_RANK, Report, gate_status, parse_fail_on
from airflow_aisec.utils import strictjson

#: Accepted values of ``fail_on``: a severity (fail at or above it) or ``any`` (any finding fails).
FAIL_ON_LEVELS = ("critical", "high", "medium", "low", "any")
SERVICES = ("osv", "pypi")
TAGS = ("OWASP-ML06", "AML.T0010.001", "AML.M0016")


# --------------------------------------------------------------------------------------- sources
@dataclass(frozen=True)
class SourceSpec:
    """One thing to audit: ``kind`` in ``environment | path | requirements | project``."""

    kind: str
    target: str = ""
    files: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        if self.kind == "environment":
            return f"environment:{self.target}"
        if self.kind == "requirements":
            return "requirements:" + ",".join(self.files)
        return f"{self.kind}:{self.target}"


def source_specs(
    *, requirements: Sequence[str] = (), path: str | None = None, project: str | None = None
) -> list[SourceSpec]:
    """What to audit (validated); with nothing given, the running interpreter's environment."""
    import sys

    specs: list[SourceSpec] = []
    # A source given but empty (a template that rendered "") must not fall back to auditing this environment.
    if any(not str(r).strip() for r in requirements or ()):
        raise AisecInputError("requirements: an empty file name (did a template render to nothing?)")
    for label, value in (("path", path), ("project", project)):
        if value is not None and not str(value).strip():
            raise AisecInputError(f"{label}: empty (did a template render to nothing?)")
    reqs = [str(r) for r in requirements or ()]
    for req in reqs:
        if not Path(req).is_file():
            raise AisecInputError(f"requirements file {req!r} does not exist")
    if reqs:
        specs.append(SourceSpec("requirements", files=tuple(reqs)))
    if path:
        specs.extend(SourceSpec("path", target=str(site)) for site in _site_packages(path))
    if project:
        specs.append(SourceSpec("project", target=str(_project_dir(project))))
    if not specs:
        specs.append(SourceSpec("environment", target=sys.prefix))
    return specs


def _site_packages(path: str) -> list[Path]:
    """A virtualenv / prefix directory → every site-packages in it; a site-packages directory as is.

    A prefix can hold several (``lib/python3.10`` and ``lib/python3.12``, ``lib`` and ``lib64``): each
    is audited, none is silently chosen over the others (directories reached twice through a symlink
    are audited once).
    """
    p = Path(path)
    if not p.is_dir():
        raise AisecInputError(f"environment path {path!r} is not a directory")
    patterns = ("lib/python3*/site-packages", "lib64/python3*/site-packages", "Lib/site-packages")
    candidates: list[Path] = []
    seen: set[Path] = set()
    # A directory holding metadata is audited itself — and a stray ``*.dist-info`` at a virtualenv's root
    # must not replace the site-packages below it: both are audited.
    if any(p.glob("*.dist-info")) or any(p.glob("*.egg-info")) or p.name in ("site-packages", "dist-packages"):
        seen.add(p.resolve())
        candidates.append(p)
    for pattern in patterns:
        for site in sorted(p.glob(pattern)):
            if site.is_dir() and site.resolve() not in seen:
                seen.add(site.resolve())
                candidates.append(site)
    if not candidates:
        raise AisecInputError(f"environment path {path!r} is neither a virtualenv nor a site-packages directory")
    return candidates


def _project_dir(project: str) -> Path:
    p = Path(project)
    if p.is_file() and (p.name == "pyproject.toml" or p.name.startswith("pylock.")):
        p = p.parent
    if not p.is_dir():
        raise AisecInputError(f"project {project!r} is not a directory")
    if not (_pylocks(p) or (p / "pyproject.toml").is_file()):
        raise AisecInputError(f"project {project!r} has neither pylock.toml nor pyproject.toml")
    return p


def _pylocks(p: Path) -> list[Path]:
    locks = sorted(p.glob("pylock.*.toml"))
    if (p / "pylock.toml").is_file():
        locks.append(p / "pylock.toml")
    return locks


def _lock_direct_references(spec: SourceSpec) -> list[Unaudited]:
    """Lock entries installed from a VCS, a directory or an archive: audited by their version, but counted.

    Their content is not what the index release of that version holds (kind ``direct-url``); entries
    without a version are pip-audit's ``unversioned`` skips.
    """
    try:
        import tomllib
    except ImportError:  # pragma: no cover - Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]

    out = []
    for lock in _pylocks(Path(spec.target)):
        try:
            data = tomllib.loads(lock.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise AisecInputError(f"lock file {str(lock)!r} cannot be read: {exc}") from None
        packages = data.get("packages") if isinstance(data, dict) else None
        for i, pkg in enumerate(packages if isinstance(packages, list) else ()):
            if not isinstance(pkg, dict) or not pkg.get("version"):
                continue
            kinds = [k for k in ("vcs", "directory", "archive") if k in pkg]
            if kinds:
                out.append(
                    Unaudited(
                        "direct-url",
                        f"{lock}:packages[{i}]",
                        f"{str(pkg.get('name'))[:100]} {str(pkg.get('version'))[:50]} ({kinds[0]})",
                        f"installed from a {kinds[0]}, not an index release: its version says little about its content",
                    )
                )
    return out


def _validate_lock(lock: Path) -> None:
    """Refuse lock entries pip-audit would mis-read: a name that is not PEP 508 (``"requests "``, a
    zero-width space — never equal to the advisory's name, so silently clean), a non-string version,
    entries that are not tables."""
    try:
        import tomllib
    except ImportError:  # pragma: no cover - Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]

    from airflow_aisec.core.reqfile import _NAME

    try:
        data = tomllib.loads(lock.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise AisecInputError(f"lock file {str(lock)!r} cannot be read: {exc}") from None
    packages = data.get("packages")
    if not isinstance(packages, list):
        raise AisecInputError(f"lock file {str(lock)!r}: 'packages' must be an array of tables")
    for i, pkg in enumerate(packages):
        where = f"lock file {str(lock)!r} packages[{i}]"
        if not isinstance(pkg, dict):
            raise AisecInputError(f"{where}: not a table")
        name = pkg.get("name")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise AisecInputError(f"{where}: invalid project name {str(name)[:60]!r}")
        if "version" in pkg and not isinstance(pkg["version"], str):
            raise AisecInputError(f"{where}: version must be a string")


def _dependency_source(spec: SourceSpec, parsed: ParsedRequirements | None = None) -> Any:
    from pip_audit._dependency_source import PipSource, PyLockSource, PyProjectSource

    if spec.kind == "environment":
        return PipSource()
    if spec.kind == "path":
        return PipSource(paths=[Path(spec.target)])
    if spec.kind == "requirements":
        return _pinned_source(parsed or parse_requirement_files(spec.files))
    locks = _pylocks(Path(spec.target))
    if locks:
        for lock in locks:
            _validate_lock(lock)
        return PyLockSource(locks)
    return PyProjectSource(Path(spec.target) / "pyproject.toml")


def _pinned_source(parsed: ParsedRequirements) -> Any:
    """A pip-audit ``DependencySource`` yielding the exact pins :mod:`~airflow_aisec.core.reqfile` read."""
    from pip_audit._dependency_source import DependencySource
    from pip_audit._service import ResolvedDependency

    class PinnedSource(DependencySource):
        def collect(self) -> Any:
            seen: set[tuple[str, Any]] = set()
            for pin in parsed.pins:
                if (pin.name, pin.version) not in seen:
                    seen.add((pin.name, pin.version))
                    yield ResolvedDependency(name=pin.name, version=pin.version)

        def fix(self, fix_version: Any) -> None:  # pragma: no cover - the audit never fixes
            raise NotImplementedError

    return PinnedSource()


# --------------------------------------------------------------------------------------- service
def offline_service(db: OsvDatabase | Future[OsvDatabase]) -> Any:
    """A ``pip_audit._service.VulnerabilityService`` answering from an offline OSV database.

    ``db`` may be a future (the database loads while pip-audit collects dependencies).
    """
    from pip_audit._service import VulnerabilityResult, VulnerabilityService

    class OfflineOsvService(VulnerabilityService):
        """pip-audit vulnerability service over :class:`~airflow_aisec.core.osv.OsvDatabase`."""

        def __init__(self, database: OsvDatabase | Future[OsvDatabase]) -> None:
            self._database = database
            #: (canonical name, version) → the matches behind the results (severity, certainty …)
            self.matches: dict[tuple[str, str], list[Any]] = {}

        @property
        def database(self) -> OsvDatabase:
            if isinstance(self._database, Future):
                self._database = self._database.result()
            return self._database

        def query(self, spec: Any) -> tuple[Any, list[Any]]:
            if spec.is_skipped():
                return spec, []
            matches = self.database.query(spec.canonical_name, spec.version)
            self.matches[(spec.canonical_name, str(spec.version))] = matches
            results = [
                VulnerabilityResult.create(
                    ids=[m.advisory.id, *m.advisory.aliases],
                    description=m.advisory.summary,
                    fix_versions=m.fix_versions,
                    published=_published(m.advisory.record.get("published")),
                )
                for m in matches
            ]
            return spec, results

    return OfflineOsvService(db)


def _published(value: Any) -> Any:
    """An OSV ``published`` timestamp as pip-audit's (naive UTC) datetime; ``None`` when unparsable."""
    from pip_audit._service import VulnerabilityService

    try:
        return VulnerabilityService._parse_rfc3339(_rfc3339(value))
    except ValueError:
        return None


def _rfc3339(value: Any) -> str | None:
    """OSV timestamps as pip-audit's parser accepts them (``…Z`` with or without fractions)."""
    if not value:
        return None
    text = str(value).replace("+00:00", "Z")
    if "." in text:
        head, frac = text.rstrip("Z").split(".", 1)
        return f"{head}.{frac[:6]}Z"
    return text if text.endswith("Z") else text + "Z"


def online_service(service: str, *, osv_url: str | None = None, timeout: int = 15, cache_dir: str | None = None) -> Any:
    from pip_audit._service import OsvService, PyPIService

    cache = Path(cache_dir) if cache_dir else None
    if service == "osv":
        return OsvService(cache, timeout, osv_url) if osv_url else OsvService(cache, timeout)
    return PyPIService(cache, timeout)


# ---------------------------------------------------------------------------------------- policy
@dataclass(frozen=True)
class IgnoreEntry:
    """One accepted risk: an advisory ID or alias, why, until when (inclusive), optionally one package."""

    id: str
    reason: str
    expires: date
    package: str | None = None

    def applies(self, ids: set[str], package: str) -> bool:
        from packaging.utils import canonicalize_name

        if self.id.upper() not in {i.upper() for i in ids}:
            return False
        return self.package is None or canonicalize_name(self.package.strip()) == canonicalize_name(package)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "reason": self.reason, "expires": self.expires.isoformat(), "package": self.package}


def load_ignore_file(path: str | os.PathLike[str]) -> list[IgnoreEntry]:
    """Read an ignore file (TOML ``[[ignore]]`` tables or JSON ``{"ignore": [...]}``).

    Every entry needs ``id`` (advisory ID or alias), ``reason`` and ``expires`` (``YYYY-MM-DD``);
    ``package`` is optional.
    """
    p = Path(path)
    if not p.is_file():
        raise AisecInputError(f"ignore file {str(p)!r} does not exist")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AisecInputError(f"ignore file {str(p)!r} cannot be read: {exc}") from None
    if p.suffix == ".json":
        data = strictjson.loads(text, source=f"ignore file {str(p)!r}")
    else:
        try:
            import tomllib
        except ImportError:  # pragma: no cover - Python 3.10
            import tomli as tomllib  # type: ignore[no-redef]
        try:
            data = tomllib.loads(text)
        except ValueError as exc:
            raise AisecInputError(f"ignore file {str(p)!r} cannot be parsed: {exc}") from None
    raw = data.get("ignore") if isinstance(data, dict) else None
    if not isinstance(raw, list):
        raise AisecInputError(f"ignore file {str(p)!r} must contain a list named 'ignore'")
    extra = sorted(set(data) - {"ignore"}) if isinstance(data, dict) else []
    if extra:
        raise AisecInputError(f"ignore file {str(p)!r}: unknown top-level key(s) {extra}")
    entries = []
    for i, item in enumerate(raw):
        where = f"ignore file {str(p)!r} entry {i + 1}"
        if not isinstance(item, dict):
            raise AisecInputError(f"{where} must be a table/object")
        unknown = sorted(set(item) - {"id", "reason", "expires", "package"})
        if unknown:  # a misspelt "package" would otherwise widen the ignore to every package
            raise AisecInputError(f"{where} has unknown key(s) {unknown} (allowed: id, reason, expires, package)")
        for key in ("id", "reason", "package"):
            if key in item and not isinstance(item[key], str):
                raise AisecInputError(f"{where}: {key} must be a string")
        missing = [k for k in ("id", "reason", "expires") if not str(item.get(k) or "").strip()]
        if missing:
            raise AisecInputError(
                f"{where} is missing {', '.join(missing)} (an ignore needs an id, a reason and an expiry)"
            )
        package = item.get("package")
        if package is not None and not _valid_name(package):
            raise AisecInputError(f"{where}: package {package[:60]!r} is not a valid project name")
        expires = item["expires"]
        if isinstance(expires, datetime):
            expires = expires.date()
        elif isinstance(expires, date):
            pass
        elif isinstance(expires, str):
            try:
                expires = date.fromisoformat(expires.strip())
            except ValueError as exc:
                raise AisecInputError(
                    f"{where} has an invalid expires date {item['expires']!r} (use YYYY-MM-DD)"
                ) from exc
        else:
            raise AisecInputError(
                f"{where} has an invalid expires date of type {type(expires).__name__} (use YYYY-MM-DD)"
            )
        entries.append(IgnoreEntry(item["id"].strip(), item["reason"].strip(), expires, package))
    return entries


def _valid_name(name: str) -> bool:
    import re

    return re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?", name.strip()) is not None


# ----------------------------------------------------------------------------------------- audit
@dataclass
class _Collected:
    source: SourceSpec
    results: list[tuple[Any, list[Any]]] = field(default_factory=list)
    #: installed distributions the dependency source did not list (``path`` sources)
    unlisted: list[Unaudited] = field(default_factory=list)


def _unlisted_distributions(spec: SourceSpec, results: list[tuple[Any, list[Any]]]) -> list[Unaudited]:
    """``*.dist-info`` / ``*.egg-info`` entries of a site-packages directory that pip did not list.

    pip silently ignores distributions whose metadata it rejects (an invalid name, say), and lists one
    version when two of a name are installed side by side; the others are still on disk (and may be
    what is imported), so they are reported instead of dropped. Compared by (name, PEP 440 version).
    """
    from importlib.metadata import PathDistribution

    from packaging.version import Version

    from airflow_aisec.core.osv import lookup_key

    listed: set[tuple[str, Version | None]] = {
        (lookup_key(str(dep.name)), getattr(dep, "version", None)) for dep, _ in results
    }
    out = []
    site = Path(spec.target)
    for entry in sorted(site.iterdir()):
        if not entry.name.lower().endswith((".dist-info", ".egg-info")):
            continue
        name, version = "", None
        try:
            metadata = PathDistribution(entry).metadata
            name = metadata["Name"] or ""
            version = Version(str(metadata["Version"] or ""))
        except Exception:  # unreadable or invalid metadata is exactly what must not vanish: reported below
            pass
        key = lookup_key(name) if name else ""
        if key and (key, version) in listed:  # listed (a skipped one, without version, is reported already)
            continue
        shadowed = bool(key) and any(k == key for k, _ in listed)
        why = (
            f"is another installed version of {key!r}: pip lists only one of them"
            if shadowed
            else "that pip does not list (rejected or unreadable)"
        )
        out.append(
            Unaudited(
                "unversioned",
                spec.label,
                (f"{name} {version}" if shadowed and version is not None else name or entry.name)[:200],
                f"installed metadata {entry.name[:100]!r} {why}",
            )
        )
    return out


def run_audit(
    *,
    requirements: Sequence[str] = (),
    path: str | None = None,
    project: str | None = None,
    osv_db: str | os.PathLike[str] | None = None,
    service: str = "osv",
    osv_url: str | None = None,
    timeout: int = 15,
    cache_dir: str | None = None,
    fail_on: str = "any",
    unknown_severity: str = "high",
    ignore_file: str | os.PathLike[str] | None = None,
    max_db_age_days: float | None = None,
    sbom_path: str | os.PathLike[str] | None = None,
    allow_unaudited: Sequence[str] = (),
    today: date | None = None,
) -> Report:
    """Audit dependencies for known vulnerabilities and return a ``dependency_audit`` report.

    :param requirements: pinned requirements files (``name==version`` lines, as a lock export).
    :param path: another environment: a virtualenv / prefix directory or a site-packages directory.
    :param project: a project directory (``pylock*.toml``, else ``pyproject.toml``).
    :param osv_db: offline OSV database (zip or directory). ``None``: pip-audit's online ``service``.
    :param service: online service when no ``osv_db``: ``osv`` or ``pypi``.
    :param osv_url: OSV query endpoint for the online ``osv`` service (default pip-audit's).
    :param fail_on: ``critical|high|medium|low|any``: findings at or above fail; below → ``warn``.
    :param unknown_severity: severity given to advisories without CVSS or database severity.
    :param ignore_file: accepted risks with reasons and expiry dates (:func:`load_ignore_file`).
    :param max_db_age_days: offline database freshness gate (error when older). The database's date is
        its 10th newest ``modified`` timestamp, so one outlier record cannot make it look fresh.
    :param allow_unaudited: kinds of things the audit cannot inspect that are accepted (reported,
        status at least ``warn``) instead of an ``error``: any of ``editable``, ``direct-url``,
        ``unpinned``, ``option``, ``include``, ``unversioned``.
    :param sbom_path: write a CycloneDX JSON SBOM here (atomically); its SHA-256 goes into the report.
    :raises AisecInputError: bad arguments or inputs (named).
    :raises AisecUndecidableError: corrupt database, a dependency source that cannot be read.
    :raises AisecTransientError: the online service cannot be reached.
    """
    parse_fail_on(fail_on, choices=FAIL_ON_LEVELS)
    if max_db_age_days is not None:
        import math

        if isinstance(max_db_age_days, bool) or not isinstance(max_db_age_days, (int, float)):
            raise AisecInputError(f"max_db_age_days must be a number of days, not {max_db_age_days!r}")
        if not math.isfinite(max_db_age_days) or max_db_age_days < 0:
            raise AisecInputError(f"max_db_age_days must be a finite number >= 0, not {max_db_age_days!r}")
    if unknown_severity not in SEVERITY_RANK:
        raise AisecInputError(f"unknown_severity must be a severity, not {unknown_severity!r}")
    if not osv_db and service not in SERVICES:
        raise AisecInputError(f"service must be one of {SERVICES}, not {service!r}")
    allowed = _allowed_kinds(allow_unaudited)
    specs = source_specs(requirements=requirements, path=path, project=project)
    ignores = load_ignore_file(ignore_file) if ignore_file else []
    parsed = {spec: parse_requirement_files(spec.files) for spec in specs if spec.kind == "requirements"}
    today = today or datetime.now(timezone.utc).date()
    subject = " + ".join(s.label for s in specs)
    report = Report.start("dependency_audit", subject, tags=TAGS)

    executor: ThreadPoolExecutor | None = None
    db_future: Future[OsvDatabase] | None = None
    if osv_db:
        # Load the database while pip-audit lists the environment (that is a `pip list` subprocess).
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aisec-osv-load")
        db_future = executor.submit(OsvDatabase.load, osv_db)
    try:
        collected, vuln_service = _collect(specs, parsed, db_future, service, osv_url, timeout, cache_dir)
    finally:
        if executor is not None:
            executor.shutdown(wait=True)

    db: OsvDatabase | None = db_future.result() if db_future is not None else None
    if db is not None:
        report.details["database"] = db.describe()
        report.metrics["db_records"] = db.records
        report.metrics["db_load_seconds"] = round(db.load_seconds, 4)
        age = db.age_days()
        report.metrics["db_age_days"] = age
        if max_db_age_days is not None and (age is None or age > max_db_age_days):
            return report.error(
                f"offline OSV database {db.source!r} is too old to trust: its {FRESHNESS_RANK}th newest record is "
                f"{age} days old (max_db_age_days={max_db_age_days}); refresh it with `aisec osv-sync`"
            )
    else:
        report.details["database"] = {"service": service, "url": osv_url}

    status, summary = _apply(
        report,
        collected,
        vuln_service,
        fail_on=fail_on,
        unknown_severity=unknown_severity,
        ignores=ignores,
        today=today,
    )
    status, summary = _unaudited_policy(report, parsed, collected, allowed, status, summary)
    if sbom_path and status != "error":  # an incomplete inventory is not published as an SBOM
        _write_sbom(report, collected, sbom_path)
    return report.finish(status, summary)


def _allowed_kinds(allow_unaudited: Sequence[str] | str) -> frozenset[str]:
    if isinstance(allow_unaudited, str):
        allow_unaudited = [k for k in allow_unaudited.replace(",", " ").split() if k]
    kinds = frozenset(str(k).strip() for k in allow_unaudited or ())
    unknown = sorted(kinds - set(UNAUDITED_KINDS))
    if unknown:
        raise AisecInputError(f"allow_unaudited: unknown kind(s) {unknown}; choose from {list(UNAUDITED_KINDS)}")
    return kinds


def _unaudited_policy(
    report: Report,
    parsed: dict[SourceSpec, ParsedRequirements],
    collected: list[_Collected],
    allowed: frozenset[str],
    status: str,
    summary: str,
) -> tuple[str, str]:
    """Count everything the audit did not inspect and decide it by policy (error unless allowed)."""
    items: list[Unaudited] = []
    files: list[str] = []
    marker_excluded: list[str] = []
    options_ignored: list[str] = []
    for reqs in parsed.values():
        items.extend(reqs.unaudited)
        files.extend(reqs.files)
        marker_excluded.extend(reqs.marker_excluded)
        options_ignored.extend(reqs.options_ignored)
    empty = [entry.source.label for entry in collected if not entry.results and not entry.unlisted]
    for entry in collected:
        items.extend(entry.unlisted)
        for dep, _vulns in entry.results:
            if dep.is_skipped():
                items.append(Unaudited("unversioned", entry.source.label, str(dep.name)[:200], str(dep.skip_reason)))
    if parsed:
        empty = [e for e in empty if not any(spec.label == e and reqs.unaudited for spec, reqs in parsed.items())]
    counts = {kind: sum(1 for i in items if i.kind == kind) for kind in UNAUDITED_KINDS}
    refused = [i for i in items if i.kind not in allowed]
    report.metrics["unaudited"] = len(items)
    report.metrics["unaudited_refused"] = len(refused)
    report.metrics.update({f"unaudited_{k.replace('-', '_')}": v for k, v in counts.items()})
    if parsed:
        report.metrics["requirement_files"] = len(files)
        report.metrics["marker_excluded"] = len(marker_excluded)
        report.metrics["options_ignored"] = len(options_ignored)
        report.details["requirements"] = {
            "files": files,
            "marker_excluded": marker_excluded,
            "marker_policy": "lines whose environment marker is false here are audited anyway (counted)",
            "options_ignored": options_ignored,
        }
    report.details["policy"]["allow_unaudited"] = sorted(allowed)
    if items:
        report.details["unaudited"] = [i.to_dict(i.kind in allowed) for i in items]
    if empty:
        report.metrics["empty_sources"] = len(empty)
        return "error", f"nothing to audit in {', '.join(empty)}: no package was found there; " + summary
    if refused:
        kinds = ", ".join(f"{counts[k]} {k}" for k in UNAUDITED_KINDS if any(i.kind == k for i in refused))
        first = refused[0]
        return "error", (
            f"could not audit {len(refused)} item(s) ({kinds}), not allowed by policy "
            f"(allow_unaudited={sorted(allowed)}); first: {first.where}: {first.item} ({first.reason}); " + summary
        )
    if items and status == "pass":
        status = "warn"
    if items:
        summary += f"; {len(items)} item(s) not audited, allowed by policy"
    return status, summary


def _collect(
    specs: list[SourceSpec],
    parsed: dict[SourceSpec, ParsedRequirements],
    db_future: Future[OsvDatabase] | None,
    service: str,
    osv_url: str | None,
    timeout: int,
    cache_dir: str | None,
) -> tuple[list[_Collected], Any]:
    from pip_audit._audit import Auditor
    from pip_audit._dependency_source import DependencySourceError
    from pip_audit._service import ServiceError
    from requests import RequestException

    vuln_service = (
        offline_service(db_future)
        if db_future is not None
        else online_service(service, osv_url=osv_url, timeout=timeout, cache_dir=cache_dir)
    )
    auditor = Auditor(vuln_service)
    collected = []
    for spec in specs:
        entry = _Collected(spec)
        try:
            entry.results = list(auditor.audit(_dependency_source(spec, parsed.get(spec))))
        except AisecError:  # e.g. the offline database failed to load (named already)
            raise
        except DependencySourceError as exc:
            cause = f"{exc}: {exc.__cause__}" if exc.__cause__ else str(exc)
            raise AisecInputError(f"cannot read dependencies from {spec.label}: {cause}") from exc
        except ValueError as exc:  # InvalidVersion in a pinned requirement
            raise AisecInputError(f"cannot read dependencies from {spec.label}: {exc}") from exc
        except (ServiceError, RequestException) as exc:
            where = osv_url or service
            raise AisecTransientError(
                f"vulnerability service {where!r} unreachable: {type(exc).__name__}: {exc}"
            ) from exc
        if spec.kind == "path":
            entry.unlisted = _unlisted_distributions(spec, entry.results)
        elif spec.kind == "project":
            entry.unlisted = _lock_direct_references(spec)
        collected.append(entry)
    return collected, vuln_service


def _apply(
    report: Report,
    collected: list[_Collected],
    vuln_service: Any,
    *,
    fail_on: str,
    unknown_severity: str,
    ignores: list[IgnoreEntry],
    today: date,
) -> tuple[str, str]:
    """Turn pip-audit results into findings, metrics and details; return (status, summary)."""
    expired = [e for e in ignores if e.expires < today]
    active = [e for e in ignores if e.expires >= today]
    used: set[IgnoreEntry] = set()
    ignored: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    audited: set[tuple[str, str]] = set()
    vulnerable: set[str] = set()
    default_severity = 0
    matches_by_key: dict[tuple[str, str], list[Any]] = getattr(vuln_service, "matches", {})

    for entry in collected:
        for dep, vulns in entry.results:
            if dep.is_skipped():
                skipped.append({"package": dep.name, "reason": dep.skip_reason, "source": entry.source.label})
                continue
            version = str(dep.version)
            if (dep.canonical_name, version) in audited:
                continue
            audited.add((dep.canonical_name, version))
            dep_matches = matches_by_key.get((dep.canonical_name, version), [])
            for vuln in vulns:
                ids = {vuln.id, *vuln.aliases}
                # pip-audit merges advisories that share an alias (PYSEC-… and GHSA-… for one CVE) into one
                # result: rate it by the most severe of them, never by whichever comes first.
                merged = [
                    (severity_of(m.advisory.record, unknown_severity), m)
                    for m in dep_matches
                    if ids & {m.advisory.id, *m.advisory.aliases}
                ]
                severity, match = max(
                    merged, key=lambda sm: (SEVERITY_RANK[sm[0].level], sm[1].certain), default=(None, None)
                )
                level = severity.level if severity else unknown_severity
                if severity is None or severity.source == "default":
                    default_severity += 1
                hit = next((e for e in active if e.applies(ids, dep.name)), None)
                details = {
                    "package": dep.canonical_name,
                    "version": version,
                    "aliases": sorted(vuln.aliases),
                    "fix_versions": [str(v) for v in vuln.fix_versions],
                    "severity_source": severity.source if severity else "default",
                    "cvss_score": severity.score if severity else None,
                    "cvss_vector": severity.vector if severity else None,
                    "published": vuln.published.isoformat() if vuln.published else None,
                    "source": entry.source.label,
                    "description": vuln.description[:500],
                }
                if match is not None:
                    details["match"] = match.reason
                    details["certain"] = match.certain
                if hit is not None:
                    used.add(hit)
                    ignored.append({"id": vuln.id, **details, "ignore": hit.to_dict()})
                    continue
                vulnerable.add(dep.canonical_name)
                fixes = details["fix_versions"]
                fix_text = f"fix: {', '.join(fixes)}" if fixes else "no fixed version"
                report.add_finding(
                    vuln.id,
                    level,
                    f"{dep.canonical_name} {version}: {vuln.description[:160]} ({fix_text})",
                    location=f"{dep.canonical_name}=={version}",
                    details=details,
                )

    for e in expired:
        report.add_finding(
            "AISEC-AUDIT-IGNORE-EXPIRED",
            "info",
            f"ignore entry for {e.id} expired on {e.expires.isoformat()} and no longer applies",
            location=e.id,
            details=e.to_dict(),
        )
    counts = report.severity_counts()
    vulns_total = sum(1 for f in report.findings if f.id != "AISEC-AUDIT-IGNORE-EXPIRED")
    report.metrics.update(
        {
            "packages_audited": len(audited),
            "packages_skipped": len(skipped),
            "vulnerable_packages": len(vulnerable),
            "vulnerabilities": vulns_total,
            "ignored": len(ignored),
            "ignore_expired": len(expired),
            "advisories_default_severity": default_severity,
            "uncertain_matches": sum(1 for f in report.findings if f.details.get("certain") is False),
            **{f"findings_{k}": v for k, v in counts.items()},
        }
    )
    report.details["policy"] = {
        "fail_on": fail_on,
        "unknown_severity": unknown_severity,
        "unknown_severity_note": (
            f"advisories without a CVSS vector or database severity are rated {unknown_severity!r}"
        ),
        "ignore_active": [e.to_dict() for e in active],
        "ignore_expired": [e.to_dict() for e in expired],
        "ignore_unused": [e.to_dict() for e in active if e not in used],
    }
    if ignored:
        report.details["ignored"] = ignored
    if skipped:
        report.details["skipped"] = skipped

    parts = [
        f"{vulns_total} known vulnerabilit{'y' if vulns_total == 1 else 'ies'} in {len(vulnerable)} of {len(audited)} packages"
    ]
    if ignored:
        parts.append(f"{len(ignored)} ignored")
    if expired:
        parts.append(f"{len(expired)} ignore entr{'y' if len(expired) == 1 else 'ies'} expired")
    if skipped:
        parts.append(f"{len(skipped)} package(s) could not be audited")
    if default_severity:
        parts.append(f"{default_severity} without severity data rated {unknown_severity}")
    parts.append(f"fail_on={fail_on}")
    # an expired ignore entry is an info note, never a vulnerability: it warns but is not weighed by the gate
    weighed = [f.severity for f in report.findings if f.id != "AISEC-AUDIT-IGNORE-EXPIRED"]
    status = gate_status(weighed, parse_fail_on(fail_on), degraded=bool(vulns_total or skipped or expired))
    return status, "; ".join(parts)


def _write_sbom(report: Report, collected: list[_Collected], sbom_path: str | os.PathLike[str]) -> None:
    from pip_audit._format import CycloneDxFormat

    from airflow_aisec.utils.fs import write_text_atomic

    merged: dict[Any, list[Any]] = {}
    for entry in collected:
        for dep, vulns in entry.results:
            merged.setdefault(dep, list(vulns))
    text = CycloneDxFormat(inner_format=CycloneDxFormat.InnerFormat.Json).format(merged, [])
    data = text.encode("utf-8")
    path = write_text_atomic(sbom_path, text)
    report.details["sbom"] = {
        "path": str(path),
        "sha256": hashlib.sha256(data).hexdigest(),
        "format": "CycloneDX JSON",
        "components": sum(1 for d in merged if not d.is_skipped()),
    }
    report.add_tags("AML.M0023")


def describe_sources(specs: Iterable[SourceSpec]) -> list[str]:
    return [s.label for s in specs]
