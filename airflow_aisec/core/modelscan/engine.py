"""The scan of one stream: detect its format through the scanner registry, then close the bypasses
(content a plain ``pickle.load`` would execute although the format says otherwise)."""

from __future__ import annotations

import functools
import hashlib
import mmap
import os
import re
from collections.abc import Iterable
from typing import Any

from airflow_aisec.core.modelscan.context import (
    BOUND_NAMES,
    MAX_PICKLES_PER_STREAM,
    Malformed,
    ScanBound,
    ScanContext,
)
from airflow_aisec.core.modelscan.formats import COMPRESSED_LABELS, SCANNERS, Sniffed
from airflow_aisec.core.modelscan.pickle_vm import PickleWalker
from airflow_aisec.core.modelscan.policy import Policy
from airflow_aisec.core.modelscan.results import UNINSPECTED_FORMATS, FileScan, GlobalRef
from airflow_aisec.exceptions import AisecInputError

#: files up to this size are read into memory once (digest and scan over the same bytes); larger
#: ones are memory-mapped (a concurrent writer could change them between digest and scan)
IN_MEMORY_LIMIT = 1024**3


def make_context(policy: Policy | None, allow_formats: Iterable[str], bounds: dict[str, int]) -> ScanContext:
    known = BOUND_NAMES
    for key, value in bounds.items():
        if key not in known:
            raise AisecInputError(f"unknown scan bound {key!r} (known: {', '.join(sorted(known))})")
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise AisecInputError(f"scan bound {key} must be a non-negative integer, got {value!r}")
    formats = frozenset(allow_formats)
    bad = formats - set(UNINSPECTED_FORMATS)
    if bad:
        raise AisecInputError(f"allow_formats takes {', '.join(UNINSPECTED_FORMATS)}; got {', '.join(sorted(bad))}")
    return ScanContext(policy or Policy(), scan_stream, allow_formats=formats, **bounds)


def scan_stream(buf: Any, scan: FileScan, ctx: ScanContext, depth: int, name_hint: str) -> None:
    """Detect the format of ``buf`` by content and scan it into ``scan``.

    Two bypasses are closed afterwards: a joblib file whose "array data" holds opcodes a plain
    ``pickle.load`` would execute, and a polyglot (safetensors/npy/zip/… that also parses as a pickle).
    """
    try:
        _detect(buf, scan, ctx, depth, name_hint)
        if scan.joblib_arrays:
            # a joblib file opened with plain pickle.load: one pickle, array bytes read as opcodes
            _merge_hidden(
                scan,
                _plain_walk_globals(buf, ctx, pickles=1, installed_only=True),
                "reachable by pickle.load inside joblib array data",
            )
        elif scan.format not in ("pickle", "joblib", "empty", "pytorch-legacy") and not scan.format.startswith(
            COMPRESSED_LABELS
        ):
            _merge_hidden(scan, _plain_walk_globals(buf, ctx), "polyglot: the file also parses as a pickle")
    except ScanBound as exc:
        scan.errors.append(str(exc))
        if scan.format == "unknown":
            scan.format = "incomplete"  # stopped by a bound: an error, not an unrecognised format
    if scan.uninspected and scan.format in ctx.allow_formats:
        scan.format_allowed = True


def _detect(buf: Any, scan: FileScan, ctx: ScanContext, depth: int, name_hint: str) -> None:
    """The first registered scanner that matches and accepts the stream decides it; else ``unknown``."""
    sniffed = Sniffed(buf=buf, head=bytes(buf[:64]), size=len(buf), depth=depth, name_hint=name_hint)
    scan.size = sniffed.size
    for scanner in SCANNERS:
        if scanner.matches(sniffed) and scanner.scan(sniffed, scan, ctx):
            return
    scan.format = "unknown"


# ------------------------------------------------------------------------------ the gate
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def _plain_walk_globals(
    buf: Any, ctx: ScanContext, *, pickles: int = MAX_PICKLES_PER_STREAM, installed_only: bool = False
) -> list[GlobalRef]:
    """Globals a plain ``pickle.load`` (``pickles`` of them in sequence) would meet reading ``buf`` from
    its start (joblib array regions parsed as opcodes). Only well-formed, non-allowlisted names count:
    random bytes are not findings."""
    tmp = FileScan(location="")
    pos = 0
    try:
        for _ in range(pickles):
            if pos >= len(buf):
                break
            pos = PickleWalker(buf, pos, tmp, ctx, joblib_arrays=False).walk()
    except Malformed:
        pass
    return [
        g
        for g in tmp.globals
        if _IDENT.match(g.module)
        and _IDENT.match(g.name)
        and (
            g.verdict == "dangerous" or (g.verdict == "unknown" and (not installed_only or _top_level_exists(g.module)))
        )
    ]


@functools.lru_cache(maxsize=1024)
def _top_level_exists(module: str) -> bool:
    """Is the top-level package of ``module`` installed? (``find_spec`` of a top-level name runs no
    module code.) Used for names only a secondary reading reaches, where junk bytes spell names."""
    import importlib.util

    top = module.split(".")[0]
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return True


def _merge_hidden(scan: FileScan, found: list[GlobalRef], note: str) -> None:
    seen = {(g.qualname, g.offset) for g in scan.globals}
    extra = [g for g in found if (g.qualname, g.offset) not in seen]
    if extra:
        scan.globals.extend(extra)
        scan.notes.append(f"{note}: {', '.join(sorted({g.qualname for g in extra}))}")


# ------------------------------------------------------------------------------ entry points
def scan_file(
    path: str | os.PathLike[str],
    policy: Policy | None = None,
    *,
    allow_formats: Iterable[str] = (),
    **bounds: int,
) -> FileScan:
    """Scan one file (never loads it); the result's ``verdict`` is safe/unsafe/malformed/unrecognised."""
    ctx = make_context(policy, allow_formats, bounds)
    p = os.fspath(path)
    scan = FileScan(location=p)
    try:
        import stat

        if not stat.S_ISREG(os.stat(p).st_mode):
            scan.format = "skipped"
            scan.errors.append("not a regular file: not opened")
            return scan
        with open(p, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size <= IN_MEMORY_LIMIT:
                # one read: the digest and the scan see the very same bytes (no swap window)
                data = fh.read(IN_MEMORY_LIMIT + 1)
                if len(data) > IN_MEMORY_LIMIT:
                    raise OSError("file grew while it was read")
                scan.sha256 = hashlib.sha256(data).hexdigest()
                scan_stream(data, scan, ctx, 0, p)
            else:
                with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                    scan.sha256 = hashlib.sha256(buf).hexdigest()
                    scan_stream(buf, scan, ctx, 0, p)
    except OSError as exc:
        scan.errors.append(f"unreadable: {exc.strerror or exc}")
    except (RecursionError, MemoryError) as exc:
        scan.errors.append(f"cannot analyse ({type(exc).__name__}): structure too large or too deeply nested")
    except Exception as exc:
        scan.errors.append(f"cannot analyse: unexpected {type(exc).__name__} while scanning")
    return scan


def scan_bytes(
    data: bytes,
    name: str = "<bytes>",
    policy: Policy | None = None,
    *,
    allow_formats: Iterable[str] = (),
    **bounds: int,
) -> FileScan:
    """Scan in-memory bytes (same rules as :func:`scan_file`)."""
    ctx = make_context(policy, allow_formats, bounds)
    data = bytes(data)
    scan = FileScan(location=name, sha256=hashlib.sha256(data).hexdigest())
    try:
        scan_stream(data, scan, ctx, 0, name)
    except (RecursionError, MemoryError) as exc:
        scan.errors.append(f"cannot analyse ({type(exc).__name__}): structure too large or too deeply nested")
    except Exception as exc:
        scan.errors.append(f"cannot analyse: unexpected {type(exc).__name__} while scanning")
    return scan
