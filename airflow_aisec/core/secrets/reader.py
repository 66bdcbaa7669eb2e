"""Bytes of scanned files, read bounded and never blocking, and how they are decoded as text."""

from __future__ import annotations

import codecs
import os
import re
import stat
from pathlib import Path

from airflow_aisec.exceptions import AisecInputError
from airflow_aisec.utils.fs import BoundedReadError, read_bounded

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_COMPRESSED = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\x04\x22\x4d\x18", "lz4"),
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),
    (b"PK\x07\x08", "zip"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"Rar!\x1a\x07", "rar"),
    (b"\x5d\x00\x00", "lzma"),
    (b"\x1f\x9d", "compress"),
)
_RUNS = (
    re.compile(rb"[\x20-\x7e\t]{6,}"),
    re.compile(rb"(?:[\x20-\x7e\t]\x00){6,}"),
    re.compile(rb"(?:\x00[\x20-\x7e\t]){6,}"),
    re.compile(rb"(?:[\x20-\x7e\t]\x00\x00\x00){6,}"),
    re.compile(rb"(?:\x00\x00\x00[\x20-\x7e\t]){6,}"),
)
_RUN_ENCODINGS = ("ascii", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")


def decode(data: bytes) -> tuple[str, str]:
    """Text of ``data`` and how it was read: a BOM, else the NUL pattern, else UTF-8 (lenient).

    Returns ``("", "binary")`` when ``data`` holds NUL bytes in no UTF-16/32 pattern.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data[len(bom) :].decode(encoding, "replace"), encoding
    if b"\x00" in data:
        guessed = _nul_pattern(data[:65536])
        if guessed:
            return data.decode(guessed, "replace"), guessed
        return "", "binary"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace"), "utf-8 (lenient)"


def _nul_pattern(sample: bytes) -> str | None:
    n = len(sample) - len(sample) % 4
    if n < 4:
        n = len(sample) - len(sample) % 2
        if n < 2:
            return None
    quarters = [sample[k:n:4] for k in range(4)]
    zero = [q.count(0) / max(len(q), 1) for q in quarters]
    if n % 4 == 0 and n >= 8:
        if zero[1] > 0.9 and zero[2] > 0.9 and zero[3] > 0.9 and zero[0] < 0.5:
            return "utf-32-le"
        if zero[0] > 0.9 and zero[1] > 0.9 and zero[2] > 0.9 and zero[3] < 0.5:
            return "utf-32-be"
    even, odd = sample[0:n:2], sample[1:n:2]
    z_even, z_odd = even.count(0) / max(len(even), 1), odd.count(0) / max(len(odd), 1)
    if z_odd > 0.6 and z_even < 0.2 and _textlike(even):
        return "utf-16-le"
    if z_even > 0.6 and z_odd < 0.2 and _textlike(odd):
        return "utf-16-be"
    return None


def _textlike(low_bytes: bytes) -> bool:
    """Most low bytes of UTF-16 text are not control characters."""
    controls = sum(1 for b in low_bytes if b < 0x20 and b not in (9, 10, 13))
    return controls <= len(low_bytes) // 10


def compressed(data: bytes) -> str | None:
    for magic, name in _COMPRESSED:
        if data.startswith(magic):
            return name
    return None


def strings_runs(data: bytes) -> tuple[list[str], list[int]]:
    """Printable runs (ASCII, UTF-16 and UTF-32, both byte orders, any alignment) of ``data``."""
    texts: list[str] = []
    numbers: list[int] = []
    for pattern, encoding in zip(_RUNS, _RUN_ENCODINGS, strict=True):
        line, pos = 1, 0  # counted incrementally: from 0 for every run was quadratic in the number of runs
        for m in pattern.finditer(data):
            line += data.count(b"\n", pos, m.start())
            pos = m.start()
            texts.append(m.group().decode(encoding, "replace"))
            numbers.append(line)
    return texts, numbers


_SPECIAL = (
    (stat.S_ISFIFO, "FIFO"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
)


def special_kind(mode: int) -> str:
    for test, name in _SPECIAL:
        if test(mode):
            return name
    return "special file"


def read_regular(path: str, max_bytes: int) -> tuple[bytes | None, str, str]:
    """Bytes of a regular file, never blocking: ``(data, "", "")`` or ``(None, reason, category)``."""
    try:
        return read_bounded(path, max_bytes), "", ""
    except BoundedReadError as exc:
        if exc.kind == "special":  # swapped after lstat
            return None, f"{special_kind(exc.mode)}: never opened for reading", "special"
        if exc.kind == "large":
            return None, f"larger than max_file_bytes ({exc.size} > {max_bytes} bytes)", "large"
        if exc.kind == "grew":
            return None, f"larger than max_file_bytes (grew past {max_bytes} bytes)", "large"
        error = exc.error
        return None, f"unreadable: {(error.strerror if error else None) or type(error).__name__}", "unreadable"


def read_untrusted(path: Path, what: str, max_bytes: int = 64 * 1024 * 1024) -> bytes:
    try:
        st = os.stat(path)
    except OSError:
        raise AisecInputError(f"{what} {str(path)!r} does not exist") from None
    if not stat.S_ISREG(st.st_mode):
        raise AisecInputError(f"{what} {str(path)!r} is not a regular file")
    data, reason, _ = read_regular(str(path), max_bytes)
    if data is None:
        raise AisecInputError(f"{what} {str(path)!r}: {reason}")
    return data
