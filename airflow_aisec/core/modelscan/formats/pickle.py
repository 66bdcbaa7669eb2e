"""Raw pickles (protocols 0–5), joblib dumps and legacy ``torch.save`` files: every pickle in the stream."""

from __future__ import annotations

from typing import Any

from airflow_aisec.core.modelscan.context import MAX_PICKLES_PER_STREAM, Malformed, ScanContext
from airflow_aisec.core.modelscan.formats.base import FormatScanner, Sniffed
from airflow_aisec.core.modelscan.pickle_vm import PICKLE_OPCODE_BYTES, PickleWalker
from airflow_aisec.core.modelscan.results import FileScan

PICKLE_EXTS = (".pkl", ".pickle", ".joblib", ".pt", ".pth", ".bin", ".ckpt", ".sav", ".model", ".p", ".dat")
_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class PickleScanner(FormatScanner):
    """Declines (the stream is text or unknown) when no unpickler would get as far as importing
    anything from it, unless its name says it is a pickle (then it is a malformed one)."""

    name = "pickle"

    def matches(self, sniffed: Sniffed) -> bool:
        return sniffed.size > 0 and sniffed.buf[0] in PICKLE_OPCODE_BYTES

    def scan(self, sniffed: Sniffed, scan: FileScan, ctx: ScanContext) -> bool:
        strict = sniffed.name_hint.lower().endswith(PICKLE_EXTS)  # a .pkl that does not parse is malformed
        fmt_before = scan.format
        if not scan_pickles(sniffed.buf, scan, ctx, strict=strict):
            return False
        if scan.format == fmt_before:
            scan.format = "joblib" if scan.joblib_arrays else "pickle"
        return True


def scan_pickles(buf: Any, scan: FileScan, ctx: ScanContext, *, strict: bool) -> bool:
    """Walk every pickle from the start of ``buf`` to its end. False when no unpickler would get as
    far as importing anything from it (then it is not a pickle at all)."""
    looks_pickle = strict or buf[0] == 0x80
    pos, end, index = 0, len(buf), 0
    first: Any = None
    while pos < end:
        if index >= MAX_PICKLES_PER_STREAM:
            scan.errors.append(f"more than {MAX_PICKLES_PER_STREAM} consecutive pickles (bound)")
            return True
        before = len(scan.globals)
        # only joblib's loader skips array data, and it reads one pickle: later pickles are read by
        # plain sequential loaders (torch's legacy format)
        walker = PickleWalker(buf, pos, scan, ctx, joblib_arrays=index == 0)
        try:
            pos = walker.walk()
        except Malformed as exc:
            if index == 0 and not looks_pickle and exc.certain and not walker.reached:
                del scan.globals[before:]
                scan.pickles = scan.opcodes = scan.joblib_arrays = 0
                return False
            where = "pickle" if index == 0 else f"bytes after pickle #{index} (loaders read pickles in sequence)"
            scan.errors.append(f"{where}: {exc}")
            return True
        if walker.stop_frame_end > pos:
            # a loader reading pickles in sequence goes on after the frame, not after STOP
            scan.errors.append(
                f"{walker.stop_frame_end - pos} byte(s) after a STOP inside its frame (skipped by loaders)"
            )
            pos = walker.stop_frame_end
        if index == 0:
            first = walker.result
        index += 1
        if index == 5 and first == _TORCH_LEGACY_MAGIC and pos < end:
            scan.format = "pytorch-legacy"
            scan.notes.append(
                f"{end - pos} byte(s) of raw tensor storage after the 5 pickles of a legacy torch.save file "
                "(read as data by torch.load, never unpickled)"
            )
            return True
    return True


def walk_all(buf: Any, pos: int, scan: FileScan, ctx: ScanContext, *, joblib_arrays: bool = False) -> None:
    """Walk pickles from ``pos`` to the end of ``buf``; anything that is not a pickle is an error."""
    index = 0
    while pos < len(buf):
        if index >= MAX_PICKLES_PER_STREAM:
            scan.errors.append(f"more than {MAX_PICKLES_PER_STREAM} consecutive pickles (bound)")
            return
        walker = PickleWalker(buf, pos, scan, ctx, joblib_arrays=joblib_arrays)
        try:
            pos = walker.walk()
        except Malformed as exc:
            scan.errors.append(f"{exc} (pickle #{index + 1})")
            return
        if walker.stop_frame_end > pos:
            scan.errors.append(
                f"{walker.stop_frame_end - pos} byte(s) after a STOP inside its frame (pickle #{index + 1})"
            )
            pos = walker.stop_frame_end
        index += 1
    if index == 0:
        scan.errors.append("object array without its pickle (truncated)")
