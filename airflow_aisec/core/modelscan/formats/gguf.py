"""GGUF (llama.cpp) models: header, metadata and tensor table parsed with explicit bounds; chat templates
walked as a Jinja AST (:mod:`.chat_template`).

The parser reads the bytes already in hand (no second memory map of the file) and takes value-type and
quantisation block sizes from the ``gguf`` package. Every count and length is checked against the bytes
that remain before it is used; tensors must lie, aligned and without overlap, inside the data section.
"""

from __future__ import annotations

import struct
from typing import Any

from airflow_aisec.core.modelscan.context import ScanContext
from airflow_aisec.core.modelscan.formats.base import FormatScanner, Sniffed, missing_library
from airflow_aisec.core.modelscan.formats.chat_template import template_problems
from airflow_aisec.core.modelscan.policy import F_GGUF_TEMPLATE, FORMAT_FINDINGS
from airflow_aisec.core.modelscan.results import FileScan, FormatIssue

MAX_KV = 1 << 20
MAX_TENSORS = 1 << 20
MAX_ARRAY_DEPTH = 4
MAX_KEY_BYTES = 1 << 16
_SCALAR = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9
_TEMPLATE_KEY = "tokenizer.chat_template"


class GgufError(Exception):
    """The file does not follow the GGUF layout (a malformed-file error)."""


class GgufScanner(FormatScanner):
    name = "gguf"

    def matches(self, sniffed: Sniffed) -> bool:
        return sniffed.head[:4] == b"GGUF"

    def scan(self, sniffed: Sniffed, scan: FileScan, ctx: ScanContext) -> bool:
        try:
            import gguf
        except ImportError:
            missing_library(scan, "gguf", "gguf")
            return True
        scan.format = "gguf"
        scan.parsed = True
        sizes = {int(k): v for k, v in gguf.GGML_QUANT_SIZES.items()}
        try:
            meta, tensors = _Reader(sniffed.buf, sizes, gguf.GGUF_DEFAULT_ALIGNMENT).read()
        except GgufError as exc:
            scan.errors.append(f"GGUF: {exc}")
            return True
        _check_templates(meta, scan)
        arch = meta.get("general.architecture")
        scan.notes.append(
            f"GGUF: {len(meta)} metadata key(s), {tensors} tensor(s)"
            + (f", architecture {arch!r}" if isinstance(arch, str) else "")
        )
        return True


def _check_templates(meta: dict[str, Any], scan: FileScan) -> None:
    for key, value in meta.items():
        if key != _TEMPLATE_KEY and not key.startswith(_TEMPLATE_KEY + "."):
            continue
        if not isinstance(value, str):
            scan.errors.append(f"GGUF: {key} is not a string")
            continue
        problems, error = template_problems(value)
        if error:
            scan.errors.append(f"GGUF {key}: {error}")
        if problems:
            scan.issues.append(
                FormatIssue(
                    F_GGUF_TEMPLATE,
                    FORMAT_FINDINGS[F_GGUF_TEMPLATE],
                    f"GGUF chat template {key} reaches Python internals: {'; '.join(problems[:5])}",
                    {"key": key, "constructs": problems[:20]},
                )
            )
        elif not error:
            scan.notes.append(f"GGUF {key}: chat template parsed, no refused construct")


class _Reader:
    """One pass over header, metadata and tensor table; values kept only for scalar and string keys."""

    def __init__(self, buf: Any, sizes: dict[int, tuple[int, int]], alignment: int) -> None:
        self.buf = buf
        self.size = len(buf)
        self.pos = 0
        self.sizes = sizes
        self.alignment = alignment
        self.e = "<"

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > self.size:
            raise GgufError(f"truncated: {n} byte(s) needed at offset {self.pos}, file has {self.size}")
        out = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return out

    def num(self, fmt: str) -> Any:
        return struct.unpack(self.e + fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self, limit: int | None = None, *, strict: bool = True) -> str:
        """A length-prefixed string; names must be UTF-8, values (token pieces) are kept leniently."""
        n = self.num("Q")
        if limit is not None and n > limit:
            raise GgufError(f"string of {n} bytes at offset {self.pos} exceeds the {limit}-byte bound")
        raw = self.take(n)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            if not strict:
                return raw.decode("utf-8", "replace")
            raise GgufError(f"string at offset {self.pos - n} is not UTF-8") from exc

    def value(self, vtype: int, depth: int = 0) -> Any:
        if vtype in _SCALAR:
            return self.num(_SCALAR[vtype])
        if vtype == _STRING:
            return self.string(strict=False)
        if vtype != _ARRAY:
            raise GgufError(f"unknown metadata value type {vtype} at offset {self.pos}")
        if depth >= MAX_ARRAY_DEPTH:
            raise GgufError(f"arrays nested deeper than {MAX_ARRAY_DEPTH} (bound)")
        itype, count = self.num("I"), self.num("Q")
        if itype in _SCALAR:
            self.take(count * struct.calcsize(_SCALAR[itype]))  # numeric arrays are skipped, not kept
            return None
        if itype not in (_STRING, _ARRAY) or count > (self.size - self.pos) // 8:
            raise GgufError(f"array of {count} item(s) of type {itype} does not fit in the file")
        for _ in range(count):
            self.value(itype, depth + 1)
        return None

    def read(self) -> tuple[dict[str, Any], int]:
        self.take(4)
        version = self.num("I")
        if version not in (2, 3):
            self.e = ">"
            self.pos = 4
            version = self.num("I")
            if version not in (2, 3):
                raise GgufError("unsupported version (2 and 3 are read)")
        n_tensors, n_kv = self.num("Q"), self.num("Q")
        if n_tensors > MAX_TENSORS or n_kv > MAX_KV:
            raise GgufError(f"{n_tensors} tensors / {n_kv} metadata keys exceed the bounds ({MAX_TENSORS}/{MAX_KV})")
        meta: dict[str, Any] = {}
        for _ in range(n_kv):
            key = self.string(MAX_KEY_BYTES)
            if key in meta:
                raise GgufError(f"duplicate metadata key {key!r}")
            meta[key] = self.value(self.num("I"))
        align = meta.get("general.alignment", self.alignment)
        if not isinstance(align, int) or isinstance(align, bool) or align <= 0 or align & (align - 1):
            raise GgufError(f"general.alignment {align!r} is not a power of two")
        infos = [self._tensor_info() for _ in range(n_tensors)]
        data_start = -(-self.pos // align) * align
        self._check_layout(infos, data_start, align)
        return meta, n_tensors

    def _tensor_info(self) -> tuple[str, int, int]:
        name = self.string(MAX_KEY_BYTES)
        n_dims = self.num("I")
        if not 1 <= n_dims <= 4:
            raise GgufError(f"tensor {name!r} has {n_dims} dimensions (1 to 4)")
        dims = [self.num("Q") for _ in range(n_dims)]
        ttype, offset = self.num("I"), self.num("Q")
        if ttype not in self.sizes:
            raise GgufError(f"tensor {name!r} has unknown type {ttype}")
        block, type_size = self.sizes[ttype]
        numel = 1
        for d in dims:
            numel *= d
        if dims[0] % block:
            raise GgufError(f"tensor {name!r}: first dimension {dims[0]} is not a multiple of the block size {block}")
        return name, offset, numel // block * type_size

    def _check_layout(self, infos: list[tuple[str, int, int]], data_start: int, align: int) -> None:
        data_len = self.size - data_start
        names: set[str] = set()
        cursor = 0
        for name, offset, nbytes in sorted(infos, key=lambda i: i[1]):
            if name in names:
                raise GgufError(f"duplicate tensor name {name!r}")
            names.add(name)
            if offset % align:
                raise GgufError(f"tensor {name!r} offset {offset} is not aligned to {align}")
            if offset < cursor:
                raise GgufError(f"tensor {name!r} overlaps the previous tensor")
            if offset + nbytes > data_len:
                raise GgufError(
                    f"tensor {name!r} declares {nbytes} bytes at {offset}: past the end of the data section ({data_len})"
                )
            cursor = offset + nbytes
