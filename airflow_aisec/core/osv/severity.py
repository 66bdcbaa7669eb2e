"""Severity of an OSV advisory: CVSS v4 / v3 base score, else the database's own rating, else a default."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SEVERITY_LEVELS = ("critical", "high", "medium", "low", "info")


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
