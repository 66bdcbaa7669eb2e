"""Secrets scan of a working tree and of its git history, with detect-secrets' plugins plus ours.

* **Tree**: every text file under a path (``.git``, virtualenvs and caches excluded; binary files and
  files above ``max_file_bytes`` are skipped and counted).
* **History**: every line *added* by every commit reachable from any ref (``git log --all -p``),
  limited to the scanned path when it is a sub-directory of the repository — what
  ``git secrets --scan-history`` covers. Findings name commit, file and line. A secret deleted in a
  later commit is still found here (and not by the tree scan).

Detection: detect-secrets' whole plugin set (AWS, private keys, GitHub, Slack, Stripe, JWT,
high-entropy strings, keywords …) with its default filters, plus Hugging Face and OpenAI key
detectors (:mod:`airflow_aisec.core._secret_plugins`).

Suppression (each counted and listed in the report with its reason, never silently):

* a detect-secrets baseline file (``detect-secrets scan > .secrets.baseline``): entries not audited
  as real secrets (``is_secret`` not ``true``) are known and suppressed;
* inline comments: detect-secrets' ``pragma: allowlist secret`` (filtered by detect-secrets), or
  ``aisec: allow-secret <reason>`` on the line or the line above;
* ``allow``: fingerprints (as printed in reports) mapped to a reason.

**The secret value never leaves this module**: reports hold the type, location and a fingerprint
(truncated salted SHA-256); detect-secrets' logger (whose debug output would print values) is held at
WARNING during a scan.

No Airflow import here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError
from airflow_aisec.report import Report

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
#: Files above this size are skipped (and counted); tokens live in source and config, not in data dumps.
DEFAULT_MAX_FILE_BYTES = 2 * 1024 * 1024
#: Secret types from pattern heuristics (entropy, keyword) get ``medium``; vendor-format tokens ``high``.
HEURISTIC_TYPES = {"Base64 High Entropy String", "Hex High Entropy String", "Secret Keyword"}
_ALLOW_RE = re.compile(r"aisec:\s*allow-secret\b[\s:=-]*(?P<reason>.*?)\s*(?:\*/|-->)?\s*$")
_HUNK_RE = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@")
_FINGERPRINT_SALT = b"airflow-aisec/secret-fingerprint/v1\x00"
#: Hex strings of digest length on a line that names a hash are checksums (model / dataset digests), not keys.
_DIGEST_LENGTHS = {32, 40, 56, 64, 96, 128}
_DIGEST_WORDS = re.compile(r"sha\d*|hash|digest|checksum|md5|blake", re.IGNORECASE)
FAIL_ON_LEVELS = ("high", "medium")


def fingerprint(secret: str) -> str:
    """Stable, non-reversible-in-practice identifier of a secret value (truncated salted SHA-256)."""
    return hashlib.sha256(_FINGERPRINT_SALT + secret.encode("utf-8")).hexdigest()[:24]


@dataclass
class Hit:
    """One detected secret (no value: only its fingerprints)."""

    type: str
    file: str
    line: int
    fingerprint: str
    hashed_secret: str  # detect-secrets' SHA-1, only to match baselines; never reported
    commit: str | None = None
    commit_date: str | None = None
    allow_reason: str | None = None

    @property
    def location(self) -> str:
        where = f"{self.file}:{self.line}"
        return f"{self.commit[:12]}:{where}" if self.commit else where


@dataclass
class _Scan:
    hits: list[Hit] = field(default_factory=list)
    files_scanned: int = 0
    skipped_binary: int = 0
    skipped_large: int = 0
    skipped_unreadable: int = 0
    lines_scanned: int = 0
    commits_scanned: int = 0


# ----------------------------------------------------------------------------------- detect-secrets
@contextmanager
def _detector() -> Iterator[Any]:
    """detect-secrets configured with all its plugins + ours; yields ``scan_lines(lines, filename)``."""
    from detect_secrets.core import scan as ds_scan
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.settings import transient_settings

    ds_logger = logging.getLogger("detect-secrets")
    previous_level = ds_logger.level
    ds_logger.setLevel(logging.WARNING)  # its DEBUG messages contain secret values
    get_mapping_from_secret_type_to_class.cache_clear()
    plugin_classes: list[Any] = list(get_mapping_from_secret_type_to_class().values())
    builtin = [{"name": plugin.__name__} for plugin in plugin_classes]
    plugin_file = Path(__file__).with_name("_secret_plugins.py").resolve()
    custom = [
        {"name": name, "path": f"file://{plugin_file}"} for name in ("HuggingFaceTokenDetector", "OpenAIApiKeyDetector")
    ]
    try:
        with transient_settings({"plugins_used": builtin + custom}):
            get_mapping_from_secret_type_to_class.cache_clear()

            def scan_lines(lines: list[tuple[int, str]], filename: str) -> Iterator[Any]:
                yield from ds_scan._process_line_based_plugins(lines, filename=filename)

            yield scan_lines
    finally:
        get_mapping_from_secret_type_to_class.cache_clear()
        ds_logger.setLevel(previous_level)


def _hits_for(
    scan_lines: Any, lines: list[tuple[int, str]], filename: str, commit: str | None = None, date: str | None = None
) -> list[Hit]:
    by_number = dict(lines)
    found: dict[tuple[int, str], Hit] = {}
    for secret in scan_lines(lines, filename):
        value = secret.secret_value
        if not value:
            continue
        key = (secret.line_number, fingerprint(value))
        hit = Hit(secret.type, filename, secret.line_number, key[1], secret.secret_hash, commit, date)
        if (
            secret.type == "Hex High Entropy String"
            and len(value) in _DIGEST_LENGTHS
            and _DIGEST_WORDS.search(by_number.get(secret.line_number, ""))
        ):
            hit.allow_reason = "hash digest on a line naming a hash (not a credential)"
        previous = found.get(key)
        # Same value on the same line seen by several plugins: keep the most specific type.
        if previous is None or (previous.type in HEURISTIC_TYPES and hit.type not in HEURISTIC_TYPES):
            found[key] = hit
        del value
    for hit in found.values():
        if hit.allow_reason:
            continue
        for text in (by_number.get(hit.line, ""), by_number.get(hit.line - 1, "")):
            m = _ALLOW_RE.search(text)
            if m:
                hit.allow_reason = m.group("reason") or "inline aisec: allow-secret"
                break
    return sorted(found.values(), key=lambda h: (h.line, h.type))


def _read_text(path: Path, max_bytes: int, scan: _Scan) -> str | None:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            scan.skipped_large += 1
            return None
        data = path.read_bytes()
    except OSError:
        scan.skipped_unreadable += 1
        return None
    if b"\x00" in data[:8192]:
        scan.skipped_binary += 1
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        scan.skipped_binary += 1
        return None


# ------------------------------------------------------------------------------------------- tree
def _scan_tree(
    root: Path, scan_lines: Any, scan: _Scan, exclude_dirs: Sequence[str], max_bytes: int, skip: set[Path]
) -> None:
    files = [root] if root.is_file() else None
    base = root.parent if root.is_file() else root
    if files is None:
        files = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d not in exclude_dirs and not Path(dirpath, d).is_symlink())
            files.extend(Path(dirpath, f) for f in sorted(filenames) if not Path(dirpath, f).is_symlink())
    for file in files:
        if file.resolve() in skip:  # the baseline itself (hashes of known secrets)
            continue
        text = _read_text(file, max_bytes, scan)
        if text is None:
            continue
        scan.files_scanned += 1
        lines = list(enumerate(text.splitlines(), start=1))
        scan.lines_scanned += len(lines)
        if lines:
            scan.hits.extend(_hits_for(scan_lines, lines, file.relative_to(base).as_posix()))


# ---------------------------------------------------------------------------------------- history
def git_root(path: Path) -> Path:
    """The top of the git work tree containing ``path``; a non-git path is an input error."""
    where = path if path.is_dir() else path.parent
    try:
        out = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "--show-toplevel"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except FileNotFoundError as exc:
        raise AisecUndecidableError("history scan needs the `git` executable, which is not installed") from exc
    if out.returncode != 0:
        raise AisecInputError(f"history scan: {str(path)!r} is not inside a git repository")
    return Path(out.stdout.strip()).resolve()


def _scan_history(path: Path, scan_lines: Any, scan: _Scan, max_bytes: int, skip_names: set[str]) -> None:
    root = git_root(path)
    rel = path.resolve().relative_to(root).as_posix()
    cmd = [
        "git",
        "-C",
        str(root),
        "-c",
        "core.quotepath=off",
        "log",
        "--all",
        "-p",
        "--no-color",
        "--no-ext-diff",
        "--no-textconv",
        "--no-renames",
        "--unified=0",
        "--format=%x00commit %H %cI",
    ]
    if rel not in ("", "."):
        cmd += ["--", rel]
    # Report history paths relative to the scanned directory, like the tree scan does.
    base_rel = rel if path.is_dir() else os.path.dirname(rel)
    prefix = "" if base_rel in ("", ".") else base_rel + "/"
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    commit = date = None
    filename: str | None = None
    lines: list[tuple[int, str]] = []
    added_bytes = 0
    too_large = False
    line_no = 0

    def flush() -> None:
        nonlocal lines, added_bytes, too_large
        if filename and lines and not too_large:
            scan.lines_scanned += len(lines)
            scan.hits.extend(_hits_for(scan_lines, lines, filename, commit, date))
        lines, added_bytes, too_large = [], 0, False

    try:
        for raw in proc.stdout:
            text = raw.decode("utf-8", errors="replace").rstrip("\n")
            if text.startswith("\x00commit "):
                flush()
                _, commit, date = (text[1:].split(" ") + [None, None])[:3]
                filename = None
                scan.commits_scanned += 1
            elif text.startswith("diff --git "):
                flush()
                filename = None
            elif text.startswith("+++ "):
                target = text[4:]
                filename = target[2:] if target.startswith("b/") else None  # /dev/null: deletion
                if filename is not None and prefix and filename.startswith(prefix):
                    filename = filename[len(prefix) :]
                if filename is not None and os.path.basename(filename) in skip_names:
                    filename = None  # a committed baseline holds hashes, not secrets
                if filename is not None:
                    scan.files_scanned += 1
            elif text.startswith("Binary files "):
                scan.skipped_binary += 1
            elif text.startswith("@@"):
                m = _HUNK_RE.match(text)
                line_no = int(m.group(1)) if m else 0
            elif text.startswith("+") and filename is not None:
                added_bytes += len(raw)
                if added_bytes > max_bytes:
                    if not too_large:
                        scan.skipped_large += 1
                    too_large = True
                    continue
                lines.append((line_no, text[1:]))
                line_no += 1
        flush()
    finally:
        proc.stdout.close()
        stderr = proc.stderr.read().decode("utf-8", errors="replace") if proc.stderr else ""
        if proc.stderr:
            proc.stderr.close()
        code = proc.wait()
    if code != 0:
        raise AisecUndecidableError(f"history scan: `git log` failed in {str(root)!r}: {stderr.strip()[:300]}")


# --------------------------------------------------------------------------------------- baseline
def load_baseline(path: str | os.PathLike[str]) -> dict[tuple[str, str], dict[str, Any]]:
    """detect-secrets baseline → {(filename, hashed_secret): entry}."""
    p = Path(path)
    if not p.is_file():
        raise AisecInputError(f"baseline file {str(p)!r} does not exist")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
        results = data["results"]
        entries = {(str(fname), str(item["hashed_secret"])): item for fname, items in results.items() for item in items}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise AisecInputError(f"baseline file {str(p)!r} is not a detect-secrets baseline: {exc!r}") from exc
    return entries


# ------------------------------------------------------------------------------------------- scan
def scan_secrets(
    path: str | os.PathLike[str],
    *,
    history: bool = False,
    baseline: str | os.PathLike[str] | None = None,
    allow: Mapping[str, str] | None = None,
    exclude_dirs: Sequence[str] = DEFAULT_EXCLUDE_DIRS,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    fail_on: str = "medium",
) -> Report:
    """Scan ``path`` (and with ``history`` its git history) for secrets; return a ``secrets`` report.

    :param path: directory or file to scan.
    :param history: also scan every line added in every commit (``path`` must be in a git repository).
    :param baseline: detect-secrets baseline file of known findings.
    :param allow: fingerprint → reason, for known false positives.
    :param exclude_dirs: directory names never descended into (tree scan).
    :param max_file_bytes: files (or a commit's additions to one file) above this are skipped, counted.
    :param fail_on: ``medium`` (default: every finding fails) or ``high`` (vendor-format tokens fail;
        entropy / keyword heuristics are reported and make the status ``warn``).
    :raises AisecInputError: ``path`` missing, a non-git path with ``history``, bad baseline.
    """
    root = Path(path)
    if not root.exists():
        raise AisecInputError(f"secrets scan path {str(root)!r} does not exist")
    if fail_on not in FAIL_ON_LEVELS:
        raise AisecInputError(f"fail_on must be one of {FAIL_ON_LEVELS}, not {fail_on!r}")
    if max_file_bytes <= 0:
        raise AisecInputError(f"max_file_bytes must be positive, not {max_file_bytes!r}")
    known = load_baseline(baseline) if baseline else {}
    allow = dict(allow or {})
    report = Report.start("secrets", str(root), tags=TAGS)
    tree, hist = _Scan(), _Scan()
    with _detector() as scan_lines:
        skip = {Path(baseline).resolve()} if baseline else set()
        if history:  # validates git first
            _scan_history(root, scan_lines, hist, max_file_bytes, {p.name for p in skip})
        _scan_tree(root, scan_lines, tree, exclude_dirs, max_file_bytes, skip)

    suppressed: list[dict[str, Any]] = []

    def suppress_reason(hit: Hit) -> str | None:
        if hit.allow_reason:
            return f"inline: {hit.allow_reason}"
        if hit.fingerprint in allow:
            return f"allowlist: {allow[hit.fingerprint]}"
        entry = known.get((hit.file, hit.hashed_secret))
        if entry is not None and entry.get("is_secret") is not True:
            return "baseline" + (" (audited false positive)" if entry.get("is_secret") is False else "")
        return None

    in_tree = {(h.file, h.fingerprint): h for h in tree.hits}
    reported: list[tuple[Hit, dict[str, Any]]] = []
    for hit in tree.hits:
        reported.append((hit, {"scope": "tree"}))
    first_commit: dict[tuple[str, str], Hit] = {}
    for hit in hist.hits:  # git log is newest first; keep the oldest commit that added the value
        first_commit[(hit.file, hit.fingerprint)] = hit
    for key, hit in first_commit.items():
        if key in in_tree:
            continue  # still in the tree: reported there, with its commit below
        reported.append((hit, {"scope": "history", "in_current_tree": False}))

    for hit, extra in reported:
        reason = suppress_reason(hit)
        details: dict[str, Any] = {
            "type": hit.type,
            "file": hit.file,
            "line": hit.line,
            "fingerprint": hit.fingerprint,
            **extra,
        }
        origin = first_commit.get((hit.file, hit.fingerprint))
        if origin is not None:
            details["commit"] = origin.commit
            details["commit_date"] = origin.commit_date
            if extra["scope"] == "history":
                details["commit_line"] = origin.line
        if reason:
            suppressed.append({**details, "location": hit.location, "reason": reason})
            continue
        severity = "medium" if hit.type in HEURISTIC_TYPES else "high"
        slug = re.sub(r"[^A-Z0-9]+", "-", hit.type.upper()).strip("-")
        where = "in git history (no longer in the tree)" if extra["scope"] == "history" else "in the working tree"
        report.add_finding(f"AISEC-SECRET-{slug}", severity, f"{hit.type} {where}", hit.location, details)

    report.metrics.update(
        {
            "files_scanned": tree.files_scanned,
            "files_skipped_binary": tree.skipped_binary,
            "files_skipped_large": tree.skipped_large,
            "files_skipped_unreadable": tree.skipped_unreadable,
            "lines_scanned": tree.lines_scanned + hist.lines_scanned,
            "secrets_found": len(report.findings),
            "suppressed": len(suppressed),
        }
    )
    if history:
        report.metrics.update(
            {
                "commits_scanned": hist.commits_scanned,
                "history_files_scanned": hist.files_scanned,
                "history_skipped_binary": hist.skipped_binary,
                "history_skipped_large": hist.skipped_large,
                "history_only_findings": sum(1 for f in report.findings if f.details.get("scope") == "history"),
            }
        )
    if suppressed:
        report.details["suppressed"] = suppressed
    report.details["scope"] = "tree+history" if history else "tree"
    n = len(report.findings)
    skipped = tree.skipped_binary + tree.skipped_large + tree.skipped_unreadable
    summary = (
        f"{n} secret(s) found in {tree.files_scanned} file(s)"
        + (f" and {hist.commits_scanned} commit(s)" if history else "")
        + (f"; {len(suppressed)} suppressed" if suppressed else "")
        + (f"; {skipped} file(s) skipped (binary/large/unreadable)" if skipped else "")
    )
    failing = [f for f in report.findings if f.severity == "high" or fail_on == "medium"]
    status = "fail" if failing else ("warn" if report.findings else "pass")
    if report.findings and not failing:
        summary += f" (heuristic only, below fail_on={fail_on})"
    return report.finish(status, summary)
