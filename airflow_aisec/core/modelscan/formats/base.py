"""The interface every format scanner implements, and what it is given to decide whether it applies."""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from airflow_aisec.core.modelscan.context import ScanContext
from airflow_aisec.core.modelscan.results import FileScan


@dataclass(frozen=True)
class Sniffed:
    """One stream to scan (a file, an archive member, decompressed content), recognised by content."""

    #: the whole stream (bytes or a read-only memory map)
    buf: Any
    #: its first 64 bytes
    head: bytes
    size: int
    #: archive/compression nesting level (0: the file itself)
    depth: int
    #: file or member name: only says whether content that does not parse was meant to be a pickle
    name_hint: str


class FormatScanner(ABC):
    """A model format: recognised by :meth:`matches` (magic bytes), scanned by :meth:`scan`.

    Scanners are tried in registry order; the first that matches and accepts the stream decides it.
    """

    #: the format label recorded in the result (``FileScan.format``)
    name: ClassVar[str]

    @abstractmethod
    def matches(self, sniffed: Sniffed) -> bool:
        """Cheap check of the stream's magic bytes."""

    @abstractmethod
    def scan(self, sniffed: Sniffed, scan: FileScan, ctx: ScanContext) -> bool:
        """Record what the stream holds into ``scan`` (format, globals, errors, notes, members).

        :return: False when a closer look shows the stream is not this format after all (nothing was
            recorded and the next scanner is tried); True once the stream is decided.
        """


class BufFile(io.RawIOBase):
    """A seekable read-only file over a bytes-like buffer (no copy)."""

    def __init__(self, buf: Any) -> None:
        self.buf = buf
        self.p = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = max(0, min(len(b), len(self.buf) - self.p))
        b[:n] = self.buf[self.p : self.p + n]
        self.p += n
        return n

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.p, 2: len(self.buf)}[whence]
        self.p = max(0, base + offset)
        return self.p

    def tell(self) -> int:
        return self.p


#: the install hint given when a format's parser library is missing
FORMATS_EXTRA = "pip install 'airflow-aisec[formats]'"


def missing_library(scan: FileScan, fmt: str, library: str) -> None:
    """Fail closed: the format is recognised but its parser is not installed (an error, never a pass)."""
    scan.format = fmt
    scan.errors.append(
        f"{fmt}: cannot inspect without the Python package {library!r} (install the formats extra: {FORMATS_EXTRA})"
    )
