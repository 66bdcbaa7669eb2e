"""pip-audit vulnerability services: the offline adapter over an OSV database, or pip-audit's online ones."""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path
from typing import Any

from airflow_aisec.core.osv import OsvDatabase


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
