"""Validation of a drift reference profile header (untrusted JSON: every field, count and array bound)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from airflow_aisec.core.drift_profile.grid import N_QUANTILES
from airflow_aisec.exceptions import AisecInputError

#: largest profile header accepted (200 categories x thousands of columns fits in a few MiB).
MAX_HEADER_BYTES = 64 * 1024 * 1024
#: largest count accepted in a profile (2**53: exactly representable as a float).
MAX_COUNT = 2**53
_DTYPES = {"<f8": np.dtype("<f8"), "<i8": np.dtype("<i8")}
_NUMERIC_FAMILIES = ("integer", "float", "decimal", "datetime")
_CATEGORICAL_FAMILIES = ("dictionary", "boolean", "string")


def _bad(path: str, where: str, what: str) -> AisecInputError:
    return AisecInputError(f"reference profile {path}: {where}: {what}")


def _count(meta: Mapping[str, Any], key: str, path: str, where: str, *, required: bool = True) -> int:
    value = meta.get(key, None if required else 0)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        raise _bad(path, f"{where}.{key}", f"expected a count in [0, 2**53], got {value!r}"[:200])
    return value


def _number(value: Any, path: str, where: str, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _bad(path, where, f"expected a finite number, got {value!r}"[:200])


def _counts_map(value: Any, path: str, where: str) -> int:
    if not isinstance(value, dict):
        raise _bad(path, where, f"expected an object of counts, got {type(value).__name__}")
    total = 0
    for key in value:
        total += _count(value, key, path, where)
    return total


def validate_header(header: dict[str, Any], path: str) -> None:
    """Check every field the drift engine reads from a profile header: types, ranges, consistency.

    A profile is untrusted input unless its digest is pinned: a wrong type, a missing field, an array
    that does not match its column, a duplicate column or an absurd count is an
    :class:`AisecInputError` naming the field (exit 2), never a crash or a silently skipped feature.
    """
    for key, types in (("build", dict), ("columns", list), ("arrays", dict)):
        if not isinstance(header.get(key), types):
            raise _bad(path, key, f"expected {'an object' if types is dict else 'an array'}")
    _count(header, "payload_bytes", path, "header")
    specs = header["arrays"]
    for ref, spec in specs.items():
        if not isinstance(spec, dict) or not isinstance(spec.get("dtype"), str) or spec["dtype"] not in _DTYPES:
            raise _bad(path, f"arrays.{ref}", "expected {offset, dtype <f8|<i8, length}")
        _count(spec, "offset", path, f"arrays.{ref}")
        _count(spec, "length", path, f"arrays.{ref}")
    seen: set[str] = set()
    for i, entry in enumerate(header["columns"]):
        where = f"columns[{i}]"
        if not isinstance(entry, dict) or set(entry) != {"name", "meta", "arrays"}:
            raise _bad(path, where, "expected exactly {name, meta, arrays}")
        name, meta, arrays = entry["name"], entry["meta"], entry["arrays"]
        if not isinstance(name, str) or not name:
            raise _bad(path, f"{where}.name", "expected a non-empty string")
        if name in seen:
            raise _bad(path, f"{where}.name", f"duplicate column {name!r}")
        seen.add(name)
        where = f"column {name!r}"
        if not isinstance(meta, dict) or not isinstance(arrays, dict):
            raise _bad(path, where, "meta and arrays must be objects")
        for key, ref in arrays.items():
            if not isinstance(ref, str) or ref not in specs:
                raise _bad(path, f"{where}.arrays.{key}", "names no array of the payload")
        lengths = {key: specs[ref]["length"] for key, ref in arrays.items()}
        dtypes = {k: specs[r]["dtype"] for k, r in arrays.items()}
        is_part = isinstance(meta.get("kind"), str) and meta["kind"].startswith("part-")
        if is_part != ("partition" in header["build"]):
            raise _bad(path, where, "part columns belong to part profiles (built with a partition) only")
        if is_part:
            _validate_part_meta(meta, lengths, dtypes, path, where)
        else:
            _validate_meta(meta, lengths, dtypes, path, where)


def _validate_part_meta(
    meta: dict[str, Any], lengths: dict[str, int], dtypes: dict[str, str], path: str, where: str
) -> None:
    """A column of a part profile: counts that add up, and the sorted values of a numeric column."""
    kind = meta["kind"]
    n_rows = _count(meta, "n_rows", path, where)
    n_null = _count(meta, "n_null", path, where)
    if not isinstance(meta.get("family"), str):
        raise _bad(path, f"{where}.family", "expected a string")
    if kind == "part-skipped":
        need: dict[str, str] = {}
    elif kind == "part-categorical":
        need = {}
        if _counts_map(meta.get("counts"), path, f"{where}.counts") + n_null != n_rows:
            raise _bad(path, where, "category counts and nulls do not add up to n_rows")
    elif kind == "part-numeric":
        need = {"values": "<f8"}
        n_values = _count(meta, "n_values", path, where)
        n_inf = _count(meta, "n_posinf", path, where) + _count(meta, "n_neginf", path, where)
        if n_values + n_null + n_inf != n_rows or lengths.get("values") != n_values:
            raise _bad(path, where, "stored values and counts do not add up to n_rows")
    else:
        raise _bad(path, f"{where}.kind", f"unknown part column kind {kind!r}"[:200])
    if dtypes != need:
        raise _bad(path, f"{where}.arrays", f"expected arrays {sorted(need)}")


def _validate_meta(
    meta: dict[str, Any], lengths: dict[str, int], dtypes: dict[str, str], path: str, where: str
) -> None:
    kind, status = meta.get("kind"), meta.get("status")
    n_rows = _count(meta, "n_rows", path, where)
    if kind == "skipped":
        if status != "skipped" or not isinstance(meta.get("reason"), str):
            raise _bad(path, where, "a skipped column needs status 'skipped' and a reason")
        return
    if status not in ("ok", "derived") or not isinstance(meta.get("reason", ""), str):
        raise _bad(path, f"{where}.status", f"expected 'ok' or 'derived', got {status!r}"[:200])
    n_null = _count(meta, "n_null", path, where)
    n_values = _count(meta, "n_values", path, where)
    if kind == "categorical":
        if meta.get("family") not in _CATEGORICAL_FAMILIES or meta.get("method") != "chi2":
            raise _bad(path, where, "categorical column needs a known family and method 'chi2'")
        total = _counts_map(meta.get("counts"), path, f"{where}.counts")
        if not meta["counts"] or total != n_values or n_values + n_null != n_rows:
            raise _bad(path, where, "category counts do not add up to n_values / n_rows")
        return
    if kind != "numeric":
        raise _bad(path, f"{where}.kind", f"expected numeric, categorical or skipped, got {kind!r}"[:200])
    if meta.get("family") not in _NUMERIC_FAMILIES or meta.get("method") not in ("ks", "chi2"):
        raise _bad(path, where, "numeric column needs a known family and method 'ks' or 'chi2'")
    n_inf = _count(meta, "n_posinf", path, where) + _count(meta, "n_neginf", path, where)
    if n_values < 1 or n_values + n_null + n_inf != n_rows:
        raise _bad(path, where, "n_values + n_null + n_posinf + n_neginf must equal n_rows (n_values >= 1)")
    for key in ("min", "max", "mean"):
        _number(meta.get(key), path, f"{where}.{key}")
    lo, hi = meta["min"], meta["max"]
    slack = 1e-9 * max(abs(lo), abs(hi))  # the mean is a rounded float sum
    if not (lo <= hi and lo - slack <= meta["mean"] <= hi + slack):
        raise _bad(path, where, "min <= mean <= max does not hold")
    _number(meta.get("std"), path, f"{where}.std", optional=True)
    edges, bins = meta.get("bin_edges"), meta.get("bin_counts")
    if not isinstance(edges, list) or not isinstance(bins, list) or len(bins) != len(edges) + 1:
        raise _bad(path, where, "bin_edges / bin_counts missing or of mismatched lengths")
    for j, edge in enumerate(edges):
        _number(edge, path, f"{where}.bin_edges[{j}]")
    if any(b < a for a, b in zip(edges, edges[1:], strict=False)):
        raise _bad(path, f"{where}.bin_edges", "edges are not sorted")
    if sum(_count({"c": c}, "c", path, f"{where}.bin_counts") for c in bins) != n_values:
        raise _bad(path, where, "bin_counts do not add up to n_values")
    if not isinstance(meta.get("constant"), bool):
        raise _bad(path, f"{where}.constant", "expected a boolean")
    counts = meta.get("value_counts")
    if counts is not None and _counts_map(counts, path, f"{where}.value_counts") != n_values:
        raise _bad(path, where, "value_counts do not add up to n_values")
    if meta["constant"] and (counts is None or len(counts) != 1):
        raise _bad(path, where, "a constant column needs exactly one value count")
    if counts is not None:
        for key in counts:
            try:
                float(key)
            except ValueError:
                raise _bad(path, f"{where}.value_counts", f"key {key[:40]!r} is not a number") from None
    need = {"quantiles": "<f8"}
    storage = meta.get("storage")
    if storage == "exact":
        need["values"] = "<f8"
    elif storage == "grid":
        need |= {"knots": "<f8", "lt": "<i8", "le": "<i8"}
    else:
        raise _bad(path, f"{where}.storage", f"expected 'exact' or 'grid', got {storage!r}"[:200])
    if dtypes != need:
        raise _bad(path, f"{where}.arrays", f"expected arrays {sorted(need)} with dtypes {need}")
    if lengths["quantiles"] != N_QUANTILES:
        raise _bad(path, f"{where}.arrays", f"quantiles must hold {N_QUANTILES} values")
    if storage == "exact" and lengths["values"] != n_values:
        raise _bad(path, f"{where}.arrays", "stored values do not match n_values")
    if storage == "grid" and not (lengths["knots"] == lengths["lt"] == lengths["le"] >= 1):
        raise _bad(path, f"{where}.arrays", "grid knots / ranks of different lengths")
