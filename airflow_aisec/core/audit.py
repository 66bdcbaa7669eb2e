"""Former home of the dependency audit, kept so existing imports keep working.

The dependency audit (known vulnerabilities in installed or pinned Python packages) now lives in
:mod:`airflow_aisec.core.dependency_audit`; "audit" alone could also mean the inference-log audit
(:mod:`airflow_aisec.core.inference`). New code imports from :mod:`airflow_aisec.core.dependency_audit`.
"""

from __future__ import annotations

from airflow_aisec.core.dependency_audit import (
    FAIL_ON_LEVELS,
    SERVICES,
    TAGS,
    IgnoreEntry,
    SourceSpec,
    describe_sources,
    load_ignore_file,
    offline_service,
    online_service,
    run_audit,
    source_specs,
)

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
