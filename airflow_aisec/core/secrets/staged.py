"""Secrets in several paths at once, and in what is *staged* for the next commit (pre-commit hooks).

:func:`scan_secrets_paths` scans each path with :func:`~airflow_aisec.core.secrets.scan_secrets` and
merges the reports (the worst status wins; a path that cannot be scanned is an error for all).

:func:`scan_staged` scans the blobs in the git index, not the working tree: what ``git commit``
would record. A value staged and then removed from the working tree is found; a value only in the
working tree (not staged) is not. The index entries (``git diff --cached --name-only -z`` for the
names, ``git ls-files -s -z`` for their blob ids) are streamed one by one through
``git cat-file --batch`` into a private temporary directory laid out like the repository, which the
tree scanner then reads with every usual policy (size bound, compressed and binary handling). Blobs
larger than ``max_file_bytes`` are never stored (git's output is read through in 64 KiB pieces): they
stand in as sparse files of their size and are reported as not scanned. No Airflow import here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import IO, Any

from airflow_aisec.core.secrets.git import Repo, check_config_files, display, git_env
from airflow_aisec.core.secrets.scan import DEFAULT_MAX_FILE_BYTES, scan_secrets
from airflow_aisec.exceptions import AisecError, AisecInputError, AisecUndecidableError
from airflow_aisec.report import Report, Status

_STATUS_RANK = {"pass": 0, "warn": 1, "fail": 2, "error": 3}
_CHUNK = 1 << 16


def scan_secrets_paths(paths: Sequence[str | os.PathLike[str]], **kwargs: Any) -> Report:
    """Scan every path in ``paths`` (keyword arguments as :func:`scan_secrets`); one merged report."""
    if not paths:
        raise AisecInputError("give at least one path to scan for secrets")
    if len(paths) == 1:
        return scan_secrets(paths[0], **kwargs)
    reports = [scan_secrets(p, **kwargs) for p in paths]
    merged = Report.start("secrets", f"{len(reports)} paths")
    worst = Status.PASS
    for report in reports:
        merged.findings.extend(report.findings)
        merged.add_tags(*report.tags)
        for name, value in report.metrics.items():
            if isinstance(value, (int, float)) and name != "duration_seconds":
                merged.metrics[name] = (merged.metrics.get(name) or 0) + value
        if _STATUS_RANK[report.status] > _STATUS_RANK[worst]:
            worst = report.status
    merged.details["paths"] = [
        {"path": r.subject, "status": r.status.value, "summary": r.summary, "details": r.details} for r in reports
    ]
    summary = "; ".join(f"{r.subject}: {r.summary}" for r in reports)
    return merged.finish(worst, summary)


def scan_staged(
    paths: Sequence[str | os.PathLike[str]] = (),
    *,
    cwd: str | os.PathLike[str] = ".",
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    **kwargs: Any,
) -> Report:
    """Scan the staged (index) version of ``paths`` (every staged file when empty) in the repository at ``cwd``.

    :param paths: files or directories, relative to ``cwd`` or absolute, that restrict the scan.
    :param cwd: a directory inside the git work tree.
    :param max_file_bytes: blobs above this are not read (listed as not scanned, per ``unscanned``).
    :param kwargs: the other options of :func:`scan_secrets` (``history`` is refused).
    :raises AisecInputError: ``cwd`` is not in a git work tree, ``history`` was asked for.
    :raises AisecUndecidableError: git fails or the index holds a conflict or an unsafe name.
    """
    if kwargs.pop("history", False):
        raise AisecInputError("--staged scans the index; it cannot be combined with --history")
    if isinstance(max_file_bytes, bool) or not isinstance(max_file_bytes, int) or max_file_bytes <= 0:
        raise AisecInputError(f"max_file_bytes must be a positive integer, not {max_file_bytes!r}")
    top = _top(Path(cwd))
    repo = Repo(top, "", False)
    wanted = _wanted(paths, Path(cwd), top)
    staged = [n for n in repo.run("diff", "--cached", "--name-only", "-z", "--no-renames").split(b"\0") if n]
    chosen = {n for n in staged if wanted is None or _under(display(n), wanted)}
    entries = _index_entries(repo, chosen)
    workdir = tempfile.mkdtemp(prefix="aisec-staged-")
    try:
        submodules = _materialise(repo, entries, Path(workdir), max_file_bytes)
        try:
            report = scan_secrets(workdir, max_file_bytes=max_file_bytes, **kwargs)
        except AisecError as exc:
            raise type(exc)(str(exc).replace(workdir, "<index>")) from None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report.subject = f"{top} (staged)"
    report.details["staged"] = {"files": len(entries), "submodules_not_scanned": submodules}
    report.summary = f"staged: {report.summary}"
    return report


def _top(cwd: Path) -> Path:
    check_config_files(cwd.absolute())
    try:
        raw = Repo(cwd, "", False).run("rev-parse", "--show-toplevel")
    except AisecUndecidableError as exc:
        if "not installed" in str(exc):
            raise
        raise AisecInputError(f"--staged: {str(cwd)!r} is not inside a git work tree") from None
    return Path(os.fsdecode(raw.rstrip(b"\n"))).resolve()


def _wanted(paths: Sequence[str | os.PathLike[str]], cwd: Path, top: Path) -> list[str] | None:
    """Repository-relative POSIX paths that restrict the scan (None: everything staged)."""
    if not paths:
        return None
    out = []
    for p in paths:
        absolute = Path(os.path.abspath(cwd / p))
        try:
            rel = absolute.relative_to(top).as_posix()
        except ValueError:
            try:
                rel = absolute.resolve().relative_to(top).as_posix()
            except ValueError:
                raise AisecInputError(f"--staged: {str(p)!r} is outside the repository") from None
        out.append("" if rel == "." else rel)
    return out


def _under(name: str, wanted: list[str]) -> bool:
    return any(w == "" or name == w or name.startswith(w + "/") for w in wanted)


def _index_entries(repo: Repo, chosen: set[bytes]) -> list[tuple[bytes, str, bytes]]:
    """``(mode, blob id, name)`` of every chosen index entry; a conflict (stage > 0) cannot be decided."""
    if not chosen:
        return []
    entries = []
    for record in repo.run("ls-files", "-s", "-z").split(b"\0"):
        if not record:
            continue
        meta, _, name = record.partition(b"\t")
        if name not in chosen:
            continue
        mode, oid, stage = meta.split(b" ")
        if stage != b"0":
            raise AisecUndecidableError(f"--staged: {display(name)!r} has an unresolved merge conflict in the index")
        parts = PurePosixPath(os.fsdecode(name)).parts
        if not parts or name.startswith(b"/") or ".." in parts or ".git" in parts:
            raise AisecUndecidableError(f"--staged: unsafe path in the index: {display(name)!r}")
        entries.append((mode, oid.decode("ascii"), name))
    return entries


def _materialise(repo: Repo, entries: list[tuple[bytes, str, bytes]], root: Path, max_bytes: int) -> int:
    """Write each staged blob under ``root`` (oversized ones as sparse stand-ins); return the gitlinks skipped."""
    submodules = 0
    blobs = []
    for mode, oid, name in entries:
        if mode == b"160000":  # a gitlink records a commit id, not content
            submodules += 1
        else:
            blobs.append((oid, root / os.fsdecode(name)))
    if not blobs:
        return submodules
    proc = subprocess.Popen(
        repo.cmd("cat-file", "--batch"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=git_env(),
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        for oid, dest in blobs:
            dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            proc.stdin.write(oid.encode("ascii") + b"\n")
            proc.stdin.flush()
            header = proc.stdout.readline().split()
            if len(header) != 3 or header[1] != b"blob":
                raise AisecUndecidableError(f"--staged: git cannot read the staged blob {oid[:12]}")
            size = int(header[2])
            _copy_blob(proc.stdout, dest, size, max_bytes)
    finally:
        proc.stdin.close()
        proc.stdout.close()
        proc.wait(timeout=60)
    return submodules


def _copy_blob(stream: IO[bytes], dest: Path, size: int, max_bytes: int) -> None:
    """Copy ``size`` bytes (plus git's newline) to ``dest``; above ``max_bytes`` write a sparse stand-in."""
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "wb") as out:
        left = size
        while left:
            chunk = stream.read(min(_CHUNK, left))
            if not chunk:
                raise AisecUndecidableError("--staged: git stopped in the middle of a staged blob")
            if size <= max_bytes:
                out.write(chunk)
            left -= len(chunk)
        if size > max_bytes:
            out.truncate(size)  # the tree scanner sees the size and lists the file as not scanned
    stream.read(1)  # the newline after each blob
