"""The dependency audit's verdict: registered policy steps, then one gate.

Each step reads the collected pip-audit results and the options (:class:`PolicyInput`), adds its
findings, metrics and details to the report, and returns a :class:`Decision`: a status and a part of
the summary. Steps run in registration order; a ``final`` decision stops the run (nothing after it
is applied). The gate then takes the worst status (``pass`` < ``warn`` < ``fail`` < ``error``) and
joins the summary parts, reasons for an ``error`` first.

Registered steps: ``database_freshness`` (an offline database older than ``max_db_age_days`` is an
error before anything is matched), ``vulnerabilities`` (findings by severity, the ``fail_on`` gate,
ignore entries and their expiry), ``unaudited`` (whatever could not be audited: an error unless its
kind is allowed).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from airflow_aisec.core.dependency_audit.ignore import IgnoreEntry
from airflow_aisec.core.dependency_audit.sources import Collected, SourceSpec
from airflow_aisec.core.osv import FRESHNESS_RANK, OsvDatabase, severity_of
from airflow_aisec.core.reqfile import UNAUDITED_KINDS, ParsedRequirements, Unaudited
from airflow_aisec.exceptions import AisecInputError
from airflow_aisec.report import SEVERITY_RANK, STATUSES, Report, gate_status, parse_fail_on

EXPIRED_ID = "AISEC-AUDIT-IGNORE-EXPIRED"


@dataclass
class PolicyInput:
    """What the policy steps decide on (the report is theirs to fill)."""

    report: Report
    collected: list[Collected]
    parsed: dict[SourceSpec, ParsedRequirements]
    vuln_service: Any
    fail_on: str
    unknown_severity: str
    ignores: list[IgnoreEntry]
    today: date
    allowed: frozenset[str]
    db: OsvDatabase | None = None
    db_age_days: float | None = None
    max_db_age_days: float | None = None


@dataclass(frozen=True)
class Decision:
    """A step's verdict: ``status``, a part of the summary; ``lead``: that part opens the summary;
    ``final``: no later step runs."""

    status: str
    summary: str = ""
    lead: bool = False
    final: bool = False


PolicyStep = Callable[[PolicyInput], Decision]
#: The registered steps, in the order they run.
POLICY_STEPS: list[tuple[str, PolicyStep]] = []


def policy_step(name: str) -> Callable[[PolicyStep], PolicyStep]:
    """Register a policy step under ``name`` (run after the steps registered before it)."""

    def register(step: PolicyStep) -> PolicyStep:
        POLICY_STEPS.append((name, step))
        return step

    return register


def decide(inp: PolicyInput, steps: Sequence[tuple[str, PolicyStep]] | None = None) -> tuple[str, str]:
    """Run the policy steps, then the gate; return ``(status, summary)``."""
    decisions: list[Decision] = []
    for _name, step in POLICY_STEPS if steps is None else steps:
        decision = step(inp)
        decisions.append(decision)
        if decision.final:
            break
    return gate(decisions)


def gate(decisions: Sequence[Decision]) -> tuple[str, str]:
    """The worst status of ``decisions`` and their summary parts (leading ones first) joined by ``; ``."""
    status = max((d.status for d in decisions), key=STATUSES.index, default="pass")
    parts = [d.summary for d in decisions if d.lead and d.summary]
    parts += [d.summary for d in decisions if not d.lead and d.summary]
    return status, "; ".join(parts)


def allowed_kinds(allow_unaudited: Sequence[str] | str) -> frozenset[str]:
    """The ``allow_unaudited`` kinds as a set (a string may list them separated by commas or spaces)."""
    if isinstance(allow_unaudited, str):
        allow_unaudited = [k for k in allow_unaudited.replace(",", " ").split() if k]
    kinds = frozenset(str(k).strip() for k in allow_unaudited or ())
    unknown = sorted(kinds - set(UNAUDITED_KINDS))
    if unknown:
        raise AisecInputError(f"allow_unaudited: unknown kind(s) {unknown}; choose from {list(UNAUDITED_KINDS)}")
    return kinds


# ----------------------------------------------------------------------------- database freshness
@policy_step("database_freshness")
def database_freshness(inp: PolicyInput) -> Decision:
    """An offline database older than ``max_db_age_days`` (or undated) decides ``error`` alone."""
    db, age, limit = inp.db, inp.db_age_days, inp.max_db_age_days
    if db is None or limit is None or (age is not None and age <= limit):
        return Decision("pass")
    return Decision(
        "error",
        f"offline OSV database {db.source!r} is too old to trust: its {FRESHNESS_RANK}th newest record is "
        f"{age} days old (max_db_age_days={limit}); refresh it with `aisec osv-sync`",
        lead=True,
        final=True,
    )


# -------------------------------------------------------------------------------- vulnerabilities
@dataclass
class _Tally:
    used: set[IgnoreEntry] = field(default_factory=set)
    ignored: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    audited: set[tuple[str, str]] = field(default_factory=set)
    vulnerable: set[str] = field(default_factory=set)
    default_severity: int = 0


@policy_step("vulnerabilities")
def vulnerabilities(inp: PolicyInput) -> Decision:
    """Findings from pip-audit results (ignore entries applied), the ``fail_on`` gate; expired entries listed."""
    report = inp.report
    active = [e for e in inp.ignores if e.expires >= inp.today]
    expired = [e for e in inp.ignores if e.expires < inp.today]
    tally = _Tally()
    matches_by_key: dict[tuple[str, str], list[Any]] = getattr(inp.vuln_service, "matches", {})
    for entry in inp.collected:
        for dep, vulns in entry.results:
            if dep.is_skipped():
                tally.skipped.append({"package": dep.name, "reason": dep.skip_reason, "source": entry.source.label})
                continue
            version = str(dep.version)
            if (dep.canonical_name, version) in tally.audited:
                continue
            tally.audited.add((dep.canonical_name, version))
            dep_matches = matches_by_key.get((dep.canonical_name, version), [])
            for vuln in vulns:
                _vulnerability(inp, tally, active, entry, dep, version, vuln, dep_matches)
    for e in expired:
        report.add_finding(
            EXPIRED_ID,
            "info",
            f"ignore entry for {e.id} expired on {e.expires.isoformat()} and no longer applies",
            location=e.id,
            details=e.to_dict(),
        )
    _record_vulnerabilities(inp, tally, active, expired)
    return _vulnerability_verdict(inp, tally, expired)


def _vulnerability(
    inp: PolicyInput,
    tally: _Tally,
    active: list[IgnoreEntry],
    entry: Collected,
    dep: Any,
    version: str,
    vuln: Any,
    dep_matches: list[Any],
) -> None:
    """One pip-audit result: a finding, or an ignored entry when an active ignore entry covers it."""
    ids = {vuln.id, *vuln.aliases}
    # pip-audit merges advisories that share an alias (PYSEC-… and GHSA-… for one CVE) into one
    # result: rate it by the most severe of them, never by whichever comes first.
    merged = [
        (severity_of(m.advisory.record, inp.unknown_severity), m)
        for m in dep_matches
        if ids & {m.advisory.id, *m.advisory.aliases}
    ]
    severity, match = max(merged, key=lambda sm: (SEVERITY_RANK[sm[0].level], sm[1].certain), default=(None, None))
    level = severity.level if severity else inp.unknown_severity
    if severity is None or severity.source == "default":
        tally.default_severity += 1
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
        tally.used.add(hit)
        tally.ignored.append({"id": vuln.id, **details, "ignore": hit.to_dict()})
        return
    tally.vulnerable.add(dep.canonical_name)
    fixes = details["fix_versions"]
    fix_text = f"fix: {', '.join(fixes)}" if fixes else "no fixed version"
    inp.report.add_finding(
        vuln.id,
        level,
        f"{dep.canonical_name} {version}: {vuln.description[:160]} ({fix_text})",
        location=f"{dep.canonical_name}=={version}",
        details=details,
    )


def _record_vulnerabilities(
    inp: PolicyInput, tally: _Tally, active: list[IgnoreEntry], expired: list[IgnoreEntry]
) -> None:
    report = inp.report
    counts = report.severity_counts()
    report.metrics.update(
        {
            "packages_audited": len(tally.audited),
            "packages_skipped": len(tally.skipped),
            "vulnerable_packages": len(tally.vulnerable),
            "vulnerabilities": _vulnerability_count(report),
            "ignored": len(tally.ignored),
            "ignore_expired": len(expired),
            "advisories_default_severity": tally.default_severity,
            "uncertain_matches": sum(1 for f in report.findings if f.details.get("certain") is False),
            **{f"findings_{k}": v for k, v in counts.items()},
        }
    )
    report.details["policy"] = {
        "fail_on": inp.fail_on,
        "unknown_severity": inp.unknown_severity,
        "unknown_severity_note": (
            f"advisories without a CVSS vector or database severity are rated {inp.unknown_severity!r}"
        ),
        "ignore_active": [e.to_dict() for e in active],
        "ignore_expired": [e.to_dict() for e in expired],
        "ignore_unused": [e.to_dict() for e in active if e not in tally.used],
    }
    if tally.ignored:
        report.details["ignored"] = tally.ignored
    if tally.skipped:
        report.details["skipped"] = tally.skipped


def _vulnerability_count(report: Report) -> int:
    return sum(1 for f in report.findings if f.id != EXPIRED_ID)


def _vulnerability_verdict(inp: PolicyInput, tally: _Tally, expired: list[IgnoreEntry]) -> Decision:
    """``fail`` when a vulnerability is at or above ``fail_on``; ``warn`` for any other vulnerability,
    a package that could not be audited or an expired ignore entry."""
    findings = inp.report.findings
    vulns_total = _vulnerability_count(inp.report)
    n_vulnerable, n_audited = len(tally.vulnerable), len(tally.audited)
    parts = [
        f"{vulns_total} known vulnerabilit{'y' if vulns_total == 1 else 'ies'} in {n_vulnerable} of {n_audited} packages"
    ]
    if tally.ignored:
        parts.append(f"{len(tally.ignored)} ignored")
    if expired:
        parts.append(f"{len(expired)} ignore entr{'y' if len(expired) == 1 else 'ies'} expired")
    if tally.skipped:
        parts.append(f"{len(tally.skipped)} package(s) could not be audited")
    if tally.default_severity:
        parts.append(f"{tally.default_severity} without severity data rated {inp.unknown_severity}")
    parts.append(f"fail_on={inp.fail_on}")
    # an expired ignore entry is an info note, never a vulnerability: it warns but is not weighed by the gate
    weighed = [f.severity for f in findings if f.id != EXPIRED_ID]
    degraded = bool(vulns_total or tally.skipped or expired)
    status = gate_status(weighed, parse_fail_on(inp.fail_on), degraded=degraded)
    return Decision(status, "; ".join(parts))


# -------------------------------------------------------------------------------------- unaudited
@policy_step("unaudited")
def unaudited(inp: PolicyInput) -> Decision:
    """Count everything the audit did not inspect and decide it by policy (error unless allowed)."""
    report, allowed = inp.report, inp.allowed
    items = _unaudited_items(inp.parsed, inp.collected)
    empty = [entry.source.label for entry in inp.collected if not entry.results and not entry.unlisted]
    if inp.parsed:
        empty = [e for e in empty if not any(spec.label == e and reqs.unaudited for spec, reqs in inp.parsed.items())]
    counts = {kind: sum(1 for i in items if i.kind == kind) for kind in UNAUDITED_KINDS}
    refused = [i for i in items if i.kind not in allowed]
    report.metrics["unaudited"] = len(items)
    report.metrics["unaudited_refused"] = len(refused)
    report.metrics.update({f"unaudited_{k.replace('-', '_')}": v for k, v in counts.items()})
    if inp.parsed:
        _record_requirements(report, inp.parsed)
    report.details["policy"]["allow_unaudited"] = sorted(allowed)
    if items:
        report.details["unaudited"] = [i.to_dict(i.kind in allowed) for i in items]
    if empty:
        report.metrics["empty_sources"] = len(empty)
        return Decision("error", f"nothing to audit in {', '.join(empty)}: no package was found there", lead=True)
    if refused:
        kinds = ", ".join(f"{counts[k]} {k}" for k in UNAUDITED_KINDS if any(i.kind == k for i in refused))
        first = refused[0]
        return Decision(
            "error",
            f"could not audit {len(refused)} item(s) ({kinds}), not allowed by policy "
            f"(allow_unaudited={sorted(allowed)}); first: {first.where}: {first.item} ({first.reason})",
            lead=True,
        )
    if items:
        return Decision("warn", f"{len(items)} item(s) not audited, allowed by policy")
    return Decision("pass")


def _unaudited_items(parsed: dict[SourceSpec, ParsedRequirements], collected: list[Collected]) -> list[Unaudited]:
    items: list[Unaudited] = []
    for reqs in parsed.values():
        items.extend(reqs.unaudited)
    for entry in collected:
        items.extend(entry.unlisted)
        for dep, _vulns in entry.results:
            if dep.is_skipped():
                items.append(Unaudited("unversioned", entry.source.label, str(dep.name)[:200], str(dep.skip_reason)))
    return items


def _record_requirements(report: Report, parsed: dict[SourceSpec, ParsedRequirements]) -> None:
    files: list[str] = []
    marker_excluded: list[str] = []
    options_ignored: list[str] = []
    for reqs in parsed.values():
        files.extend(reqs.files)
        marker_excluded.extend(reqs.marker_excluded)
        options_ignored.extend(reqs.options_ignored)
    report.metrics["requirement_files"] = len(files)
    report.metrics["marker_excluded"] = len(marker_excluded)
    report.metrics["options_ignored"] = len(options_ignored)
    report.details["requirements"] = {
        "files": files,
        "marker_excluded": marker_excluded,
        "marker_policy": "lines whose environment marker is false here are audited anyway (counted)",
        "options_ignored": options_ignored,
    }
