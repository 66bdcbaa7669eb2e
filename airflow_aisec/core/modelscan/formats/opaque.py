"""Streams recognised but not parsed: empty files and text (no unpickler imports anything from it)."""

from __future__ import annotations

import codecs
from typing import Any

from airflow_aisec.core.modelscan.context import ScanContext
from airflow_aisec.core.modelscan.formats.base import FormatScanner, Sniffed
from airflow_aisec.core.modelscan.results import FileScan


class EmptyScanner(FormatScanner):
    name = "empty"

    def matches(self, sniffed: Sniffed) -> bool:
        return sniffed.size == 0

    def scan(self, sniffed: Sniffed, scan: FileScan, ctx: ScanContext) -> bool:
        scan.format = "empty"
        scan.errors.append("empty file")
        return True


class TextScanner(FormatScanner):
    """Tried after the pickle scanner declined: text only if every byte decodes as UTF-8 (no NUL)."""

    name = "text"

    def matches(self, sniffed: Sniffed) -> bool:
        return _is_text(sniffed.head)

    def scan(self, sniffed: Sniffed, scan: FileScan, ctx: ScanContext) -> bool:
        if not _is_text_all(sniffed.buf):
            return False
        scan.format = "text"
        return True


def _is_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start > len(head) - 4  # a multi-byte char cut at the end of the sample
    return True


def _is_text_all(buf: Any) -> bool:
    """Every byte decodes as UTF-8 (checked in chunks), no NUL."""
    dec = codecs.getincrementaldecoder("utf-8")()
    step = 1 << 20
    try:
        for i in range(0, len(buf), step):
            chunk = bytes(buf[i : i + step])
            if b"\x00" in chunk:
                return False
            dec.decode(chunk)
        dec.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True
