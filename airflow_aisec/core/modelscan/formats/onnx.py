"""ONNX models: the protobuf is parsed (never run, external data never loaded).

Reported: operator domains outside the ONNX standard (a runtime needs a custom-operator library, i.e.
native code, to run them), external-data locations that leave the model directory (absolute paths,
``..``: a loader would read any file into a tensor), and tensors whose declared size is negative,
absurd, or disagrees with the bytes they hold.
"""

from __future__ import annotations

import re
from typing import Any

from airflow_aisec.core.modelscan.context import ScanContext
from airflow_aisec.core.modelscan.formats.base import FormatScanner, Sniffed, missing_library
from airflow_aisec.core.modelscan.policy import (
    F_ONNX_CUSTOM_DOMAIN,
    F_ONNX_EXTERNAL_DATA,
    F_ONNX_TENSOR,
    FORMAT_FINDINGS,
)
from airflow_aisec.core.modelscan.results import FileScan, FormatIssue

#: a protobuf message cannot be larger
MAX_ONNX_BYTES = 2 * 1024**3
#: the largest single tensor a model may declare
MAX_TENSOR_BYTES = 64 * 1024**3
#: domains whose operators every ONNX runtime implements itself (no custom-operator library)
STANDARD_DOMAINS = frozenset(
    {"", "ai.onnx", "ai.onnx.ml", "ai.onnx.training", "ai.onnx.preview.training", "com.microsoft"}
)
# TensorProto.DataType -> bytes per element (4-bit types: 1, an upper bound)
_ITEMSIZE = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 14: 8, 15: 16, 16: 2}
_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL
_ESCAPE = re.compile(r"(^[/\\]|^[A-Za-z]:|\x00|(^|[/\\])\.\.([/\\]|$)|^~|://)")
# AttributeProto types holding tensors / graphs
_A_TENSOR, _A_GRAPH, _A_SPARSE, _A_TENSORS, _A_GRAPHS, _A_SPARSES = 4, 5, 11, 9, 10, 12


class OnnxScanner(FormatScanner):
    """ONNX has no magic: a stream starting with the ``ir_version`` field is tried; it is ONNX only if
    it parses as a model with a graph and an opset import (otherwise the next scanner decides)."""

    name = "onnx"

    def matches(self, sniffed: Sniffed) -> bool:
        return sniffed.head[:1] == b"\x08"

    def scan(self, sniffed: Sniffed, scan: FileScan, ctx: ScanContext) -> bool:
        named_onnx = sniffed.name_hint.lower().endswith(".onnx")
        try:
            import onnx
        except ImportError:
            if named_onnx:
                missing_library(scan, "onnx", "onnx")
                return True
            return False
        if sniffed.size > MAX_ONNX_BYTES:
            return False
        model = onnx.ModelProto()
        try:
            model.ParseFromString(bytes(sniffed.buf))
        except Exception:  # any protobuf decode failure: not ONNX, the next scanner decides
            return False
        if model.ir_version <= 0 or not model.HasField("graph") or not len(model.opset_import):
            return False
        scan.format = "onnx"
        scan_onnx(model, scan)
        return True


def scan_onnx(model: Any, scan: FileScan) -> None:
    local = {f.domain for f in model.functions}
    domains: dict[str, set[str]] = {}
    for imp in model.opset_import:
        domains.setdefault(imp.domain, set())
    external: set[str] = set()
    tensors = 0
    for _where, node in _nodes(model):
        domains.setdefault(node.domain, set()).add(node.op_type)
    for where, tensor in _tensors(model):
        tensors += 1
        _check_tensor(tensor, where, scan, external)
    for domain in sorted(d for d in domains if d not in STANDARD_DOMAINS and d not in local):
        ops = sorted(domains[domain])
        scan.issues.append(
            FormatIssue(
                F_ONNX_CUSTOM_DOMAIN,
                FORMAT_FINDINGS[F_ONNX_CUSTOM_DOMAIN],
                f"ONNX custom operator domain {domain!r} ({', '.join(ops[:5]) or 'opset import only'}): "
                "runs only with a custom-operator library (native code)",
                {"domain": domain, "op_types": ops[:50]},
            )
        )
    note = f"ONNX ir_version {model.ir_version}, {tensors} tensor(s)"
    if external:
        note += f"; external data in {', '.join(sorted(external)[:10])} (not part of this file's scan)"
    scan.notes.append(note)


def _graphs(model: Any) -> list[tuple[str, Any]]:
    """The main graph and every subgraph (If/Loop/Scan bodies), iteratively."""
    out: list[tuple[str, Any]] = []
    stack: list[tuple[str, Any]] = [("graph", model.graph)]
    while stack:
        where, g = stack.pop()
        out.append((where, g))
        for node in g.node:
            for a in node.attribute:
                if a.type == _A_GRAPH:
                    stack.append((f"{where}/{node.name or node.op_type}.{a.name}", a.g))
                elif a.type == _A_GRAPHS:
                    stack.extend(
                        (f"{where}/{node.name or node.op_type}.{a.name}[{i}]", s) for i, s in enumerate(a.graphs)
                    )
    return out


def _nodes(model: Any) -> list[tuple[str, Any]]:
    out = [(w, n) for w, g in _graphs(model) for n in g.node]
    out += [(f"function {f.domain}.{f.name}", n) for f in model.functions for n in f.node]
    return out


def _tensors(model: Any) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for where, g in _graphs(model):
        out += [(f"{where} initializer {t.name!r}", t) for t in g.initializer]
        for s in g.sparse_initializer:
            out += [(f"{where} sparse initializer", s.values), (f"{where} sparse indices", s.indices)]
    for _where, node in _nodes(model):
        for a in node.attribute:
            at = f"{where} node {node.name or node.op_type!r} attribute {a.name!r}"
            if a.type == _A_TENSOR:
                out.append((at, a.t))
            elif a.type == _A_TENSORS:
                out += [(at, t) for t in a.tensors]
            elif a.type == _A_SPARSE:
                out += [(at, a.sparse_tensor.values), (at, a.sparse_tensor.indices)]
            elif a.type == _A_SPARSES:
                out += [(at, t) for s in a.sparse_tensors for t in (s.values, s.indices)]
    return out


def _issue(scan: FileScan, fid: str, title: str, details: dict[str, Any]) -> None:
    scan.issues.append(FormatIssue(fid, FORMAT_FINDINGS[fid], title, details))


def _check_tensor(t: Any, where: str, scan: FileScan, external: set[str]) -> None:
    dims = list(t.dims)
    if any(d < 0 for d in dims):
        _issue(scan, F_ONNX_TENSOR, f"ONNX tensor with a negative dimension {dims} ({where})", {"where": where})
        return
    numel = 1
    for d in dims:
        numel *= d
    declared = numel * _ITEMSIZE.get(t.data_type, 1)
    if declared > MAX_TENSOR_BYTES:
        _issue(
            scan,
            F_ONNX_TENSOR,
            f"ONNX tensor declares {declared} bytes, over the {MAX_TENSOR_BYTES}-byte bound ({where})",
            {"where": where, "dims": dims[:16]},
        )
        return
    if t.data_location == _EXTERNAL:
        _check_external(t, where, declared, scan, external)
    elif t.HasField("raw_data") and t.data_type in _ITEMSIZE and len(t.raw_data) != declared:
        _issue(
            scan,
            F_ONNX_TENSOR,
            f"ONNX tensor declares {declared} bytes but holds {len(t.raw_data)} ({where})",
            {"where": where, "dims": dims[:16]},
        )


def _check_external(t: Any, where: str, declared: int, scan: FileScan, external: set[str]) -> None:
    entries = {e.key: e.value for e in t.external_data}
    location = entries.get("location", "")
    if not location or _ESCAPE.search(location):
        _issue(
            scan,
            F_ONNX_EXTERNAL_DATA,
            f"ONNX external data location {location!r} leaves the model directory "
            "(absolute, '..', home or URL): a loader would read that file into a tensor",
            {"where": where, "location": location[:300]},
        )
        return
    external.add(location)
    for key in ("offset", "length"):
        value = entries.get(key)
        if value is not None and not (value.isascii() and value.isdigit()):
            _issue(
                scan,
                F_ONNX_EXTERNAL_DATA,
                f"ONNX external data {key} {value!r} is not a byte count ({where})",
                {"where": where},
            )
            return
    length = entries.get("length")
    if length is not None and t.data_type in _ITEMSIZE and int(length) != declared:
        _issue(
            scan,
            F_ONNX_TENSOR,
            f"ONNX external tensor declares {declared} bytes but its length is {length} ({where})",
            {"where": where},
        )
