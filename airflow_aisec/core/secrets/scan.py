"""The secrets scan: validate options, walk history and tree, turn hits into one sealed ``secrets`` report."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_aisec.core.secrets.baseline import check_allow, load_baseline
from airflow_aisec.core.secrets.content import LIST_LIMIT, ScanTally
from airflow_aisec.core.secrets.detectors import HEURISTIC_TYPES, Hit, ScanContext, detector
from airflow_aisec.core.secrets.history import scan_history
from airflow_aisec.core.secrets.redaction import Redactor, learn, seal
from airflow_aisec.core.secrets.tree import scan_tree
from airflow_aisec.exceptions import AisecError, AisecInputError, AisecUndecidableError
from airflow_aisec.report import Report, Status, gate_status, parse_fail_on

TAGS = ("AML.T0055", "OWASP-ML06")
DEFAULT_EXCLUDE_DIRS = (
    ".git",
    ".hg",
    ".svn",
    ".venv",
    "venv",
    "node_modules",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".tox",
    ".nox",
)
#: Files (and history blobs) above this size are not scanned: counted, listed, decided by ``unscanned``.
DEFAULT_MAX_FILE_BYTES = 2 * 1024 * 1024
FAIL_ON_LEVELS = ("high", "medium")
UNSCANNED_POLICIES = ("error", "warn")
#: At most this many findings are listed in a report (all are counted and decide the status).
MAX_FINDINGS = 1000


def redact_text(text: str) -> str:
    """``text`` with anything the detectors find in it replaced (for subjects built outside a scan)."""
    redactor = Redactor()
    with detector() as scan_lines:
        learn(scan_lines, [text], redactor)
    return redactor.scrub(text)


def scan_secrets(
    path: str | os.PathLike[str],
    *,
    history: bool = False,
    baseline: str | os.PathLike[str] | None = None,
    allow: Mapping[str, str] | None = None,
    exclude_dirs: Sequence[str] = DEFAULT_EXCLUDE_DIRS,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    fail_on: str = "medium",
    unscanned: str = "error",
    partial_history: bool = False,
) -> Report:
    """Scan ``path`` (and with ``history`` its git history) for secrets; return a ``secrets`` report.

    :param path: directory or file to scan.
    :param history: also scan every object reachable from any ref (``path`` must be in a git work tree).
    :param baseline: detect-secrets baseline file of known findings.
    :param allow: fingerprint → reason, for known false positives.
    :param exclude_dirs: directory names never descended into (tree scan); counted and listed.
    :param max_file_bytes: files and history blobs above this are not scanned (counted, listed).
    :param fail_on: ``medium`` (default: every finding fails) or ``high`` (vendor-format tokens fail;
        entropy / keyword heuristics are reported and make the status ``warn``).
    :param unscanned: what anything not scanned (large, compressed, special, unreadable, submodule,
        missing) decides: ``error`` (default: status ``error``, exit 2) or ``warn``.
    :param partial_history: accept a shallow, grafted, replaced or partial-clone history (reported,
        status at least ``warn``) instead of an error.
    :raises AisecInputError: bad arguments, ``path`` missing, a non-git path with ``history``, bad baseline.
    :raises AisecUndecidableError: git fails, or the history is incomplete and not accepted.
    """
    redactor = Redactor()
    with detector() as scan_lines:
        try:
            report = _scan(
                path,
                redactor,
                scan_lines,
                history=history,
                baseline=baseline,
                allow=allow,
                exclude_dirs=exclude_dirs,
                max_file_bytes=max_file_bytes,
                fail_on=fail_on,
                unscanned=unscanned,
                partial_history=partial_history,
            )
            return seal(report, redactor, scan_lines)
        except AisecError as exc:
            message = str(exc)
            learn(scan_lines, [message], redactor)
            kind = type(exc) if isinstance(exc, (AisecInputError, AisecUndecidableError)) else AisecUndecidableError
            raise kind(redactor.scrub(message)) from None
        except Exception as exc:  # never a value in a traceback or a message
            message = f"secrets scan failed: {type(exc).__name__}: {exc}"
            learn(scan_lines, [message], redactor)
            raise AisecUndecidableError(redactor.scrub(message)[:500]) from None


def _scan(
    path: str | os.PathLike[str],
    redactor: Redactor,
    scan_lines: Any,
    *,
    history: bool,
    baseline: str | os.PathLike[str] | None,
    allow: Mapping[str, str] | None,
    exclude_dirs: Sequence[str],
    max_file_bytes: int,
    fail_on: str,
    unscanned: str,
    partial_history: bool,
) -> Report:
    root = Path(path)
    _check_options(root, fail_on, unscanned, max_file_bytes)
    known = load_baseline(baseline) if baseline else {}
    raw_reasons = [str(r) for r in (allow or {}).values()] if isinstance(allow, Mapping) else []
    suppressions = _Suppressions(known, check_allow(allow))
    learn(scan_lines, raw_reasons, redactor)  # a value in a reason: its pieces are redacted too
    report = Report.start("secrets", str(root), tags=TAGS)
    tree, hist = ScanTally(), ScanTally()
    ctx = ScanContext(scan_lines, redactor, max_file_bytes)
    partial: list[str] = []
    if history:  # validates git first
        partial = scan_history(root, ctx, hist, partial_history)
    scan_tree(root, ctx, tree, exclude_dirs)

    severities, suppressed = _add_findings(report, tree, hist, suppressions)
    skipped = {**tree.unscanned_count}
    for k, v in hist.unscanned_count.items():
        skipped[k] = skipped.get(k, 0) + v
    _record(report, tree, hist, severities, suppressed, skipped, partial if history else None)
    report.details["policy"] = {"unscanned": unscanned, "fail_on": fail_on, "partial_history": partial_history}
    n = len(severities)
    n_unscanned = sum(skipped.values())
    summary = (
        f"{n} secret(s) found in {tree.files_scanned} file(s)"
        + (f" and {hist.commits_scanned} commit(s)" if history else "")
        + (f" (first {len(report.findings)} listed)" if n > len(report.findings) else "")
        + (f"; {len(suppressed)} suppressed" if suppressed else "")
        + (
            f"; {n_unscanned} item(s) NOT scanned (" + ", ".join(f"{v} {k}" for k, v in sorted(skipped.items())) + ")"
            if n_unscanned
            else ""
        )
        + (f"; {tree.excluded_count} excluded dir(s)" if tree.excluded_count else "")
        + (f"; partial history accepted: {'; '.join(partial)}" if partial else "")
    )
    return _finish(report, summary, severities, n_unscanned, partial, fail_on=fail_on, unscanned=unscanned)


def _check_options(root: Path, fail_on: str, unscanned: str, max_file_bytes: int) -> None:
    if not os.path.lexists(root):
        raise AisecInputError(f"secrets scan path {str(root)!r} does not exist")
    parse_fail_on(fail_on, choices=FAIL_ON_LEVELS)
    if unscanned not in UNSCANNED_POLICIES:
        raise AisecInputError(f"unscanned must be one of {UNSCANNED_POLICIES}, not {unscanned!r}")
    if isinstance(max_file_bytes, bool) or not isinstance(max_file_bytes, int) or max_file_bytes <= 0:
        raise AisecInputError(f"max_file_bytes must be a positive integer, not {max_file_bytes!r}")


@dataclass
class _Suppressions:
    """Why a hit is not a finding: inline comment, ``allow`` fingerprint or baseline entry (else None)."""

    known: dict[tuple[str, str], dict[str, Any]]
    allow: dict[str, str]

    def reason(self, hit: Hit) -> str | None:
        if hit.allow_reason:
            return f"inline: {hit.allow_reason}"
        if hit.fingerprint in self.allow:
            return f"allowlist: {self.allow[hit.fingerprint]}"
        entry = self.known.get((hit.file, hit.hashed_secret)) if hit.kind == "content" else None
        if entry is not None and entry.get("is_secret") is not True:
            return "baseline" + (" (audited false positive)" if entry.get("is_secret") is False else "")
        return None


def _add_findings(
    report: Report, tree: ScanTally, hist: ScanTally, suppressions: _Suppressions
) -> tuple[list[str], list[dict[str, Any]]]:
    """One finding per value and place (history: its first commit); returns (severities, suppressed)."""
    in_tree = {(h.kind, h.file, h.fingerprint) for h in tree.hits}
    reported: list[tuple[Hit, dict[str, Any]]] = [(hit, {"scope": "tree"}) for hit in tree.hits]
    first_commit: dict[tuple[str, str, str], Hit] = {}
    for hit in hist.hits:  # oldest commit first: keep the first that carried the value
        first_commit.setdefault((hit.kind, hit.file, hit.fingerprint), hit)
    for (kind, file, fp), hit in first_commit.items():
        if (kind, file, fp) in in_tree:
            continue  # still in the tree: reported there, with its commit below
        reported.append((hit, {"scope": "history", "in_current_tree": False}))

    severities: list[str] = []
    suppressed: list[dict[str, Any]] = []
    for hit, extra in reported:
        reason = suppressions.reason(hit)
        details: dict[str, Any] = {
            "type": hit.type,
            "file": hit.file,
            "line": hit.line,
            "fingerprint": hit.fingerprint,
            "where": hit.kind,
            **extra,
        }
        origin = first_commit.get((hit.kind, hit.file, hit.fingerprint))
        if origin is not None:
            details["commit"] = origin.commit
            details["commit_date"] = origin.commit_date
        if reason:
            suppressed.append({**details, "location": hit.location, "reason": reason})
            continue
        severity = "medium" if hit.type in HEURISTIC_TYPES else "high"
        slug = re.sub(r"[^A-Z0-9]+", "-", hit.type.upper()).strip("-")
        severities.append(severity)
        if len(report.findings) < MAX_FINDINGS:
            title = f"{hit.type} {_where(hit.kind, extra['scope'])}"
            report.add_finding(f"AISEC-SECRET-{slug}", severity, title, hit.location, details)
    return severities, suppressed


def _where(kind: str, scope: str) -> str:
    """Where a secret was found, for a finding's title."""
    if kind == "name":
        where = "in a file name"
    elif kind == "ref":
        where = "in a git ref name"
    elif kind == "message":
        where = "in a git commit or tag object (message or header)"
    elif scope == "history":
        where = "in git history (no longer in the tree)"
    else:
        where = "in the working tree"
    if kind != "content" and scope == "history":
        where += " in git history"
    return where


def _record(
    report: Report,
    tree: ScanTally,
    hist: ScanTally,
    severities: list[str],
    suppressed: list[dict[str, Any]],
    skipped: dict[str, int],
    partial: list[str] | None,
) -> None:
    """Metrics and details of the scan; ``partial`` is ``None`` when history was not scanned."""
    report.metrics.update(
        {
            "files_scanned": tree.files_scanned,
            "files_binary_strings": tree.files_binary,
            "files_non_utf8": tree.files_non_utf8,
            "files_unscanned": sum(tree.unscanned_count.values()),
            "files_skipped_large": tree.unscanned_count.get("large", 0),
            "files_skipped_compressed": tree.unscanned_count.get("compressed", 0),
            "files_skipped_special": tree.unscanned_count.get("special", 0),
            "files_skipped_unreadable": tree.unscanned_count.get("unreadable", 0),
            "dirs_excluded": tree.excluded_count,
            "symlinks_not_followed": tree.symlinks,
            "lines_scanned": tree.lines_scanned + hist.lines_scanned,
            "secrets_found": len(severities),
            "findings_not_listed": len(severities) - len(report.findings),
            "suppressed": len(suppressed),
            "unscanned": sum(skipped.values()),
        }
    )
    if partial is not None:
        report.metrics.update(
            {
                "commits_scanned": hist.commits_scanned,
                "tags_scanned": hist.tags_scanned,
                "refs_scanned": hist.refs_scanned,
                "history_files_scanned": hist.files_scanned,
                "history_binary_strings": hist.files_binary,
                "history_unscanned": sum(hist.unscanned_count.values()),
                "history_only_findings": sum(1 for f in report.findings if f.details.get("scope") == "history"),
            }
        )
        report.details["history_partial"] = list(partial)
    if suppressed:
        report.details["suppressed"] = suppressed[:MAX_FINDINGS]
    unscanned_list = [{**u, "scope": "tree"} for u in tree.unscanned] + [
        {**u, "scope": "history"} for u in hist.unscanned
    ]
    if unscanned_list:
        report.details["unscanned"] = unscanned_list[:LIST_LIMIT]
    if tree.excluded:
        report.details["excluded_dirs"] = tree.excluded
    report.details["scope"] = "tree" if partial is None else "tree+history"


def _finish(
    report: Report,
    summary: str,
    severities: list[str],
    n_unscanned: int,
    partial: list[str],
    *,
    fail_on: str,
    unscanned: str,
) -> Report:
    """The status: a finding at or above ``fail_on`` fails; then unscanned items by policy; else warn / pass."""
    # every secret found counts, not only the first MAX_FINDINGS listed; a found secret fails even when
    # something else could not be scanned
    status = gate_status(severities, parse_fail_on(fail_on), degraded=bool(severities or n_unscanned or partial))
    if status is not Status.FAIL and n_unscanned and unscanned == "error":
        status = Status.ERROR
        summary += " — not everything could be scanned (unscanned='error'; pass unscanned='warn' to accept)"
    if severities and status is not Status.FAIL:
        summary += f" (heuristic only, below fail_on={fail_on})"
    return report.finish(status, summary)
