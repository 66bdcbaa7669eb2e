"""The dependency audit: validate options, collect pip-audit results per source, apply the policy, write the SBOM."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date, datetime, timezone
from typing import Any

from airflow_aisec.core.dependency_audit.ignore import load_ignore_file
from airflow_aisec.core.dependency_audit.policy import PolicyInput, allowed_kinds, decide
from airflow_aisec.core.dependency_audit.service import offline_service, online_service
from airflow_aisec.core.dependency_audit.sources import (
    Collected,
    SourceSpec,
    dependency_source,
    lock_direct_references,
    source_specs,
    unlisted_distributions,
)
from airflow_aisec.core.osv import OsvDatabase
from airflow_aisec.core.reqfile import ParsedRequirements, parse_requirement_files
from airflow_aisec.exceptions import AisecError, AisecInputError, AisecTransientError
from airflow_aisec.report import SEVERITY_RANK, Report, parse_fail_on
from airflow_aisec.utils.progress import Progress

log = logging.getLogger(__name__)

#: Accepted values of ``fail_on``: a severity (fail at or above it) or ``any`` (any finding fails).
FAIL_ON_LEVELS = ("critical", "high", "medium", "low", "any")
SERVICES = ("osv", "pypi")
TAGS = ("OWASP-ML06", "AML.T0010.001", "AML.M0016")


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
    _check_options(fail_on, max_db_age_days, unknown_severity, osv_db, service)
    allowed = allowed_kinds(allow_unaudited)
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
    status, summary = decide(
        PolicyInput(
            report=report,
            collected=collected,
            parsed=parsed,
            vuln_service=vuln_service,
            fail_on=fail_on,
            unknown_severity=unknown_severity,
            ignores=ignores,
            today=today,
            allowed=allowed,
            db=db,
            db_age_days=_record_database(report, db, service, osv_url),
            max_db_age_days=max_db_age_days,
        )
    )
    if sbom_path and status != "error":  # an incomplete inventory is not published as an SBOM
        _write_sbom(report, collected, sbom_path)
    return report.finish(status, summary)


def _check_options(
    fail_on: str, max_db_age_days: float | None, unknown_severity: str, osv_db: Any, service: str
) -> None:
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


def _record_database(report: Report, db: OsvDatabase | None, service: str, osv_url: str | None) -> float | None:
    """Which database or service answered; returns the offline database's age in days."""
    if db is None:
        report.details["database"] = {"service": service, "url": osv_url}
        return None
    report.details["database"] = db.describe()
    report.metrics["db_records"] = db.records
    report.metrics["db_load_seconds"] = round(db.load_seconds, 4)
    age = db.age_days()
    report.metrics["db_age_days"] = age
    return age


def _collect(
    specs: list[SourceSpec],
    parsed: dict[SourceSpec, ParsedRequirements],
    db_future: Future[OsvDatabase] | None,
    service: str,
    osv_url: str | None,
    timeout: int,
    cache_dir: str | None,
) -> tuple[list[Collected], Any]:
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
    progress = Progress("dependency audit: packages", None, unit="packages", logger=log)  # total known at the end
    for spec in specs:
        entry = Collected(spec)
        try:
            entry.results = []
            for result in auditor.audit(dependency_source(spec, parsed.get(spec))):
                entry.results.append(result)
                progress.advance()
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
            entry.unlisted = unlisted_distributions(spec, entry.results)
        elif spec.kind == "project":
            entry.unlisted = lock_direct_references(spec)
        collected.append(entry)
    progress.finish(min_elapsed=5.0)
    return collected, vuln_service


def _write_sbom(report: Report, collected: list[Collected], sbom_path: str | os.PathLike[str]) -> None:
    """A CycloneDX 1.6 SBOM of the audited packages, with what was found as VEX entries (:mod:`core.sbom`)."""
    from airflow_aisec.core.sbom import Package, VulnerabilityEntry, environment_sbom_json, write_bom

    merged: dict[Any, list[Any]] = {}
    for entry in collected:
        for dep, vulns in entry.results:
            merged.setdefault(dep, list(vulns))
    packages = [
        Package(
            name=dep.name,
            version=str(dep.version),
            vulnerabilities=tuple(
                VulnerabilityEntry(
                    id=v.id,
                    aliases=tuple(sorted(v.aliases)),
                    description=v.description or "",
                    fixed_versions=tuple(str(f) for f in v.fix_versions),
                )
                for v in vulns
            ),
        )
        for dep, vulns in merged.items()
        if not dep.is_skipped()
    ]
    report.details["sbom"] = write_bom(sbom_path, environment_sbom_json(packages))
    report.add_tags("AML.M0023")
