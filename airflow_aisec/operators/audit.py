"""Dependency audit operator: pip-audit over an environment, requirements or a project (online or offline OSV)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_aisec.operators.base import AisecBaseOperator
from airflow_aisec.report import FAIL_ON_CHOICES, parse_fail_on

if TYPE_CHECKING:
    from airflow.sdk import Context

_FAIL_ON = tuple(c for c in FAIL_ON_CHOICES if c != "info")  # critical|high|medium|low|any


class DependencyAuditOperator(AisecBaseOperator):
    """Audit Python dependencies for known vulnerabilities; fail the task when any is found.

    Audits the worker's own environment by default, or ``requirements`` (pinned files), ``path`` (another
    virtualenv / site-packages) and ``project`` (``pylock*.toml`` or ``pyproject.toml``). Vulnerability
    data: ``osv_db`` (offline OSV zip or directory), else the ``[aisec] osv_db`` option (or the
    deprecated ``AISEC_OSV_DB`` environment variable), else pip-audit's online ``service``. Status ``fail`` (vulnerable) and ``error`` (could not audit:
    unreachable service, corrupt database, bad requirements) both fail the task; an unreachable
    service is retryable.

    :param requirements: pinned requirements files (``name==version``). (templated)
    :param path: virtualenv or site-packages directory to audit instead of this environment. (templated)
    :param project: project directory. (templated)
    :param osv_db: offline OSV database (zip or directory); default ``[aisec] osv_db``. (templated)
    :param service: online service when no offline database: ``osv`` or ``pypi``.
    :param osv_url: OSV query endpoint for the online ``osv`` service. (templated)
    :param timeout: online service timeout, seconds.
    :param fail_on: ``critical|high|medium|low|any``: findings at or above fail; lower ones warn.
        Default: the ``[aisec] fail_on`` option (``any``). (templated)
    :param unknown_severity: severity of advisories without CVSS / database severity (default ``high``).
    :param ignore_file: accepted risks (id or alias, reason, expiry date), TOML or JSON. (templated)
    :param max_db_age_days: error when the offline database's newest record is older than this.
        Default: the ``[aisec] osv_max_age_days`` option (unset: no limit).
    :param sbom_path: write a CycloneDX JSON SBOM here; its SHA-256 is in the report. (templated)
    :param allow_unaudited: kinds of things the audit cannot inspect that are accepted (reported, status
        ``warn``) instead of failing the task with ``error``: ``editable``, ``direct-url``, ``unpinned``,
        ``option``, ``include``, ``unversioned``. Default: none (fail closed).
    """

    aisec_check = "dependency_audit"
    lineage_inputs = ("requirements", "path")
    lineage_outputs = ("sbom_path",)
    template_fields: Sequence[str] = (
        *AisecBaseOperator.template_fields,
        "requirements",
        "path",
        "project",
        "osv_db",
        "osv_url",
        "fail_on",
        "ignore_file",
        "sbom_path",
    )
    ui_color = "#ede7f6"

    def __init__(
        self,
        *,
        requirements: Sequence[str] | str | None = None,
        path: str | None = None,
        project: str | None = None,
        osv_db: str | None = None,
        service: str = "osv",
        osv_url: str | None = None,
        timeout: int = 15,
        fail_on: str | None = None,
        unknown_severity: str = "high",
        ignore_file: str | None = None,
        max_db_age_days: float | None = None,
        sbom_path: str | None = None,
        allow_unaudited: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(requirements, str):
            requirements = [requirements]
        self.requirements = list(requirements or [])
        self.path = path
        self.project = project
        self.osv_db = osv_db
        if service not in ("osv", "pypi"):
            raise ValueError(f"service must be 'osv' or 'pypi', not {service!r}")
        self.service = service
        self.osv_url = osv_url
        self.timeout = timeout
        if fail_on is not None and "{{" not in fail_on:  # a templated value is checked by the audit when it runs
            parse_fail_on(fail_on, choices=_FAIL_ON)
        self.fail_on = fail_on
        self.unknown_severity = unknown_severity
        self.ignore_file = ignore_file
        self.max_db_age_days = max_db_age_days
        self.sbom_path = sbom_path
        self.allow_unaudited = [allow_unaudited] if isinstance(allow_unaudited, str) else list(allow_unaudited)

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_aisec import settings
        from airflow_aisec.core.dependency_audit import run_audit
        from airflow_aisec.core.osv import resolve_db_path

        explicit_db = self.osv_db or (None if self.osv_url is not None else settings.get("osv_db"))
        osv_db = resolve_db_path(explicit_db, online_requested=self.osv_url is not None)
        fail_on = self.fail_on or settings.get("fail_on") or "any"
        max_db_age_days = self.max_db_age_days
        if max_db_age_days is None:
            max_db_age_days = settings.get_float("osv_max_age_days")
        self.log.info("Vulnerability data: %s", osv_db or f"online service {self.service}")
        report = self.run_check(
            context,
            subject=", ".join([*self.requirements, self.path or "", self.project or ""]).strip(", ") or "environment",
            check=lambda: run_audit(
                requirements=self.requirements,
                path=self.path,
                project=self.project,
                osv_db=osv_db,
                service=self.service,
                osv_url=self.osv_url,
                timeout=self.timeout,
                fail_on=fail_on,
                unknown_severity=self.unknown_severity,
                ignore_file=self.ignore_file,
                max_db_age_days=max_db_age_days,
                sbom_path=self.sbom_path,
                allow_unaudited=self.allow_unaudited,
            ),
        )
        sbom = report.get("details", {}).get("sbom") or {}
        self.emit_asset_events(
            context,
            {
                "status": report["status"],
                "packages_audited": report["metrics"].get("packages_audited"),
                "vulnerabilities": report["metrics"].get("vulnerabilities"),
                "sbom_sha256": sbom.get("sha256"),
            },
        )
        return report
