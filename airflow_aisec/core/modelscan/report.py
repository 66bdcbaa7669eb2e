"""The ``model_scan`` report: scan files and directories, turn every result into findings and a verdict."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from airflow_aisec.core.modelscan.engine import make_context, scan_file
from airflow_aisec.core.modelscan.policy import (
    F_MALFORMED,
    F_TEXT,
    F_TORCHSCRIPT,
    F_UNKNOWN_FORMAT,
    GLOBAL_FINDINGS,
    TAGS,
    UNSAFE_FINDING_IDS,
    Policy,
)
from airflow_aisec.core.modelscan.results import FileScan, GlobalRef, leaves
from airflow_aisec.exceptions import AisecInputError
from airflow_aisec.report import Report, Status, gate_status
from airflow_aisec.utils.progress import Progress

log = logging.getLogger(__name__)


def iter_model_files(paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    """Expand ``paths`` (files or directories, walked recursively) into the files that will be scanned.

    Symlinked *files* are scanned (a loader follows them); what cannot be scanned is listed by
    :func:`_collect` and reported as an error by :func:`scan_paths`."""
    return _collect(paths)[0]


def _collect(paths: Sequence[str | os.PathLike[str]]) -> tuple[list[str], list[tuple[str, str]]]:
    import stat

    if not paths:
        raise AisecInputError("scan-model needs at least one path")
    files: list[str] = []
    skipped: list[tuple[str, str]] = []
    for raw in paths:
        p = os.fspath(raw)
        if os.path.isdir(p):
            for root, dirs, names in os.walk(p):
                dirs.sort()
                for d in dirs:
                    if os.path.islink(os.path.join(root, d)):
                        skipped.append((os.path.join(root, d), "symlinked directory: not followed, not scanned"))
                for n in sorted(names):
                    full = os.path.join(root, n)
                    try:
                        mode = os.stat(full).st_mode  # follows a symlinked file, as a loader would
                    except OSError as exc:
                        skipped.append((full, f"unreadable ({exc.strerror or exc}; dangling link?)"))
                        continue
                    if stat.S_ISREG(mode):
                        files.append(full)
                    else:
                        skipped.append((full, "not a regular file (FIFO, device or socket): not opened"))
        elif os.path.isfile(p):
            files.append(p)
        else:
            raise AisecInputError(f"model path {p!r} does not exist or is not a regular file/directory")
    return files, skipped


def scan_paths(
    paths: Sequence[str | os.PathLike[str]] | str,
    *,
    allow: Sequence[str] = (),
    force_allow: Sequence[str] = (),
    fail_on_unknown_format: bool = True,
    allow_formats: Sequence[str] = (),
    **bounds: int,
) -> Report:
    """Scan model files and directories; return an ``aisec.report/v1`` ``model_scan`` report.

    Status: ``fail`` when any file references a dangerous or non-allowlisted global (or, with
    ``fail_on_unknown_format``, holds a format the scan does not inspect), else ``error`` when any file
    is malformed, unreadable or exceeds a bound, else ``pass``.

    :param paths: files or directories.
    :param allow: extra allowed globals (``module.name`` or globs).
    :param force_allow: globals allowed even when known-dangerous (exact names).
    :param fail_on_unknown_format: treat files of a format the scan does not inspect as a (medium) finding.
    :param allow_formats: uninspected formats to accept explicitly (``gguf``, ``hdf5``, ``keras``, ``unknown``):
        reported as info, not a finding.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    policy = Policy(tuple(allow), tuple(force_allow))
    make_context(policy, allow_formats, bounds)  # validate before touching any file
    subject = ", ".join(os.fspath(p) for p in paths)
    report = Report.start("model_scan", subject, tags=TAGS)
    files, skipped = _collect(paths)
    progress = Progress("model scan: files", len(files), unit="files", logger=log)
    scans = []
    for f in files:
        scans.append(scan_file(f, policy, allow_formats=allow_formats, **bounds))
        progress.advance()
    progress.finish(min_elapsed=5.0)
    for where, reason in skipped:
        scans.append(FileScan(location=where, format="skipped", errors=[reason]))
    malformed = 0
    for scan in scans:
        for leaf in leaves(scan):
            add_findings(report, leaf, fail_on_unknown_format)
            malformed += bool(leaf.errors)
    verdicts = [s.verdict for s in scans]
    globals_all = [g for s in scans for g in s.iter_globals()]
    all_leaves = [leaf for s in scans for leaf in leaves(s)]
    report.metrics.update(
        {
            "files_scanned": len(scans),
            "files_unsafe": verdicts.count("unsafe"),
            "files_malformed": verdicts.count("malformed"),
            "files_unrecognised": verdicts.count("unrecognised"),
            "members_scanned": len(all_leaves) - len(scans),
            "members_uninspected": sum(leaf.uninspected for leaf in all_leaves),
            "raw_tensor_members": sum(leaf.raw_members for leaf in all_leaves),
            "bytes_scanned": sum(s.size for s in scans),
            "pickles": sum(leaf.pickles for leaf in all_leaves),
            "globals_total": len(globals_all),
            "globals_dangerous": sum(g.verdict == "dangerous" for g in globals_all),
            "globals_unknown": sum(g.verdict in ("unknown", "ambiguous") for g in globals_all),
            "opcodes": sum(leaf.opcodes for leaf in all_leaves),
            "format_issues": sum(len(leaf.issues) for leaf in all_leaves),
        }
    )
    report.details["files"] = [s.to_dict() for s in scans]
    unsafe = [f for f in report.findings if f.id in UNSAFE_FINDING_IDS]
    # the one severity gate, over the findings that make a file unsafe (malformed files decide below)
    if gate_status([f.severity for f in unsafe], "medium") == Status.FAIL:
        n = len({f.location.split("!")[0] for f in unsafe if f.severity in ("critical", "high", "medium")})
        return report.finish(
            "fail",
            f"{n} of {len(scans)} file(s) unsafe or uninspected: "
            f"{report.metrics['globals_dangerous']} dangerous, {report.metrics['globals_unknown']} non-allowlisted "
            f"global(s), {report.metrics['format_issues']} code/escape finding(s) in parsed formats, "
            f"{report.metrics['members_uninspected']} file(s)/member(s) of a format not inspected",
        )
    if malformed:
        return report.finish(
            "error",
            f"{malformed} malformed, unreadable or out-of-bounds file(s)/member(s) of {len(scans)}: cannot decide",
        )
    formats = sorted({s.format for s in scans})
    return report.finish("pass", f"{len(scans)} file(s) scanned ({', '.join(formats)}): no code beyond the allowlist")


def add_findings(report: Report, scan: FileScan, fail_on_unknown_format: bool) -> None:
    """Add the findings of one scanned file to ``report`` (also used by scans that embed the model scan)."""
    grouped: dict[tuple[str, str, str], list[GlobalRef]] = {}
    for g in scan.globals:
        if g.verdict != "safe":
            grouped.setdefault((g.verdict, g.module, g.name), []).append(g)
    for (verdict, module, name), refs in grouped.items():
        details = {
            "format": scan.format,
            "global": f"{module}.{name}",
            "opcodes": sorted({r.opcode for r in refs}),
            "offsets": [r.offset for r in refs[:20]],
            "occurrences": len(refs),
            "called": any(r.called for r in refs),
        }
        finding_id, severity, title = GLOBAL_FINDINGS.get(verdict, GLOBAL_FINDINGS["unknown"])
        report.add_finding(finding_id, severity, title.format(f"{module}.{name}"), scan.location, details)
    for issue in scan.issues:
        report.add_finding(
            issue.id, issue.severity, issue.title, scan.location, {"format": scan.format, **issue.details}
        )
    for err in scan.errors:
        report.add_finding(
            F_MALFORMED,
            "high",
            f"Malformed, unreadable or out of bounds: {err}",
            scan.location,
            {"format": scan.format},
        )
    for note in scan.notes:
        if note.startswith("TorchScript"):
            report.add_finding(F_TORCHSCRIPT, "low", note, scan.location, {"format": scan.format})
    if scan.uninspected:
        allowed = scan.format_allowed or not fail_on_unknown_format
        report.add_finding(
            F_UNKNOWN_FORMAT,
            "info" if allowed else "medium",
            f"Format not inspected ({scan.format}): the scan cannot vouch for it"
            + (" (accepted by policy)" if allowed else ""),
            scan.location,
            {"size": scan.size, "format": scan.format},
        )
    elif scan.format == "text":
        report.add_finding(
            F_TEXT, "info", "Text file (no unpickler imports anything from it)", scan.location, {"size": scan.size}
        )
