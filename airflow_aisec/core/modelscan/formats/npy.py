"""numpy ``.npy`` files: the header is checked, plain arrays are data, object arrays carry a pickle."""

from __future__ import annotations

import ast
import struct
from typing import Any

from airflow_aisec.core.modelscan.context import ScanContext
from airflow_aisec.core.modelscan.formats.base import FormatScanner, Sniffed
from airflow_aisec.core.modelscan.formats.pickle import walk_all
from airflow_aisec.core.modelscan.results import FileScan


class NpyScanner(FormatScanner):
    name = "npy"

    def matches(self, sniffed: Sniffed) -> bool:
        return sniffed.head[:6] == b"\x93NUMPY"

    def scan(self, sniffed: Sniffed, scan: FileScan, ctx: ScanContext) -> bool:
        scan.format = "npy"
        scan_npy(sniffed.buf, scan, ctx)
        return True


def scan_npy(buf: Any, scan: FileScan, ctx: ScanContext) -> None:
    size = len(buf)
    if size < 10 or buf[6] not in (1, 2, 3):
        scan.errors.append("npy: unsupported or truncated format version")
        return
    ver = buf[6]
    lenfmt, lensize = ("<H", 2) if ver == 1 else ("<I", 4)
    if size < 8 + lensize:
        scan.errors.append("npy: truncated header length")
        return
    (hlen,) = struct.unpack(lenfmt, buf[8 : 8 + lensize])
    start = 8 + lensize
    if hlen > 1024 * 1024 or start + hlen > size:
        scan.errors.append("npy: truncated or oversized header")
        return
    header_bytes = bytes(buf[start : start + hlen])
    try:
        header = ast.literal_eval(header_bytes.decode("utf-8" if ver == 3 else "latin-1"))
    except (ValueError, SyntaxError, UnicodeDecodeError, MemoryError, RecursionError, TypeError):
        scan.errors.append("npy: header is not a Python literal")
        return
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        scan.errors.append("npy: header must have exactly descr, fortran_order, shape")
        return
    shape = header["shape"]
    if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
        scan.errors.append("npy: shape is not a tuple of sizes")
        return
    from numpy.lib import format as npformat

    try:
        dtype = npformat.descr_to_dtype(header["descr"])
    except (TypeError, ValueError, KeyError, RecursionError, IndexError):
        scan.errors.append("npy: descr is not a valid dtype")
        return
    data_start = start + hlen
    if dtype.hasobject:
        scan.format = "npy-object"
        scan.notes.append("object array: its data is a pickle (numpy.load needs allow_pickle=True)")
        walk_all(buf, data_start, scan, ctx)
        return
    count = 1
    for d in shape:
        count *= d
    need = count * dtype.itemsize
    have = size - data_start
    if have < need:
        scan.errors.append(f"npy: truncated data ({have} of {need} bytes)")
    elif have > need:
        scan.errors.append(f"npy: {have - need} unexplained byte(s) after the array data")
