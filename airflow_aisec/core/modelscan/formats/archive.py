"""Zip archives: PyTorch checkpoints (``*/data.pkl``; raw storages are data), ``.npz``, Keras v3, any zip.

The layout is checked against everything a reader other than :mod:`zipfile` might see differently, then
every member is scanned as a nested stream.
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
from typing import Any

from airflow_aisec.core.modelscan.context import ScanBound, ScanContext
from airflow_aisec.core.modelscan.formats.base import BufFile, FormatScanner, Sniffed
from airflow_aisec.core.modelscan.results import FileScan


class ZipScanner(FormatScanner):
    name = "zip"

    def matches(self, sniffed: Sniffed) -> bool:
        return sniffed.head[:4] in (b"PK\x03\x04", b"PK\x05\x06")

    def scan(self, sniffed: Sniffed, scan: FileScan, ctx: ScanContext) -> bool:
        scan_zip(sniffed.buf, scan, ctx, sniffed.depth)
        return True


_EOCD = b"PK\x05\x06"
_UNSAFE_NAME = re.compile(r"(^/|^[A-Za-z]:|\\|\x00|(^|/)\.{1,2}(/|$)|//)")


def _zip_layout_errors(buf: Any, zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> list[str]:
    """Everything a reader other than :mod:`zipfile` might see differently: bytes not covered by a
    central-directory entry (a hidden local entry), overlapping entries, local headers that disagree
    with the directory, several end records, entry-count mismatches, unsafe or colliding names."""
    errors: list[str] = []
    size = len(buf)
    spans: list[tuple[int, int, str]] = []
    for info in infos:
        off = info.header_offset
        if off < 0 or off + 30 > size or bytes(buf[off : off + 4]) != b"PK\x03\x04":
            errors.append(f"{info.filename!r}: no local header at offset {off}")
            continue
        (flags, method, crc, csize, usize, nlen, elen) = struct.unpack("<2xHH4xIIIHH", buf[off + 4 : off + 30])
        raw_name = bytes(buf[off + 30 : off + 30 + nlen])
        enc = "utf-8" if flags & 0x800 else "cp437"
        try:
            local_name = raw_name.decode(enc)
        except UnicodeDecodeError:
            local_name = None
        if local_name != info.orig_filename:
            errors.append(f"{info.filename!r}: local header names {raw_name!r}")
        if method != info.compress_type:
            errors.append(f"{info.filename!r}: local header compression method differs from the directory")
        data_start = off + 30 + nlen + elen
        data_end = data_start + info.compress_size
        if flags & 0x08:
            desc = _descriptor_len(buf, data_end, info)
            if desc is None:
                errors.append(f"{info.filename!r}: data descriptor missing or disagrees with the directory")
                continue
            data_end += desc
        elif (crc, csize, usize) != (info.CRC, info.compress_size, info.file_size) and 0xFFFFFFFF not in (
            csize,
            usize,
        ):
            errors.append(f"{info.filename!r}: local header sizes/CRC differ from the central directory")
        if data_end > size:
            errors.append(f"{info.filename!r}: data runs past the end of the file")
            continue
        spans.append((off, data_end, info.filename))
    spans.sort()
    cursor = 0
    for begin, end, name in spans:
        if begin < cursor:
            errors.append(f"{name!r}: overlaps the previous member")
        elif begin > cursor:
            errors.append(f"{begin - cursor} byte(s) at offset {cursor} belong to no member (hidden entry?)")
        cursor = max(cursor, end)
    start_dir = getattr(zf, "start_dir", None)
    if isinstance(start_dir, int) and spans and cursor != start_dir:
        errors.append(f"{abs(start_dir - cursor)} byte(s) between the last member and the central directory")
    eocd = _rfind(buf, _EOCD)
    if eocd < 0 or eocd + 22 > size:
        errors.append("end-of-central-directory record not found")
        return errors
    first_after_dir = int(buf.find(_EOCD, start_dir if isinstance(start_dir, int) else 0))
    if first_after_dir != eocd:
        errors.append("several end-of-central-directory records (readers disagree which one counts)")
    entries = int.from_bytes(buf[eocd + 10 : eocd + 12], "little")
    comment_len = int.from_bytes(buf[eocd + 20 : eocd + 22], "little")
    if eocd + 22 + comment_len != size:
        errors.append(f"{size - eocd - 22 - comment_len} byte(s) after the end record and its comment")
    if entries != 0xFFFF and entries != len(infos):
        errors.append(f"end record counts {entries} members, the central directory holds {len(infos)}")
    errors += _zip_name_errors(infos)
    return errors


def _rfind(buf: Any, needle: bytes, start: int = 0, end: int | None = None) -> int:
    return int(buf.rfind(needle, start, len(buf) if end is None else end))


def _descriptor_len(buf: Any, at: int, info: zipfile.ZipInfo) -> int | None:
    for sig in (True, False):
        base = at + (4 if sig else 0)
        if sig and bytes(buf[at : at + 4]) != b"PK\x07\x08":
            continue
        for width in (4, 8):
            end = base + 4 + 2 * width
            if end > len(buf):
                continue
            crc = int.from_bytes(buf[base : base + 4], "little")
            csize = int.from_bytes(buf[base + 4 : base + 4 + width], "little")
            usize = int.from_bytes(buf[base + 4 + width : end], "little")
            if (crc, csize, usize) == (info.CRC, info.compress_size, info.file_size):
                return end - at
    return None


def _zip_name_errors(infos: list[zipfile.ZipInfo]) -> list[str]:
    errors: list[str] = []
    seen: dict[str, str] = {}
    files: set[str] = set()
    dirs: set[str] = set()
    for info in infos:
        name = info.orig_filename
        if not name or _UNSAFE_NAME.search(name):
            errors.append(f"member name {name!r} is absolute, has '..'/'.'/empty segments, a backslash or NUL")
        key = name.rstrip("/").casefold()
        if key in seen:
            errors.append(f"member names {seen[key]!r} and {name!r} collide (duplicate or case variant)")
        seen[key] = name
        if name.endswith("/"):
            dirs.add(key)
            if info.file_size or info.compress_size:
                errors.append(f"directory entry {name!r} carries data")
        else:
            files.add(key)
    for key in seen:
        parts = key.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in files:
                errors.append(f"{seen[key]!r} lies under {'/'.join(parts[:i])!r}, which is a file")
                break
    return errors


def scan_zip(buf: Any, scan: FileScan, ctx: ScanContext, depth: int) -> None:
    scan.format = "zip"
    try:
        zf = zipfile.ZipFile(io.BufferedReader(BufFile(buf)))
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, struct.error, NotImplementedError) as exc:
        scan.errors.append(f"bad zip archive: {exc}")
        return
    with zf:
        ctx.members += len(infos)
        if ctx.members > ctx.max_zip_members:
            scan.errors.append(
                f"archive members ({ctx.members} so far, all nesting levels) exceed the bound {ctx.max_zip_members}"
            )
            return
        layout = _zip_layout_errors(buf, zf, infos)
        scan.errors += [f"zip layout: {e}" for e in layout[:20]]
        if len(layout) > 20:
            scan.errors.append(f"zip layout: {len(layout) - 20} more problem(s)")
        names = [i.filename for i in infos if not i.filename.endswith("/")]
        torch_roots = {n[: -len("data.pkl")] for n in names if n == "data.pkl" or n.endswith("/data.pkl")}
        if torch_roots:
            scan.format = "pytorch-zip"
            if any(n.endswith(".py") and "/code/" in f"/{n}" for n in names):
                scan.notes.append("TorchScript archive: contains code/ (TorchScript is executed by torch.jit.load)")
        elif names and all(n.endswith(".npy") for n in names):
            scan.format = "npz"
        elif "model.weights.h5" in names or {"config.json", "metadata.json"} <= set(names):
            from airflow_aisec.core.modelscan.formats.keras import inspect_keras_archive

            inspect_keras_archive(zf, names, scan, ctx)
        if depth >= ctx.max_depth:
            scan.errors.append(f"nesting deeper than {ctx.max_depth} (bound); not scanned")
            return
        for info in infos:
            n = info.filename
            if n.endswith("/") and not (info.file_size or info.compress_size):
                continue
            if any(re.fullmatch(re.escape(r) + r"data/[0-9]+", n) for r in torch_roots):
                scan.raw_members += 1  # raw tensor storage: read by torch as bytes, never unpickled
                continue
            sub = FileScan(location=f"{scan.location}!{n}")
            try:
                ctx.spend(info.file_size)
                data = zf.read(info)
            except ScanBound as exc:
                scan.errors.append(f"{n}: {exc}")
                return
            except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError) as exc:
                sub.errors.append(f"unreadable zip member: {exc}")
                scan.members.append(sub)
                continue
            ctx.scan_nested(data, sub, depth + 1, n)
            if n.rsplit("/", 1)[-1] == "data.pkl" and sub.format == "text":
                sub.errors.append("data.pkl is not a pickle")
            scan.members.append(sub)
