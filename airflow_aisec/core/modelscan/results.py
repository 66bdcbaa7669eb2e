"""What a scan found: one :class:`FileScan` per file or archive member, with the globals it references."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

#: Formats that are uninspected (unknown: fail) unless allowed by ``allow_formats``: ``unknown``; HDF5 that is
#: neither a Keras model nor numeric weights; ``gguf``/``keras`` only when their parser is not installed
#: (then also an error). Kept as the names ``allow_formats`` accepts.
UNINSPECTED_FORMATS = ("gguf", "hdf5", "keras", "unknown")


@dataclass
class GlobalRef:
    module: str
    name: str
    opcode: str
    offset: int
    verdict: str  # safe | dangerous | unknown | ambiguous
    called: bool = False

    @property
    def qualname(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass(frozen=True)
class FormatIssue:
    """Something a parsed model format holds that can run code or reach outside the file (a finding)."""

    #: finding id (``policy.FORMAT_FINDINGS``)
    id: str
    severity: str
    title: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class FileScan:
    """Result for one file (or archive member)."""

    location: str
    format: str = "unknown"
    size: int = 0
    sha256: str = ""
    globals: list[GlobalRef] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    members: list[FileScan] = field(default_factory=list)
    opcodes: int = 0
    pickles: int = 0
    joblib_arrays: int = 0
    #: the format is recognised but not inspected, and the policy allows it (``allow_formats``)
    format_allowed: bool = False
    #: raw tensor storages inside a torch zip (data, never unpickled): counted, not scanned
    raw_members: int = 0
    #: a parser of the format read the stream (Keras, ONNX, GGUF): not "uninspected", even if malformed
    parsed: bool = False
    #: what a parsed non-pickle format holds that can run code or reach outside the file
    issues: list[FormatIssue] = field(default_factory=list)

    @property
    def uninspected(self) -> bool:
        return self.format in UNINSPECTED_FORMATS and not self.members and not self.parsed

    @property
    def verdict(self) -> str:
        all_leaves = list(leaves(self))
        if any(g.verdict != "safe" for leaf in all_leaves for g in leaf.globals) or any(
            leaf.issues for leaf in all_leaves
        ):
            return "unsafe"
        if any(leaf.errors for leaf in all_leaves):
            return "malformed"
        if any(leaf.uninspected and not leaf.format_allowed for leaf in all_leaves):
            return "unrecognised"
        return "safe"

    def iter_globals(self) -> Iterable[GlobalRef]:
        yield from self.globals
        for m in self.members:
            yield from m.iter_globals()

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "location": self.location,
            "format": self.format,
            "verdict": self.verdict,
            "size": self.size,
            "opcodes": self.opcodes,
            "pickles": self.pickles,
            "globals": sorted({g.qualname for g in self.globals}),
        }
        if self.sha256:
            data["sha256"] = self.sha256
        if self.errors:
            data["errors"] = self.errors
        if self.notes:
            data["notes"] = self.notes
        if self.issues:
            data["issues"] = [{"id": i.id, "severity": i.severity, "title": i.title} for i in self.issues]
        if self.raw_members:
            data["raw_tensor_members"] = self.raw_members
        if self.members:
            data["members"] = [m.to_dict() for m in self.members]
        return data


def leaves(scan: FileScan) -> Iterable[FileScan]:
    """``scan`` and every member below it (depth first)."""
    yield scan
    for m in scan.members:
        yield from leaves(m)
