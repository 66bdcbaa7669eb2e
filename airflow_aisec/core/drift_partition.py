"""Drift of a partitioned window: per-partition sufficient statistics, merged into the whole-window test.

Each task tests partition ``K/N`` of the window (rows as in
:mod:`airflow_aisec.core.drift_profile.partition`) with :func:`partial_drift` and writes a small JSON
document; :func:`merge_partials` adds them up and takes the decision. What each partition keeps, per
feature, is additive, so the merged result is the whole-window result:

* row, null, ``±inf`` and finite counts (null-rate test, empty-window rule);
* the counts in the reference's decile bins (PSI, its p-value, Jensen-Shannon: identical);
* KS: the window's counts in the cells of the reference's distinct values (exact profile) or grid
  knots (grid profile): the open interval below each value and the value itself. Cumulated over cells
  they give ``#C < u`` and ``#C <= u`` at every reference point ``u``, from which the statistic is
  computed exactly (:func:`airflow_aisec.core.stats.ks_statistic_from_counts`: bit-identical to
  ``scipy.stats.ks_2samp``; for a grid profile the same certified bounds as a whole-window test), and
  the p-value by the same function as a whole-window test;
* chi-square: value or category counts.

Not additive, hence not reported for a partitioned window: the Wasserstein effect size (it needs the
window's order statistics; ``wasserstein`` cannot be the test method of a partitioned run). The mean
of the window is the sum of the partitions' sums divided by the count: equal to the whole-window mean
up to float rounding (relative ~1e-15), and never used in a decision.

Each partial records the profile's digest, the configuration, the partition and the window's row count
and schema, plus a SHA-256 of its content. The merge refuses (exit 2) parts of different profiles,
configurations or windows, a missing, repeated or overlapping partition, and a part whose content does
not match its digest (corruption or a careless edit; a part is not signed: keep parts where only the
pipeline writes, as its other intermediate files).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import math
import zlib
from typing import Any

import numpy as np

from airflow_aisec.core import stats
from airflow_aisec.core.drift import (
    TAGS,
    DriftConfig,
    _fill_report,
    _null_signal,
    categorical_from_counts,
    chi2_result,
    decide,
    effect_result,
    feature_method,
    finish_feature,
)
from airflow_aisec.core.drift_profile import (
    ColumnProfile,
    Profile,
    category_counts,
    open_profile,
    positive_zeros,
    sorted_finite,
)
from airflow_aisec.core.drift_profile.build import to_float64
from airflow_aisec.core.drift_profile.partition import parse_partition, partition_source, row_range
from airflow_aisec.core.tabular import ColumnSource
from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError
from airflow_aisec.report import Report

PART_FORMAT = "aisec.drift-part/v1"
#: a partial counts its rows at every reference point of a KS feature (distinct values or grid knots):
#: with more points than this share of the partition's rows, that counting costs about as much as the
#: partition's own work (measured: ~140 ns a point against ~33 ns a row on one VM, ~80 against ~11 ns on
#: another), and the split stops paying.
ADVICE_POINTS_PER_ROW = 0.1

log = logging.getLogger(__name__)


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


#: narrowest little-endian integer type first: cell gaps and counts are mostly tiny
_PACK_TYPES = ("<u1", "<u2", "<u4", "<i8")


def _pack(arr: np.ndarray) -> str:
    """A non-negative integer array as ``"<dtype>:" + base64(zlib(bytes))`` in its narrowest type (a
    partition's KS cells are millions of small numbers: 8-byte integers made packing and merging slow)."""
    arr = np.asarray(arr, dtype=np.int64)
    top = int(arr.max()) if arr.size else 0
    if arr.size and int(arr.min()) < 0:
        dtype = "<i8"
    else:
        dtype = next(t for t in _PACK_TYPES if t == "<i8" or top <= np.iinfo(t).max)
    raw = np.ascontiguousarray(arr, dtype=dtype).tobytes()
    return f"{dtype}:" + base64.b64encode(zlib.compress(raw, 1)).decode()


def _unpack(text: Any, where: str, dtype: Any = np.int64) -> np.ndarray:
    """The array :func:`_pack` wrote (also the earlier form: bare base64 of 8-byte integers), as ``dtype``
    (``None``: a read-only array of the stored type, without the conversion)."""
    stored, sep, body = str(text).partition(":")
    if not sep:
        stored, body = "<i8", stored
    if stored not in _PACK_TYPES:
        raise AisecUndecidableError(f"{where}: unreadable array (type {stored[:10]!r})")
    try:
        raw = zlib.decompress(base64.b64decode(body, validate=True))
    except (ValueError, zlib.error) as exc:
        raise AisecUndecidableError(f"{where}: unreadable array ({exc})") from exc
    width = np.dtype(stored).itemsize
    if len(raw) % width:
        raise AisecUndecidableError(f"{where}: unreadable array (length)")
    arr = np.frombuffer(raw, dtype=stored)
    return arr if dtype is None else arr.astype(dtype)


def ks_values(ref: ColumnProfile) -> np.ndarray:
    """The sorted distinct reference points the KS counts are kept at (grid knots or distinct values)."""
    if ref.meta.get("storage") == "grid":
        return np.asarray(ref.arrays["knots"])
    values = np.asarray(ref.arrays["values"])
    if values.size < 2:
        return values
    distinct = values[1:] != values[:-1]
    return values if bool(distinct.all()) else values[np.concatenate(([True], distinct))]


def ks_points(ref: ColumnProfile) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(u, #R < u, #R <= u)`` at the reference points the KS counts are kept at (distinct values or knots)."""
    if ref.meta.get("storage") == "grid":
        return np.asarray(ref.arrays["knots"]), np.asarray(ref.arrays["lt"]), np.asarray(ref.arrays["le"])
    values = np.asarray(ref.arrays["values"])
    distinct = values[1:] != values[:-1]
    if bool(distinct.all()):  # continuous data: every value is a point
        ranks = np.arange(values.size, dtype=np.int64)
        return values, ranks, ranks + 1
    first = np.flatnonzero(np.concatenate(([True], distinct)))
    lt = first.astype(np.int64)
    le = np.concatenate((first[1:], [values.size])).astype(np.int64)
    return values[first], lt, le


def _dense_cells(u: np.ndarray, finite: np.ndarray) -> np.ndarray:
    """Counts of sorted ``finite`` in cells ``2i`` (below ``u_i``, above ``u_{i-1}``), ``2i+1`` (= ``u_i``)
    and ``2d`` (above the last point), for the ``d`` sorted distinct points ``u``.

    One search of the reference points in the sorted partition (a second only for points present in
    it): ``O(d log m)``, cheaper than placing each of the ``m`` values among the points.
    """
    size = finite.size
    lt = np.searchsorted(finite, u, "left")
    le = lt.copy()
    if size:
        present = (lt < size) & (finite[np.minimum(lt, size - 1)] == u)
        if present.any():
            le[present] = np.searchsorted(finite, u[present], "right")
    dense = np.empty(2 * u.size + 1, dtype=np.int64)
    dense[0:-1:2] = lt
    dense[2:-1:2] -= le[:-1]
    dense[1::2] = le - lt
    dense[-1] = size - (int(le[-1]) if u.size else 0)
    return dense


def _numeric_stats(ref: ColumnProfile, values: np.ndarray, method: str) -> dict[str, Any]:
    finite, _, n_posinf, n_neginf = sorted_finite(values)
    positive_zeros(finite)
    edges = np.asarray(ref.meta["bin_edges"], dtype=float)
    bins = np.diff(np.concatenate(([0], np.searchsorted(finite, edges, "right"), [finite.size])))
    out: dict[str, Any] = {
        "n_rows": int(values.size),
        "n_finite": int(finite.size),
        "n_posinf": n_posinf,
        "n_neginf": n_neginf,
        "sum": float(finite.sum()),
        "bins": [int(b) for b in bins],
    }
    if method == "ks":
        points = ks_values(ref)
        out["ks_dense"] = _pack(_dense_cells(points, finite))
        out["ks_points"] = int(points.size)
    elif method == "chi2" and ref.meta.get("value_counts") is not None:
        uniq, cnt = np.unique(finite, return_counts=True)
        out["value_counts"] = {repr(float(u)): int(c) for u, c in zip(uniq, cnt, strict=True)}
    return out


def _feature_stats(ref: ColumnProfile, source: ColumnSource, config: DriftConfig) -> dict[str, Any]:
    early, method, cur_kind = feature_method(ref, source, config)
    if early is not None:
        return {"final": early}
    if method == "wasserstein":
        raise AisecInputError(
            f"column {ref.name!r}: wasserstein needs the whole window's order statistics; "
            "a partitioned window supports ks, chi2, psi and js"
        )
    column = source.read_column(ref.name)
    out: dict[str, Any] = {"method": method, "coerced": source.coerced.get(ref.name)}
    if ref.kind == "numeric":
        values = to_float64(column, ref.meta["family"]) if cur_kind != "skipped" else np.full(len(column), np.nan)
        del column
        out.update(_numeric_stats(ref, values, method))
    else:
        counts, n_null = category_counts(column)
        out.update(n_rows=len(column), n_null=n_null, counts=counts)
    return out


def _open(profile: Any, expected_digest: str | None) -> tuple[Profile, Any]:
    if isinstance(profile, Profile):
        return profile, lambda: None
    prof, verify = open_profile(profile, expected_digest=expected_digest)
    if "partition" in prof.build:
        verify()
        raise AisecInputError(f"reference profile {prof.path} is one partition of a profile: merge the parts first")
    return prof, verify


def partial_drift(
    current: Any,
    *,
    profile: Any,
    partition: Any,
    config: DriftConfig | None = None,
    expected_digest: str | None = None,
) -> dict[str, Any]:
    """The sufficient statistics of partition ``K/N`` of the window ``current`` (see the module docstring).

    :raises AisecInputError: bad configuration or input; ``wasserstein`` requested.
    :raises AisecUndecidableError: tampered profile.
    """
    config = config or DriftConfig()
    k, n = parse_partition(partition)
    prof, verify = _open(profile, expected_digest)
    try:
        part, info = partition_source(current, k, n)
        if info["source_rows"] == 0:
            raise AisecUndecidableError(f"current window {part.name} has no rows: cannot decide drift on empty data")
        names = list(prof.columns) if config.columns is None else list(config.columns)
        config.check_names(names, list(prof.columns), f"reference profile {prof.path or ''}".strip())
        features = {name: _feature_stats(prof.columns[name], part, config) for name in names}
    finally:
        verify()  # fail closed: nothing computed from a tampered profile leaves this function
    doc: dict[str, Any] = {
        "format": PART_FORMAT,
        "profile": {
            "digest": prof.digest,
            "path": prof.path,
            "n_rows": prof.n_rows,
            "source": prof.build.get("source"),
        },
        "config": {**config.as_dict(), "columns": config.columns},
        "window": {"name": part.name, "columns": part.columns},
        "partition": info,
        "features": _clean(features),
    }
    doc["digest"] = "sha256:" + hashlib.sha256(_canonical(doc)).hexdigest()
    return doc


def partition_advice(doc: dict[str, Any]) -> str | None:
    """Why this partition is too small for its profile, if it is (``None`` when the split pays)."""
    info = doc["partition"]
    rows = int(info["row_stop"]) - int(info["row_start"])
    heavy = {
        name: int(f["ks_points"])
        for name, f in doc["features"].items()
        if int(f.get("ks_points") or 0) > ADVICE_POINTS_PER_ROW * max(rows, 1)
    }
    if not heavy:
        return None
    most = max(heavy.values())
    return (
        f"{len(heavy)} KS feature(s) test against up to {most:,} distinct reference values, more than "
        f"{ADVICE_POINTS_PER_ROW:.0%} of this partition's {rows:,} rows: each partition counts its rows at "
        "every one of them, so partitions this small cost more than they save. Use fewer, larger "
        "partitions; with an exact profile, a grid profile (aisec profile build --exact-max N) has far "
        "fewer points"
    )


def write_partial(
    current: Any,
    *,
    profile: Any,
    partition: Any,
    output: Any,
    config: DriftConfig | None = None,
    expected_digest: str | None = None,
    subject: str | None = None,
) -> Report:
    """:func:`partial_drift` of partition ``K/N``, written atomically to ``output``; the report says what was
    written (status ``pass``: a partition has no verdict, the merge decides) and whether the partitions
    are too small for the profile to pay (``details.partial.advice``, also logged)."""
    from airflow_aisec.utils.fs import check_output_path

    check_output_path(output)  # refuse a bad destination before any work
    report = Report.start("drift", subject or str(current), tags=TAGS)
    doc = partial_drift(current, profile=profile, partition=partition, config=config, expected_digest=expected_digest)
    save_partial(doc, output)
    info = doc["partition"]
    report.metrics.update(n_features=len(doc["features"]), n_rows_current=info["row_stop"] - info["row_start"])
    report.details["partial"] = {"path": str(output), "digest": doc["digest"], "partition": info}
    advice = partition_advice(doc)
    if advice:
        report.details["partial"]["advice"] = advice
        log.warning("drift partition %s/%s: %s", info["index"], info["count"], advice)
    return report.finish(
        "pass",
        f"partition {info['index']}/{info['count']} (rows {info['row_start']}-{info['row_stop']}): "
        f"statistics written to {output}; no verdict until the merge",
    )


def _clean(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    return obj


def load_partial(path: Any) -> dict[str, Any]:
    """Read a partial written by :func:`save_partial` and check its digest (fails closed)."""
    from airflow_aisec.utils import strictjson

    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise AisecInputError(f"cannot read drift partial {path}: {exc.strerror}") from exc
    doc = strictjson.loads(raw, source=f"drift partial {path}", max_bytes=1 << 31)
    if not isinstance(doc, dict) or doc.get("format") != PART_FORMAT:
        raise AisecUndecidableError(f"{path} is not an aisec drift partial ({PART_FORMAT})")
    body = {k: v for k, v in doc.items() if k != "digest"}
    if doc.get("digest") != "sha256:" + hashlib.sha256(_canonical(body)).hexdigest():
        raise AisecUndecidableError(f"drift partial {path} was modified: digest mismatch (tampered?)")
    doc["_path"] = str(path)
    return doc


def save_partial(doc: dict[str, Any], path: Any) -> None:
    """Write a partial atomically."""
    from airflow_aisec.utils.fs import atomic_writer

    with atomic_writer(path, "wb") as fh:
        fh.write(_canonical(doc))


def _check_tiling(parts: list[dict[str, Any]]) -> dict[str, Any]:
    head = parts[0]
    for doc in parts:
        where = doc.get("_path", "partial")
        for key in ("profile", "config"):
            if doc.get(key) != head.get(key):
                raise AisecUndecidableError(f"{where}: part of another drift run ({key} differs)")
        if (doc.get("window") or {}).get("columns") != (head.get("window") or {}).get("columns"):
            raise AisecUndecidableError(f"{where}: part of another window (columns differ)")
        for key in ("count", "source_rows", "schema_sha256"):
            if doc["partition"].get(key) != head["partition"].get(key):
                raise AisecUndecidableError(f"{where}: part of another window ({key} differs)")
    count, total = int(head["partition"]["count"]), int(head["partition"]["source_rows"])
    indexes = sorted(int(d["partition"]["index"]) for d in parts)
    if indexes != list(range(1, count + 1)):
        missing = sorted(set(range(1, count + 1)) - set(indexes))
        repeated = sorted({i for i in indexes if indexes.count(i) > 1})
        raise AisecUndecidableError(
            f"partials do not tile the window: {count} expected, missing {missing[:10]}, repeated {repeated[:10]}"
        )
    for doc in parts:
        k = int(doc["partition"]["index"])
        if (doc["partition"].get("row_start"), doc["partition"].get("row_stop")) != row_range(total, k, count):
            raise AisecUndecidableError(f"{doc.get('_path')}: partition {k}/{count} does not cover its rows")
    return head


def _merge_numeric(ref: ColumnProfile, items: list[dict[str, Any]], method: str, config: DriftConfig) -> dict[str, Any]:
    """The whole-window result of a numeric feature from its partitions' statistics (mirrors ``_numeric_result``)."""
    meta = ref.meta
    n_rows = sum(int(s["n_rows"]) for s in items)
    m = sum(int(s["n_finite"]) for s in items)
    inf_count = sum(int(s["n_posinf"]) + int(s["n_neginf"]) for s in items)
    res: dict[str, Any] = {"n": m, "n_rows": n_rows, "n_reference": int(meta["n_values"])}
    res.update(_null_signal(ref, n_rows - m, n_rows, config.null_rate_tolerance, config.alpha))
    res["inf_count"] = inf_count
    if m == 0:
        res.update(status="skipped", reason="no finite values in current window", method=method, empty_window=True)
        return res
    n = int(meta["n_values"])
    edges = np.asarray(meta["bin_edges"], dtype=float)
    ref_bins = np.asarray(meta["bin_counts"], dtype=float)
    cur_bins = np.sum([np.asarray(s["bins"], dtype=np.int64) for s in items], axis=0).astype(float)
    if cur_bins.shape != ref_bins.shape:
        raise AisecUndecidableError(f"column {ref.name!r}: partial bins do not match the profile")
    psi, psi_p = stats.psi_from_counts(ref_bins, cur_bins)
    effects: dict[str, Any] = {
        "psi": psi,
        "psi_p_value": psi_p,
        "js": stats.js_distance(ref_bins, cur_bins),
        "wasserstein_norm": None,
        "mean_reference": meta.get("mean"),
        "mean": math.fsum(float(s["sum"]) for s in items) / m,
    }
    res.update(effect_sizes=effects, method=method)
    res["histogram"] = {
        "edges": [float(e) for e in edges],
        "reference": (ref_bins / max(ref_bins.sum(), 1)).tolist(),
        "current": (cur_bins / max(cur_bins.sum(), 1)).tolist(),
    }
    if method == "ks":
        u, r_lt, r_le = ks_points(ref)
        dense = np.zeros(2 * u.size + 1, dtype=np.int64)
        for s in items:
            if "ks_dense" in s:  # every cell, in order
                counts = _unpack(s["ks_dense"], ref.name, dtype=None)  # added in place, no 8-byte copy
                if counts.size != dense.size or (counts.size and int(counts.min()) < 0):
                    raise AisecUndecidableError(f"column {ref.name!r}: partial KS counts do not match the profile")
                dense += counts
                continue
            # the earlier, sparse form: gaps between occupied cells, and their counts
            cells = np.cumsum(_unpack(s.get("ks_cells"), ref.name))
            counts = _unpack(s.get("ks_counts"), ref.name)
            if cells.size != counts.size or (cells.size and (cells[0] < 0 or cells[-1] >= dense.size)):
                raise AisecUndecidableError(f"column {ref.name!r}: partial KS counts do not match the profile")
            if cells.size > 1 and bool((np.diff(cells) <= 0).any()):
                raise AisecUndecidableError(f"column {ref.name!r}: partial KS cells are not increasing")
            dense[cells] += counts  # distinct cells (checked above): one fancy-indexed add
        if int(dense.sum()) != m:
            raise AisecUndecidableError(f"column {ref.name!r}: partial KS counts do not add up to the window")
        cum = np.cumsum(dense)
        c_lt, c_le = cum[0::2][: u.size], cum[1::2]
        if meta.get("storage") == "grid":
            d_est, d_lo, d_hi = stats.ks_from_grid_counts(r_lt, r_le, n, c_lt, c_le, m)
            d, p, mode = stats.ks_pvalue(d_est, n, m)
            p_hi, p_lo = stats.ks_pvalue(d_lo, n, m)[1], stats.ks_pvalue(d_hi, n, m)[1]
            res.update(statistic_bounds=[d_lo, d_hi], p_value_bounds=[p_lo, p_hi], ks_mode=f"{mode}+grid")
        else:
            d, p, mode = stats.ks_pvalue(stats.ks_statistic_from_counts(r_lt, r_le, n, c_lt, c_le, m), n, m)
            res["ks_mode"] = mode
        res.update(statistic=d, p_value=p)
        effects["ks"] = d
    elif method == "chi2":
        ref_counts = meta.get("value_counts")
        if ref_counts is None:
            res.update(status="skipped", reason="chi2 needs a discrete reference (too many distinct values)")
            return res
        merged: dict[str, int] = {}
        for s in items:
            for key, value in (s.get("value_counts") or {}).items():
                merged[key] = merged.get(key, 0) + int(value)
        if meta.get("constant"):
            (key,) = ref_counts
            same = merged.get(repr(float(key)), 0)
            cur_counts = {key: same, "other": m - same}
        else:
            cur_counts = merged
        chi2_result(res, ref_counts, cur_counts)
    else:  # psi or js (wasserstein is refused for a partitioned window)
        effect_result(res, method, psi, psi_p, effects)
    return res


def _merge_feature(ref: ColumnProfile, items: list[dict[str, Any]], config: DriftConfig) -> dict[str, Any]:
    if any("final" in s for s in items):
        finals = [s.get("final") for s in items]
        if any(f != finals[0] for f in finals):
            raise AisecUndecidableError(f"column {ref.name!r}: the partitions disagree on its status")
        return dict(finals[0] or {})
    method = items[0]["method"]
    if any(s.get("method") != method or s.get("coerced") != items[0].get("coerced") for s in items):
        raise AisecUndecidableError(f"column {ref.name!r}: the partitions disagree on its test")
    if ref.kind == "numeric":
        res = _merge_numeric(ref, items, method, config)
    else:
        counts: dict[str, int] = {}
        for s in items:
            for key, value in s["counts"].items():
                counts[key] = counts.get(key, 0) + int(value)
        n_null, n_rows = sum(int(s["n_null"]) for s in items), sum(int(s["n_rows"]) for s in items)
        res = categorical_from_counts(ref, counts, n_null, n_rows, method, config)
    return finish_feature(ref, res, method, config, items[0].get("coerced"))


class _Window:
    """What the report needs of the window: its name and row count."""

    def __init__(self, name: str, num_rows: int) -> None:
        self.name, self.num_rows = name, num_rows


def merge_partials(
    parts: list[Any],
    *,
    profile: Any = None,
    expected_digest: str | None = None,
    subject: str | None = None,
    part_digests: list[str | None] | None = None,
) -> Report:
    """Merge the partials of all ``N`` partitions into the whole window's drift report.

    :param parts: partial documents or paths to them.
    :param profile: the reference profile (default: the path the partials record); its digest must be
        the one the partials were computed against.
    :param part_digests: per part, the digest its partition task reported (``None``: not known). A
        partial whose digest differs was replaced or edited after its task wrote it (its own digest
        detects edits, not a forger who recomputes it; the task's report is the reference).
    :raises AisecUndecidableError: inconsistent, missing, repeated or tampered partials; wrong profile.
    """
    if not parts:
        raise AisecInputError("no drift partials to merge")
    docs = [load_partial(p) if not isinstance(p, dict) else p for p in parts]
    for doc, expected in zip(docs, part_digests or [None] * len(docs), strict=True):
        if expected is not None and doc.get("digest") != expected:
            raise AisecUndecidableError(
                f"{doc.get('_path', 'partial')} is not the partial its partition task reported (digest "
                f"{str(doc.get('digest'))[:23]}…, reported {str(expected)[:23]}…): replaced or edited after it was written"
            )
    try:
        head = _check_tiling(docs)
        recorded = head["profile"]
        raw_config = dict(head["config"])
        config = DriftConfig(**{**raw_config, "critical_features": tuple(raw_config["critical_features"])})
        names = set(head["features"])
        if any(set(d["features"]) != names for d in docs):
            raise AisecUndecidableError("the partials test different columns")
    except (KeyError, TypeError, ValueError) as exc:
        raise AisecUndecidableError(f"malformed drift partial: {type(exc).__name__}: {exc}"[:300]) from exc
    if expected_digest and expected_digest != recorded["digest"]:
        raise AisecUndecidableError(
            f"the partials were computed against profile {recorded['digest']}, not {expected_digest}"
        )
    prof, verify = _open(profile if profile is not None else recorded["path"], recorded["digest"])
    window = _Window(subject or str(head["window"]["name"]), int(head["partition"]["source_rows"]))
    report = Report.start("drift", window.name, tags=TAGS)
    try:
        if any(name not in prof.columns for name in names):
            raise AisecUndecidableError("the partials name columns the profile does not have")
        ordered = list(prof.columns) if config.columns is None else list(config.columns)  # the whole-window order
        if set(ordered) != names:
            raise AisecUndecidableError("the partials do not test the columns their configuration names")
        try:
            features = [_merge_feature(prof.columns[n], [d["features"][n] for d in docs], config) for n in ordered]
        except (KeyError, TypeError, ValueError) as exc:
            raise AisecUndecidableError(f"malformed drift partial: {type(exc).__name__}: {exc}"[:300]) from exc
    finally:
        verify()
    decision = decide(features, config)
    if decision["n_tested"] == 0 and decision["n_missing"] == 0:
        raise AisecUndecidableError(f"no column of {window.name} could be tested against the reference")
    new_columns = [c for c in head["window"]["columns"] if c not in prof.columns]
    profile_info = {"digest": prof.digest, "path": prof.path, "n_rows": prof.n_rows, "source": prof.build.get("source")}
    _fill_report(report, features, decision, config, profile_info, new_columns, window)  # type: ignore[arg-type]
    report.details["partitions"] = int(head["partition"]["count"])
    return report
