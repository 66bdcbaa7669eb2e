"""Compression layers (gzip, bz2, xz, lzma, lz4, joblib's zlib): decompressed within the total bound and
the content scanned as a nested stream (its format recognised again by content)."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zlib
from typing import IO, Any

from airflow_aisec.core.modelscan.context import ScanBound, ScanContext
from airflow_aisec.core.modelscan.formats.base import BufFile, FormatScanner, Sniffed
from airflow_aisec.core.modelscan.results import FileScan


class _ZlibReader(io.RawIOBase):
    """Streaming reader over one raw zlib stream (joblib's ``compress=N``); trailing bytes are an error."""

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh = fh
        self.d = zlib.decompressobj()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while True:
            if self.d.unconsumed_tail:
                out = self.d.decompress(self.d.unconsumed_tail, max(size, 1))
            elif self.d.eof:
                if self.d.unused_data or self.fh.read(1):
                    raise EOFError("trailing bytes after the zlib stream")
                return b""
            else:
                chunk = self.fh.read(1024 * 1024)
                if not chunk:
                    raise EOFError("zlib stream ended before its end marker")
                out = self.d.decompress(chunk, max(size, 1))
            if out:
                return out


def _is_zlib(head: bytes) -> bool:
    return len(head) >= 2 and head[0] == 0x78 and (head[0] * 256 + head[1]) % 31 == 0


def _lz4_open(f: IO[bytes]) -> Any:
    import lz4.frame

    return lz4.frame.LZ4FrameFile(f, mode="rb")


_COMPRESSORS: tuple[tuple[bytes, str, Any], ...] = (
    (b"\x1f\x8b", "gzip", lambda f: gzip.GzipFile(fileobj=f, mode="rb")),
    (b"BZh", "bz2", lambda f: bz2.BZ2File(f, mode="rb")),
    (b"\xfd7zXZ\x00", "xz", lambda f: lzma.LZMAFile(f, mode="rb")),
    (b"\x5d\x00\x00", "lzma", lambda f: lzma.LZMAFile(f, mode="rb", format=lzma.FORMAT_ALONE)),
    (b"\x04\x22\x4d\x18", "lz4", _lz4_open),
    (b"x", "zlib", _ZlibReader),
)
COMPRESSED_LABELS = tuple(label for _, label, _ in _COMPRESSORS)


def bounded_decompress(buf: Any, opener: Any, ctx: ScanContext, scan: FileScan) -> bytes | None:
    out = io.BytesIO()
    try:
        with opener(io.BufferedReader(BufFile(buf))) as stream:
            while True:
                chunk = stream.read(1024 * 1024)
                if not chunk:
                    break
                ctx.spend(len(chunk))
                out.write(chunk)
    except ScanBound as exc:
        scan.errors.append(f"{exc}; not scanned")
        return None
    except (OSError, EOFError, lzma.LZMAError, zlib.error, ValueError, RuntimeError) as exc:
        scan.errors.append(f"corrupt compressed stream: {exc}")
        return None
    return out.getvalue()


def _compressor(head: bytes) -> tuple[str, Any] | None:
    for magic, label, opener in _COMPRESSORS:
        if head.startswith(magic) and (label != "zlib" or _is_zlib(head)):
            return label, opener
    return None


class CompressedScanner(FormatScanner):
    name = "compressed"

    def matches(self, sniffed: Sniffed) -> bool:
        return _compressor(sniffed.head) is not None

    def scan(self, sniffed: Sniffed, scan: FileScan, ctx: ScanContext) -> bool:
        label, opener = _compressor(sniffed.head)  # type: ignore[misc]
        scan.format = label
        if sniffed.depth >= ctx.max_depth:
            scan.errors.append(f"nesting deeper than {ctx.max_depth} (bound); not scanned")
            return True
        inner = bounded_decompress(sniffed.buf, opener, ctx, scan)
        if inner is not None:
            sub = FileScan(location=f"{scan.location}!{label}")
            ctx.scan_nested(inner, sub, sniffed.depth + 1, sniffed.name_hint)
            scan.format = f"{label}+{sub.format}"
            scan.members.append(sub)
        return True
