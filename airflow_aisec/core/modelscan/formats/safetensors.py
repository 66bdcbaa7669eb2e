"""safetensors: a JSON header describing raw tensors; validated structurally (no code can be in it)."""

from __future__ import annotations

import struct
from typing import Any

from airflow_aisec.core.modelscan.context import ScanContext
from airflow_aisec.core.modelscan.formats.base import FormatScanner, Sniffed
from airflow_aisec.core.modelscan.results import FileScan
from airflow_aisec.exceptions import AisecInputError

SAFETENSORS_MAX_HEADER = 100 * 1024 * 1024


class SafetensorsScanner(FormatScanner):
    name = "safetensors"

    def matches(self, sniffed: Sniffed) -> bool:
        return _looks_safetensors(sniffed.head, sniffed.size)

    def scan(self, sniffed: Sniffed, scan: FileScan, ctx: ScanContext) -> bool:
        scan.format = "safetensors"
        scan_safetensors(sniffed.buf, scan)
        return True


_ST_DTYPES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E5M2": 1,
    "F8_E4M3": 1,
    "F8_E8M0": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "C64": 8,
    "F64": 8,
    "I64": 8,
    "U64": 8,
}


def _looks_safetensors(head: bytes, size: int) -> bool:
    if len(head) < 9:
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return 2 <= n <= size - 8 and head[8:9] == b"{"


def scan_safetensors(buf: Any, scan: FileScan) -> None:
    from airflow_aisec.utils import strictjson

    size = len(buf)
    (n,) = struct.unpack("<Q", buf[:8])
    if n > SAFETENSORS_MAX_HEADER:
        scan.errors.append(f"safetensors: header of {n} bytes exceeds the {SAFETENSORS_MAX_HEADER}-byte bound")
        return
    raw = bytes(buf[8 : 8 + n])
    try:
        header = strictjson.loads(raw, source="safetensors header")
    except (AisecInputError, RecursionError, ValueError) as exc:
        scan.errors.append(f"safetensors: header is not valid JSON ({exc})")
        return
    if not isinstance(header, dict):
        scan.errors.append("safetensors: header is not a JSON object")
        return
    meta = header.pop("__metadata__", None)
    if meta is not None and not (
        isinstance(meta, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items())
    ):
        scan.errors.append("safetensors: __metadata__ must map strings to strings")
    data_len = size - 8 - n
    spans: list[tuple[int, int, str]] = []
    for name, info in header.items():
        where = f"safetensors tensor {name!r}"
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            scan.errors.append(f"{where}: entry must have exactly dtype, shape, data_offsets")
            continue
        itemsize = _ST_DTYPES.get(info["dtype"]) if isinstance(info["dtype"], str) else None
        shape, offsets = info["shape"], info["data_offsets"]
        if itemsize is None:
            scan.errors.append(f"{where}: unknown dtype {info['dtype']!r}")
            continue
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            scan.errors.append(f"{where}: shape must be a list of non-negative integers")
            continue
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1]
        ):
            scan.errors.append(f"{where}: data_offsets must be [begin, end] with 0 <= begin <= end")
            continue
        numel = 1
        for d in shape:
            numel *= d
        if offsets[1] - offsets[0] != numel * itemsize:
            scan.errors.append(
                f"{where}: {info['dtype']} x {shape} needs {numel * itemsize} bytes, offsets span {offsets[1] - offsets[0]}"
            )
            continue
        spans.append((offsets[0], offsets[1], name))
    if scan.errors:
        return
    spans.sort()
    cursor = 0
    for begin, end, name in spans:
        if begin != cursor:
            kind = "overlaps the previous tensor" if begin < cursor else "leaves a gap"
            scan.errors.append(f"safetensors tensor {name!r}: data at {begin} {kind} (expected {cursor})")
            return
        cursor = end
    if cursor != data_len:
        scan.errors.append(f"safetensors: tensors cover {cursor} bytes but the data section has {data_len}")
    scan.notes.append(f"{len(spans)} tensor(s), structure valid")
