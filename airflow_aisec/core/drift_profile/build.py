"""Building a drift reference profile from reference data, column by column (Arrow types to numpy)."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pyarrow as pa

from airflow_aisec.core.drift_profile.grid import (
    N_BINS,
    discrete_counts,
    positive_zeros,
    quantile_grid,
    rank_grid,
    sorted_finite,
    sorted_quantiles,
)
from airflow_aisec.core.drift_profile.model import BuildOptions, ColumnProfile, Profile
from airflow_aisec.core.drift_profile.storage import FORMAT
from airflow_aisec.core.tabular import ColumnSource, open_source
from airflow_aisec.exceptions import AisecInputError
from airflow_aisec.utils.lazy import lazy_import
from airflow_aisec.utils.progress import Progress

log = logging.getLogger(__name__)


def classify(arrow_type: pa.DataType) -> tuple[str, str]:
    """Map an Arrow type to ``(kind, family)``: kind is numeric | categorical | skipped."""
    t = pa.types
    if t.is_dictionary(arrow_type):
        return "categorical", "dictionary"
    if t.is_boolean(arrow_type):
        return "categorical", "boolean"
    if (
        t.is_string(arrow_type)
        or t.is_large_string(arrow_type)
        or getattr(t, "is_string_view", lambda _: False)(arrow_type)
    ):
        return "categorical", "string"
    if t.is_integer(arrow_type):
        return "numeric", "integer"
    if t.is_floating(arrow_type):
        return "numeric", "float"
    if t.is_decimal(arrow_type):
        return "numeric", "decimal"
    if t.is_timestamp(arrow_type) or t.is_date(arrow_type) or t.is_time(arrow_type) or t.is_duration(arrow_type):
        return "numeric", "datetime"
    if t.is_null(arrow_type):
        return "skipped", "null"
    return "skipped", str(arrow_type)


def to_float64(column: pa.ChunkedArray | pa.Array, family: str) -> np.ndarray:
    """Numeric Arrow data → float64 numpy array; nulls become NaN; datetimes become epoch seconds.

    A float64 column without nulls needs no ``pyarrow.compute`` (importing it costs ~0.1 s of a process).
    """
    arr = column
    scale = 1.0
    if family == "datetime":
        t = arr.type
        if pa.types.is_date(t):
            arr = arr.cast(pa.timestamp("s")).cast(pa.timestamp("us"))
        elif pa.types.is_timestamp(t):
            arr = arr.cast(pa.timestamp("us", tz=t.tz), safe=False)
        elif pa.types.is_time(t):
            arr = arr.cast(pa.time64("us"))
        elif pa.types.is_duration(t):
            arr = arr.cast(pa.duration("us"))
        arr = arr.cast(pa.int64())
        scale = 1e-6
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if not pa.types.is_float64(arr.type):
        arr = lazy_import("pyarrow.compute").cast(arr, pa.float64(), safe=False)
    if arr.null_count:
        arr = lazy_import("pyarrow.compute").fill_null(arr, np.nan)
    # a view of the Arrow buffer: pyarrow's ``to_numpy`` goes through its pandas shim and imports
    # pandas (~0.4 s of a whole ``aisec drift`` process) for a conversion that needs no copy
    data = arr.buffers()[1]
    out = np.frombuffer(data, dtype=np.float64, count=arr.offset + len(arr))[arr.offset :] if len(arr) else np.empty(0)
    if scale != 1.0:
        out = out * scale
    return np.asarray(out, dtype=np.float64)


def category_counts(column: pa.ChunkedArray | pa.Array) -> tuple[dict[str, int], int]:
    """Counts of each non-null category (as strings) and the null count."""
    pc = lazy_import("pyarrow.compute")

    arr = column
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = arr.cast(pa.string())
    n_null = int(arr.null_count)
    counts: dict[str, int] = {}
    for item in pc.value_counts(arr).to_pylist():
        if item["values"] is not None:
            counts[str(item["values"])] = int(item["counts"])
    return counts, n_null


def _skipped(name: str, n_rows: int, n_null: int, family: str, reason: str) -> ColumnProfile:
    return ColumnProfile(
        name,
        {
            "kind": "skipped",
            "family": family,
            "status": "skipped",
            "reason": reason,
            "n_rows": n_rows,
            "n_null": n_null,
        },
    )


def profile_numeric(name: str, values: np.ndarray, family: str, options: BuildOptions) -> ColumnProfile:
    """Profile one numeric column given as float64 (NaN = null)."""
    finite, n_null, n_posinf, n_neginf = sorted_finite(values)
    return profile_sorted(name, finite, int(values.size), (n_null, n_posinf, n_neginf), family, options)


def profile_sorted(
    name: str, finite: np.ndarray, n_rows: int, missing: tuple[int, int, int], family: str, options: BuildOptions
) -> ColumnProfile:
    """Profile one numeric column from its **sorted** finite values (a private, writable copy) and the
    counts ``missing = (n_null, n_posinf, n_neginf)``; merging partition profiles ends here too.

    ``-0.0`` is stored as ``0.0`` (:func:`~airflow_aisec.core.drift_profile.grid.positive_zeros`).
    """
    n_null, n_posinf, n_neginf = missing
    positive_zeros(finite)
    if finite.size == 0:
        reason = "empty column" if n_rows == 0 else "no finite values in reference (all null/NaN/inf)"
        col = _skipped(name, n_rows, n_null, family, reason)
        col.meta.update(n_posinf=n_posinf, n_neginf=n_neginf)
        return col
    n = int(finite.size)
    meta: dict[str, Any] = {
        "kind": "numeric",
        "family": family,
        "status": "derived" if family in ("datetime", "decimal") else "ok",
        "reason": {"datetime": "datetime converted to epoch seconds", "decimal": "decimal converted to float64"}.get(
            family, ""
        ),
        "n_rows": n_rows,
        "n_null": n_null,
        "n_posinf": n_posinf,
        "n_neginf": n_neginf,
        "n_values": n,
        "min": float(finite[0]),
        "max": float(finite[-1]),
        "mean": float(finite.mean()),
        "std": float(finite.std()),
    }
    meta["constant"] = bool(finite[0] == finite[-1])
    counts = discrete_counts(finite, options.max_categories)
    meta["value_counts"] = counts
    meta["n_distinct"] = None if counts is None else len(counts)
    if meta["constant"]:
        meta["method"] = "chi2"
        meta["status"] = "derived"
        meta["reason"] = "constant in reference: tested as categories (value vs other)"
    elif family == "integer" and counts is not None and len(counts) <= options.max_discrete:
        meta["method"] = "chi2"
    else:
        meta["method"] = "ks"
    # PSI / JS bins on reference deciles (interior edges, de-duplicated)
    edges = np.unique(sorted_quantiles(finite, np.linspace(0, 1, N_BINS + 1)[1:-1]))
    meta["bin_edges"] = [float(e) for e in edges]
    meta["bin_counts"] = np.diff(np.concatenate(([0], np.searchsorted(finite, edges, "right"), [n]))).tolist()
    arrays = {"quantiles": quantile_grid(finite)}
    if n <= options.exact_max:
        meta["storage"] = "exact"
        meta["ks_error_bound"] = 0.0
        arrays["values"] = finite
    else:
        knots, lt, le, bound = rank_grid(finite, options.grid_size)
        meta["storage"] = "grid"
        meta["ks_error_bound"] = bound
        arrays.update(knots=knots, lt=lt, le=le)
    return ColumnProfile(name, meta, arrays)


def profile_categorical(name: str, column: pa.ChunkedArray, family: str, options: BuildOptions) -> ColumnProfile:
    counts, n_null = category_counts(column)
    return profile_counts(name, counts, n_null, len(column), family, options)


def profile_counts(
    name: str, counts: dict[str, int], n_null: int, n_rows: int, family: str, options: BuildOptions
) -> ColumnProfile:
    """Profile one categorical column from its category counts (merging partition profiles ends here too)."""
    if not counts:
        return _skipped(
            name, n_rows, n_null, family, "empty column" if n_rows == 0 else "no non-null values in reference"
        )
    if len(counts) > options.max_categories:
        return _skipped(
            name,
            n_rows,
            n_null,
            family,
            f"high cardinality ({len(counts)} distinct > max_categories={options.max_categories}; likely an identifier)",
        )
    return ColumnProfile(
        name,
        {
            "kind": "categorical",
            "family": family,
            "status": "ok",
            "reason": "",
            "n_rows": n_rows,
            "n_null": n_null,
            "n_values": int(sum(counts.values())),
            "counts": counts,
            "constant": len(counts) == 1,
            "method": "chi2",
        },
    )


def profile_column(source: ColumnSource, name: str, options: BuildOptions) -> ColumnProfile:
    """Read and profile one column of ``source``."""
    kind, family = classify(source.schema.field(name).type)
    if kind == "skipped":
        reason = "all values null (null type)" if family == "null" else f"unsupported type {family}"
        return _skipped(name, source.num_rows, source.num_rows if family == "null" else 0, family, reason)
    column = source.read_column(name)
    if kind == "categorical":
        col = profile_categorical(name, column, family, options)
        if name in source.coerced and col.meta["status"] != "skipped":
            col.meta.update(status="derived", reason=source.coerced[name])
        return col
    values = to_float64(column, family)
    del column
    return profile_numeric(name, values, family, options)


def build_profile(
    data: Any,
    *,
    columns: list[str] | None = None,
    options: BuildOptions | None = None,
    source_name: str | None = None,
    created_at: str | None = None,
) -> Profile:
    """Build a :class:`Profile` from reference ``data`` (path/URI, DataFrame or Table), column by column.

    :param columns: restrict to these columns (default: all). A listed column missing from the data is
        an :class:`AisecInputError`.
    :param created_at: the build time recorded in the profile (ISO 8601, default now); part of the
        digest, so two builds of the same data with the same ``created_at`` have the same digest.
    :raises AisecInputError: unreadable data, or a reference with no rows.
    """
    options = options or BuildOptions()
    source = data if isinstance(data, ColumnSource) else open_source(data, name=source_name)
    if source.num_rows == 0:
        raise AisecInputError(f"reference data {source.name} has no rows")
    names = _select_columns(source, columns, "reference data")
    progress = Progress("profile build: columns", len(names), unit="columns", logger=log)
    profile_columns = {}
    for name in names:
        profile_columns[name] = profile_column(source, name, options)
        progress.advance()
    progress.finish(min_elapsed=5.0)
    build = {
        "format": FORMAT,
        "source": source.name,
        "n_rows": source.num_rows,
        "columns": names,
        "options": options.to_dict(),
        "created_at": created_at or now_iso(),
    }
    return Profile(profile_columns, build)


def now_iso() -> str:
    """The current UTC time as recorded in a profile (seconds, ``Z``)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _select_columns(source: ColumnSource, columns: list[str] | None, what: str) -> list[str]:
    if columns is None:
        return source.columns
    if isinstance(columns, (str, bytes)) or not columns or len(set(columns)) != len(list(columns)):
        raise AisecInputError(f"columns must be a non-empty list of distinct column names, not {columns!r}"[:300])
    missing = [c for c in columns if c not in source.columns]
    if missing:
        raise AisecInputError(f"{what} {source.name} has no column(s) {missing}")
    return list(columns)
