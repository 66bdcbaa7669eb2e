"""Reading inference log files: a file and its rotated siblings, or every log file of a directory.

Reads are bounded (line length, total decompressed bytes); files seen but not read are listed with
the reason, so the audit can fail closed on them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any

from airflow_aisec.core.inference_audit.records import MAX_LINE_BYTES
from airflow_aisec.exceptions import AisecInputError

#: most bytes read from all log files together (decompressed), so a hostile log cannot exhaust memory.
MAX_TOTAL_BYTES = 1024 * 1024 * 1024
#: a log file's rotated siblings: ``app.log.1``, ``app.log.2.gz``, ``app.log-20261201``, ``app.log.gz``.
_ROTATED_SUFFIX = re.compile(r"^(?:[.-]\d+)*(?:\.(?:gz|bz2|xz|zst|lz4|z|zip))?$", re.IGNORECASE)
_LOG_NAME = re.compile(r"\.(?:jsonl|log|json)(?:[.-]\d+)*(?:\.(?:gz|bz2|xz|zst|lz4|z|zip))?$", re.IGNORECASE)
_READABLE_COMPRESSION = ("", ".gz", ".bz2", ".xz")


def is_log_name(name: str) -> bool:
    """A log file name (``*.jsonl``/``*.log``/``*.json``, possibly rotated/compressed)."""
    return bool(_LOG_NAME.search(name)) and not name.startswith(".")


def _compression(name: str) -> str:
    lowered = name.lower()
    for ext in (".gz", ".bz2", ".xz", ".zst", ".lz4", ".z", ".zip"):
        if lowered.endswith(ext):
            return ext
    return ""


def rotated_siblings(path: str) -> list[str]:
    """Rotated copies next to a log file (``app.log.1``, ``app.log.2.gz``, ``app.log-20261201``)."""
    folder, base = os.path.split(os.path.abspath(path))
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    out = []
    for name in names:
        if name != base and name.startswith(base) and _ROTATED_SUFFIX.match(name[len(base) :]):
            out.append(os.path.join(folder, name))
    return sorted(out)


class _Budget:
    def __init__(self, limit: int) -> None:
        self.left = limit

    def take(self, n: int, what: str) -> None:
        self.left -= n
        if self.left < 0:
            raise AisecInputError(
                f"inference log {what}: more than {MAX_TOTAL_BYTES} bytes (decompressed) in total; audit a narrower window"
            )


def decompress_bounded(data: bytes, name: str, limit: int) -> bytes:
    """``data`` decompressed according to ``name``'s suffix, refusing more than ``limit`` bytes out."""
    comp = _compression(name)
    if comp == "":
        return data
    if comp not in _READABLE_COMPRESSION:
        raise AisecInputError(f"{name}: unsupported compression {comp}")
    import io

    opener = {".gz": "gzip", ".bz2": "bz2", ".xz": "lzma"}[comp]
    module = __import__(opener)
    try:
        with module.open(io.BytesIO(data), "rb") as fh:
            out = fh.read(limit + 1)
    except (OSError, EOFError, ValueError) as exc:
        raise AisecInputError(f"{name}: corrupt {comp} stream ({type(exc).__name__})") from None
    if len(out) > limit:
        raise AisecInputError(f"{name}: decompresses to more than {limit} bytes")
    return bytes(out)


def _open_log(path: str) -> Any:
    comp = _compression(path)
    if comp == ".gz":
        import gzip

        return gzip.open(path, "rb")
    if comp == ".bz2":
        import bz2

        return bz2.open(path, "rb")
    if comp == ".xz":
        import lzma

        return lzma.open(path, "rb")
    return open(path, "rb")


def _iter_file_lines(path: str, budget: _Budget) -> Iterable[tuple[str, bytes]]:
    """``(where, line)`` of one file; a line longer than the limit is yielded truncated (counted bad)."""
    name = os.path.basename(path)
    with _open_log(path) as fh:
        lineno = 0
        while True:
            line = fh.readline(MAX_LINE_BYTES + 1)
            if not line:
                return
            lineno += 1
            budget.take(len(line), path)
            if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                while True:  # skip the rest of the over-long line without keeping it
                    rest = fh.readline(MAX_LINE_BYTES)
                    budget.take(len(rest), path)
                    if not rest or rest.endswith(b"\n"):
                        break
            yield f"{name}:{lineno}", line


def read_log_sources(path: str | os.PathLike[str]) -> tuple[list[tuple[str, bytes]], dict[str, Any]]:
    """Every line of a log file (and its rotated siblings), or of every log file in a directory.

    Returns ``(lines, sources)``; ``sources`` lists the files read (``read``), the files seen but not
    read with the reason (``not_read``: unsupported compression, unreadable) and the other files of
    a directory (``ignored``: not log names, hidden, sub-directories).
    """
    p = os.fspath(path)
    read: list[str] = []
    not_read: list[dict[str, str]] = []
    ignored: list[str] = []
    if os.path.isdir(p):
        candidates = []
        for n in sorted(os.listdir(p)):
            full = os.path.join(p, n)
            # a log-named symlink, directory or special file is a log the audit cannot read (never
            # followed or opened): listed as not read (fails closed), not silently ignored
            if is_log_name(n):
                candidates.append(full)
            else:
                ignored.append(n)
        if not any(os.path.isfile(c) and not os.path.islink(c) for c in candidates):
            raise AisecInputError(f"inference log directory {p!r} has no .jsonl/.log files")
    elif os.path.isfile(p):
        candidates = [p, *rotated_siblings(p)]
    else:
        raise AisecInputError(f"inference log {p!r} does not exist")
    budget = _Budget(MAX_TOTAL_BYTES)
    lines: list[tuple[str, bytes]] = []
    for f in candidates:
        if _compression(f) not in _READABLE_COMPRESSION:
            not_read.append({"file": os.path.basename(f), "reason": f"unsupported compression {_compression(f)}"})
            continue
        if not os.path.isfile(f) or os.path.islink(f) and f != p:
            not_read.append({"file": os.path.basename(f), "reason": "not a regular file"})
            continue
        try:
            lines.extend(_iter_file_lines(f, budget))
        except AisecInputError:  # the total budget: the whole audit stops (exit 2)
            raise
        except (OSError, EOFError, ValueError) as exc:  # ValueError: lzma/bz2 corrupt streams
            if f == p:
                raise AisecInputError(f"inference log {f!r} is unreadable: {exc}") from exc
            not_read.append({"file": os.path.basename(f), "reason": f"unreadable: {type(exc).__name__}"})
            continue
        read.append(os.path.basename(f))
    return lines, {"read": read, "not_read": not_read, "ignored": ignored}


def read_log_lines(path: str | os.PathLike[str]) -> list[str]:
    """Lines of a local JSON-lines log file (and its rotated siblings), or of a directory's log files."""
    lines, _ = read_log_sources(path)
    return [line.decode("utf-8", errors="replace") for _, line in lines]
