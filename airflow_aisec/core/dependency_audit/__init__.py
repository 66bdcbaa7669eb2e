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

Layout: :mod:`.run` (:func:`run_audit`), :mod:`.sources` (what is audited), :mod:`.service`
(vulnerability services), :mod:`.ignore` (the ignore file), :mod:`.policy` (the verdict).

No Airflow import here; pip-audit is imported inside functions (it spawns ``pip`` at import time).
"""

from __future__ import annotations

from airflow_aisec.core.dependency_audit.ignore import IgnoreEntry, load_ignore_file
from airflow_aisec.core.dependency_audit.run import FAIL_ON_LEVELS, SERVICES, TAGS, run_audit
from airflow_aisec.core.dependency_audit.service import offline_service, online_service
from airflow_aisec.core.dependency_audit.sources import SourceSpec, describe_sources, source_specs

__all__ = [
    "FAIL_ON_LEVELS",
    "SERVICES",
    "TAGS",
    "IgnoreEntry",
    "SourceSpec",
    "describe_sources",
    "load_ignore_file",
    "offline_service",
    "online_service",
    "run_audit",
    "source_specs",
]
