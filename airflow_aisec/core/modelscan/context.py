"""State shared by every level of one file's scan: the policy, the bounds and what was spent of them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from airflow_aisec.core.modelscan.policy import Policy
from airflow_aisec.core.modelscan.results import FileScan

#: Default bounds (configurable per scan through ``**bounds``).
DEFAULT_MAX_DECOMPRESSED = 4 * 1024**3  # total over every nesting level of one scanned file
DEFAULT_MAX_ZIP_MEMBERS = 100_000
DEFAULT_MAX_DEPTH = 4  # archive/compression nesting
DEFAULT_MAX_OPCODES = 50_000_000  # per scanned file
DEFAULT_MAX_MARKS = 100_000  # nested MARKs inside one pickle
MAX_PICKLES_PER_STREAM = 64
BOUND_NAMES = frozenset({"max_decompressed", "max_zip_members", "max_depth", "max_opcodes", "max_marks"})


class Malformed(Exception):
    """The stream cannot be read on. ``certain``: every unpickler (C and pure Python) fails here too."""

    def __init__(self, message: str, *, certain: bool = True) -> None:
        super().__init__(message)
        self.certain = certain


class ScanBound(Exception):
    """A configured bound was exceeded (reported as an error naming the bound)."""


#: Scans a nested stream (archive member, decompressed content) into a sub-result:
#: ``(buf, scan, ctx, depth, name_hint)``.
NestedScan = Callable[[Any, FileScan, "ScanContext", int, str], None]


@dataclass
class ScanContext:
    policy: Policy
    #: how a container format scans what it holds (the engine's stream scan)
    recurse: NestedScan
    max_decompressed: int = DEFAULT_MAX_DECOMPRESSED
    max_zip_members: int = DEFAULT_MAX_ZIP_MEMBERS
    max_depth: int = DEFAULT_MAX_DEPTH
    max_opcodes: int = DEFAULT_MAX_OPCODES
    max_marks: int = DEFAULT_MAX_MARKS
    allow_formats: frozenset[str] = frozenset()
    ops: int = 0
    decompressed: int = 0
    members: int = 0

    def count_ops(self, n: int) -> None:
        self.ops += n
        if self.ops > self.max_opcodes:
            raise ScanBound(f"more than {self.max_opcodes} pickle opcodes (bound)")

    def spend(self, n: int) -> None:
        """Account ``n`` decompressed/extracted bytes against the total bound (all nesting levels)."""
        self.decompressed += n
        if self.decompressed > self.max_decompressed:
            raise ScanBound(
                f"decompressed/extracted content exceeds the {self.max_decompressed}-byte total bound "
                "(summed over every nesting level)"
            )

    def scan_nested(self, buf: Any, scan: FileScan, depth: int, name_hint: str) -> None:
        self.recurse(buf, scan, self, depth, name_hint)
