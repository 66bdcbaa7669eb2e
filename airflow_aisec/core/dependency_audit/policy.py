"""The dependency audit's verdict: findings from pip-audit results, ignore entries, and what was not audited."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from airflow_aisec.core.dependency_audit.ignore import IgnoreEntry
from airflow_aisec.core.dependency_audit.sources import SourceSpec, _Collected
from airflow_aisec.core.osv import severity_of
from airflow_aisec.core.reqfile import UNAUDITED_KINDS, ParsedRequirements, Unaudited
from airflow_aisec.exceptions import AisecInputError
from airflow_aisec.report import SEVERITY_RANK, Report


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
    gate = 0 if fail_on == "any" else SEVERITY_RANK[fail_on]

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

    failing = [f for f in report.findings if f.id != "AISEC-AUDIT-IGNORE-EXPIRED" and SEVERITY_RANK[f.severity] >= gate]
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
    if failing:
        status = "fail"
    elif vulns_total or skipped or expired:
        status = "warn"
    else:
        status = "pass"
    return status, "; ".join(parts)
