"""Reference profiles built in partitions (one task per partition) and merged into the single-pass profile.

Partition ``K/N`` of a table of ``R`` rows (``1 <= K <= N``) is the row range
``[floor((K-1) R / N), floor(K R / N))`` of the table in its stored order (a Parquet file's row groups in
order, a directory's files in path order as :mod:`pyarrow.dataset` lists them, a CSV's lines). The ``N``
ranges are disjoint and cover every row exactly once, whatever ``R`` and ``N``. Parquet data (a file
or a dataset of files, local or in object storage) is read row group by row group: a partition reads
only the row groups its range spans (memory about the partition's rows of one column, I/O about its
share). CSV and in-memory tables are read whole, one column at a time, and sliced.

A **part profile** keeps, per column, what merges exactly: a numeric column's sorted finite values and
its null / ``+inf`` / ``-inf`` counts; a categorical column's category counts and null count (every
category, uncapped: the cardinality rule is applied to the union). :func:`merge_part_profiles` sorts the
union of the runs and builds each column with the very code of the single-pass build
(:func:`~airflow_aisec.core.drift_profile.build.profile_sorted`,
:func:`~airflow_aisec.core.drift_profile.build.profile_counts`), so the merged profile is the
single-pass profile, byte for byte, digest included (given the same ``created_at``; the merge takes the
latest part's). Where the single pass stores a quantile grid (more than ``exact_max`` values) the parts
still hold sorted runs and the grid is built at the merge, from all the values: the same grid, the
same certified bound. The merge therefore holds one whole column in memory at a time, as the single
pass does.

A part profile is refused as a drift reference, and the merge refuses (exit 2) parts of different
sources (row count, schema), options or columns, a missing or repeated partition, a tampered part
(digest) or an overlap of row ranges.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pyarrow as pa

from airflow_aisec.core.drift_profile.build import (
    _select_columns,
    category_counts,
    classify,
    now_iso,
    profile_counts,
    profile_sorted,
    to_float64,
)
from airflow_aisec.core.drift_profile.grid import sorted_finite
from airflow_aisec.core.drift_profile.model import BuildOptions, ColumnProfile, Profile
from airflow_aisec.core.drift_profile.storage import FORMAT, load_profile
from airflow_aisec.core.tabular import ColumnSource, open_source
from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError

#: most partitions accepted (a guard against a typo such as ``1/1000000``).
MAX_PARTITIONS = 10_000


def parse_partition(spec: Any) -> tuple[int, int]:
    """``"K/N"`` (or a ``(K, N)`` pair) → ``(K, N)`` with ``1 <= K <= N <= MAX_PARTITIONS``."""
    try:
        if isinstance(spec, str):
            k_text, sep, n_text = spec.strip().partition("/")
            if not sep:
                raise ValueError
            k, n = int(k_text), int(n_text)
        else:
            k, n = (int(x) for x in spec)
    except (TypeError, ValueError):
        raise AisecInputError(f"partition must look like K/N (e.g. 2/4), not {spec!r}"[:200]) from None
    if not 1 <= k <= n <= MAX_PARTITIONS:
        raise AisecInputError(f"partition {k}/{n}: need 1 <= K <= N <= {MAX_PARTITIONS}")
    return k, n


def row_range(total: int, k: int, n: int) -> tuple[int, int]:
    """Rows ``[start, stop)`` of partition ``k`` of ``n`` over ``total`` rows."""
    return (k - 1) * total // n, k * total // n


def schema_fingerprint(schema: pa.Schema) -> str:
    """A digest of the column names and types (parts of one source agree on it)."""
    text = "\n".join(f"{f.name}\t{f.type}" for f in schema)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def partition_source(data: Any, k: int, n: int) -> tuple[ColumnSource, dict[str, Any]]:
    """The rows of partition ``k`` of ``n`` of ``data`` as a :class:`ColumnSource`, and its description.

    The description (``index``, ``count``, ``row_start``, ``row_stop``, ``source_rows``,
    ``schema_sha256``) is recorded in every partial result so that a merge can prove the parts tile one
    source.
    """
    source = data if isinstance(data, ColumnSource) else open_source(data)
    start, stop = row_range(source.num_rows, k, n)
    info = {
        "index": k,
        "count": n,
        "row_start": start,
        "row_stop": stop,
        "source_rows": source.num_rows,
        "schema_sha256": schema_fingerprint(source.schema),
    }
    return source.rows(start, stop), info


def _part_column(source: ColumnSource, name: str) -> ColumnProfile:
    """One column of a part profile: what merges exactly (sorted finite values / category counts)."""
    kind, family = classify(source.schema.field(name).type)
    base = {"kind": f"part-{kind}", "family": family, "status": "part", "n_rows": source.num_rows}
    if kind == "skipped":
        return ColumnProfile(name, {**base, "n_null": source.num_rows if family == "null" else 0})
    column = source.read_column(name)
    if kind == "categorical":
        counts, n_null = category_counts(column)
        return ColumnProfile(name, {**base, "n_null": n_null, "n_values": sum(counts.values()), "counts": counts})
    values = to_float64(column, family)
    del column
    finite, n_null, n_posinf, n_neginf = sorted_finite(values)
    meta = {**base, "n_null": n_null, "n_posinf": n_posinf, "n_neginf": n_neginf, "n_values": int(finite.size)}
    return ColumnProfile(name, meta, {"values": np.ascontiguousarray(finite)})


def build_part_profile(
    data: Any,
    partition: Any,
    *,
    columns: list[str] | None = None,
    options: BuildOptions | None = None,
    created_at: str | None = None,
) -> Profile:
    """The part profile of partition ``K/N`` of ``data`` (see the module docstring).

    :param partition: ``"K/N"`` or ``(K, N)``.
    :param options: the options of the merged profile (recorded; applied at the merge).
    """
    k, n = parse_partition(partition)
    options = options or BuildOptions()
    whole = data if isinstance(data, ColumnSource) else open_source(data)
    if whole.num_rows == 0:
        raise AisecInputError(f"reference data {whole.name} has no rows")
    names = _select_columns(whole, columns, "reference data")
    part, info = partition_source(data if not isinstance(data, ColumnSource) else whole, k, n)
    build = {
        "format": FORMAT,
        "source": whole.name,
        "n_rows": part.num_rows,
        "columns": names,
        "options": options.to_dict(),
        "created_at": created_at or now_iso(),
        "partition": info,
    }
    return Profile({name: _part_column(part, name) for name in names}, build)


def _consistent(parts: list[Profile]) -> dict[str, Any]:
    """Check that the parts tile one source exactly once; return the first part's partition record."""
    infos = []
    for prof in parts:
        info = prof.build.get("partition")
        if not isinstance(info, dict):
            raise AisecUndecidableError(f"{prof.path}: not a part profile (built without --partition)")
        infos.append(info)
    first, head = parts[0].build, infos[0]
    for prof, info in zip(parts, infos, strict=True):
        for key in ("source", "columns", "options", "format"):
            if prof.build.get(key) != first.get(key):
                raise AisecUndecidableError(
                    f"{prof.path}: part of another profile ({key} differs from {parts[0].path})"
                )
        for key in ("count", "source_rows", "schema_sha256"):
            if info.get(key) != head.get(key):
                raise AisecUndecidableError(f"{prof.path}: part of another source ({key} differs from {parts[0].path})")
    count, total = int(head["count"]), int(head["source_rows"])
    indexes = sorted(int(i["index"]) for i in infos)
    if indexes != list(range(1, count + 1)):
        missing = sorted(set(range(1, count + 1)) - set(indexes))
        repeated = sorted({i for i in indexes if indexes.count(i) > 1})
        raise AisecUndecidableError(
            f"partitions do not tile the source: {count} expected, missing {missing[:10]}, repeated {repeated[:10]}"
        )
    for prof, info in zip(parts, infos, strict=True):
        k = int(info["index"])
        expected = row_range(total, k, count)
        if (info.get("row_start"), info.get("row_stop")) != expected or prof.n_rows != expected[1] - expected[0]:
            raise AisecUndecidableError(f"{prof.path}: partition {k}/{count} does not cover rows {expected}")
    return head


def _merge_column(name: str, cols: list[ColumnProfile], n_rows: int, options: BuildOptions) -> ColumnProfile:
    metas = [c.meta for c in cols]
    kinds = {m.get("kind") for m in metas} | {"?" + str(m.get("family")) for m in metas}
    if len(kinds) != 2:
        raise AisecUndecidableError(f"column {name!r}: the parts disagree on its type")
    kind, family = str(metas[0]["kind"]), str(metas[0]["family"])
    if sum(int(m["n_rows"]) for m in metas) != n_rows:
        raise AisecUndecidableError(f"column {name!r}: the parts' row counts do not add up to {n_rows}")
    n_null = sum(int(m["n_null"]) for m in metas)
    if kind == "part-skipped":
        from airflow_aisec.core.drift_profile.build import _skipped

        reason = "all values null (null type)" if family == "null" else f"unsupported type {family}"
        return _skipped(name, n_rows, n_null, family, reason)
    if kind == "part-categorical":
        counts: dict[str, int] = {}
        for m in metas:
            for key, value in m["counts"].items():
                counts[key] = counts.get(key, 0) + int(value)
        return profile_counts(name, counts, n_null, n_rows, family, options)
    if kind != "part-numeric":
        raise AisecUndecidableError(f"column {name!r}: unknown part kind {kind!r}")
    runs = [np.asarray(c.arrays["values"]) for c in cols]
    for run in runs:
        if run.size > 1 and bool((run[1:] < run[:-1]).any()) or not np.isfinite(run).all():
            raise AisecUndecidableError(f"column {name!r}: a part's values are not sorted finite numbers")
    finite = np.sort(np.concatenate(runs)) if runs else np.empty(0)
    missing = (n_null, sum(int(m["n_posinf"]) for m in metas), sum(int(m["n_neginf"]) for m in metas))
    return profile_sorted(name, finite, n_rows, missing, family, options)


def merge_part_profiles(parts: list[Any], *, created_at: str | None = None) -> Profile:
    """Merge the part profiles of all ``N`` partitions (paths or loaded) into the single-pass profile.

    :param created_at: recorded build time (default: the latest part's).
    :raises AisecUndecidableError: a tampered part, parts of different sources or builds, a missing,
        repeated or overlapping partition.
    """
    if not parts:
        raise AisecInputError("no part profiles to merge")
    loaded = [p if isinstance(p, Profile) else load_profile(p) for p in parts]
    head = _consistent(loaded)
    first = loaded[0].build
    options = BuildOptions(**first["options"])
    total = int(head["source_rows"])
    names = list(first["columns"])
    for prof in loaded:
        if list(prof.columns) != names:
            raise AisecUndecidableError(f"{prof.path}: its columns differ from its build record")
    columns = {name: _merge_column(name, [p.columns[name] for p in loaded], total, options) for name in names}
    build = {
        "format": FORMAT,
        "source": first["source"],
        "n_rows": total,
        "columns": names,
        "options": options.to_dict(),
        "created_at": created_at or max(str(p.build.get("created_at")) for p in loaded),
    }
    return Profile(columns, build)
