"""Reference profiles for drift testing: built once from reference data, stored as one verified file.

A profile holds, per column, what the drift tests need about the reference distribution:

* numeric columns: type, row / null / ±inf counts, min/max/mean/std, constant flag, the **sorted finite
  values** (``storage="exact"``, up to ``exact_max`` values) or, above that, a **quantile grid**
  (``storage="grid"``: ``grid_size`` order statistics with their exact ranks), decile bin edges and
  counts (PSI, Jensen-Shannon), 1,000 quantiles (Wasserstein), and the value counts of discrete columns;
* categorical columns (strings, booleans, dictionaries): category counts;
* unusable columns (empty, all-null, nested, binary): a status and the reason;
* the build parameters.

Quantile grid and its certified error bound
    With ``storage="grid"`` the grid keeps the distinct reference values ``q_0 < … < q_K`` at evenly
    spaced ranks (``q_0`` = minimum, ``q_K`` = maximum) together with the exact counts
    ``#{x < q_j}`` and ``#{x <= q_j}``. For any ``x`` the reference ECDF is then known exactly at the
    knots and bracketed between them: ``F(q_j) <= F(x) <= F(q_{j+1}^-)``. The bracket width is at most
    ``eps = max_j (#{x < q_{j+1}} - #{x <= q_j}) / n`` (about ``1/K``; stored as ``ks_error_bound``).
    Hence the KS statistic computed from the grid satisfies ``D_lo <= D <= D_hi`` with
    ``D_hi - D_lo <= eps`` (both bounds are reported), and since the p-value is monotone in ``D`` the
    true p-value lies in ``[p(D_hi), p(D_lo)]`` (reported as ``p_value_bounds``). The decision uses
    the midpoint estimate; a feature whose bounds straddle the threshold is flagged ``borderline``.

File format (one file, written atomically)
    ``MAGIC`` line, 8-byte little-endian header length, canonical JSON header, binary payload (raw
    little-endian arrays). The header records each array's offset/dtype/length, the payload's BLAKE3
    hash (``payload_hash``; v1 profiles recorded a SHA-256) and the profile ``digest`` = SHA-256 of the
    canonical header (which includes the payload hash). :func:`load_profile` recomputes both and fails
    closed (:class:`AisecUndecidableError`) on any mismatch, and also when an ``expected_digest`` is
    given and differs. BLAKE3 because verification reads every stored value on every drift test:
    SHA-256 runs at ~0.4 GB/s on CPUs without SHA extensions, BLAKE3 at ~3 GB/s on one core.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import struct
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pyarrow as pa

from airflow_aisec.core.tabular import ColumnSource, is_opened, open_source
from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError
from airflow_aisec.utils.uri import is_remote, local_path

MAGIC = b"AISEC-DRIFT-PROFILE v1\n"
FORMAT = "aisec.drift-profile/v2"
#: profiles written before the payload hash moved to BLAKE3 (payload hashed with SHA-256); still readable.
FORMAT_V1 = "aisec.drift-profile/v1"

#: default: above this many finite values a numeric column is stored as a quantile grid.
DEFAULT_EXACT_MAX = 2_000_000
#: default number of grid knots (certified KS error bound about 1 / grid_size).
DEFAULT_GRID_SIZE = 16_384
#: categorical columns with more distinct values than this are skipped (likely identifiers).
DEFAULT_MAX_CATEGORIES = 200
#: integer columns with at most this many distinct values are tested with chi-square by default.
DEFAULT_MAX_DISCRETE = 20
N_QUANTILES = 1000
N_BINS = 10


# --------------------------------------------------------------------------------------------- types
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
    """Numeric Arrow data → float64 numpy array; nulls become NaN; datetimes become epoch seconds."""
    import pyarrow.compute as pc

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
        arr = pc.cast(arr, pa.float64(), safe=False)
    out = arr.to_numpy(zero_copy_only=False)
    if scale != 1.0:
        out = out * scale
    return np.asarray(out, dtype=np.float64)


def category_counts(column: pa.ChunkedArray | pa.Array) -> tuple[dict[str, int], int]:
    """Counts of each non-null category (as strings) and the null count."""
    import pyarrow.compute as pc

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


def sorted_finite(values: np.ndarray) -> tuple[np.ndarray, int, int, int]:
    """Sort a float64 column once: ``(sorted finite values, n_nan, n_posinf, n_neginf)``.

    numpy sorts ``-inf`` first and NaN after ``+inf``, so the finite values are one contiguous slice of
    the sorted copy, found with two searches: no separate ``isfinite`` pass, no boolean gather.
    """
    ordered = np.sort(values)
    if ordered.size == 0 or (math.isfinite(ordered[0]) and math.isfinite(ordered[-1])):
        return ordered, 0, 0, 0
    lo = int(np.searchsorted(ordered, -np.inf, "right"))
    hi = int(np.searchsorted(ordered, np.inf, "left"))
    top = int(np.searchsorted(ordered, np.inf, "right"))
    return ordered[lo:hi], ordered.size - top, top - hi, lo


def discrete_counts(sorted_values: np.ndarray, limit: int) -> dict[str, int] | None:
    """Value counts of a sorted array when it has at most ``limit`` distinct values (else ``None``)."""
    if sorted_values.size == 0:
        return {}
    differs = sorted_values[1:] != sorted_values[:-1]
    if int(np.count_nonzero(differs)) + 1 > limit:
        return None
    change = np.flatnonzero(differs) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [sorted_values.size]))
    return {repr(float(sorted_values[s])): int(e - s) for s, e in zip(starts, ends, strict=True)}


# --------------------------------------------------------------------------------------------- model
@dataclass
class ColumnProfile:
    """One column of a profile: ``meta`` (JSON) and its arrays (numpy)."""

    name: str
    meta: dict[str, Any]
    arrays: Mapping[str, np.ndarray] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return str(self.meta["kind"])


@dataclass
class Profile:
    """A reference profile (see the module docstring)."""

    columns: dict[str, ColumnProfile]
    build: dict[str, Any]
    digest: str | None = None
    path: str | None = None

    @property
    def n_rows(self) -> int:
        return int(self.build.get("n_rows", 0))


@dataclass
class BuildOptions:
    """Parameters of a profile build (recorded in the profile)."""

    exact_max: int = DEFAULT_EXACT_MAX
    grid_size: int = DEFAULT_GRID_SIZE
    max_categories: int = DEFAULT_MAX_CATEGORIES
    max_discrete: int = DEFAULT_MAX_DISCRETE

    def __post_init__(self) -> None:
        for name in ("exact_max", "grid_size", "max_categories", "max_discrete"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 2:
                raise AisecInputError(f"profile option {name} must be an integer >= 2, not {value!r}")

    def to_dict(self) -> dict[str, int]:
        return {
            "exact_max": self.exact_max,
            "grid_size": self.grid_size,
            "max_categories": self.max_categories,
            "max_discrete": self.max_discrete,
        }


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
    n_rows = int(values.size)
    finite, n_null, n_posinf, n_neginf = sorted_finite(values)
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
        idx = np.unique(np.linspace(0, n - 1, options.grid_size).round().astype(np.int64))
        knots = np.unique(finite[idx])
        lt = np.searchsorted(finite, knots, "left").astype(np.int64)
        le = np.searchsorted(finite, knots, "right").astype(np.int64)
        meta["storage"] = "grid"
        meta["ks_error_bound"] = float((lt[1:] - le[:-1]).max() / n) if knots.size > 1 else 0.0
        arrays.update(knots=knots, lt=lt, le=le)
    return ColumnProfile(name, meta, arrays)


def sorted_quantiles(sorted_values: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``np.quantile(a, q)`` (linear method) of an already sorted array, without copying it."""
    pos = q * (sorted_values.size - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, sorted_values.size - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def quantile_grid(sorted_values: np.ndarray) -> np.ndarray:
    """Quantiles at the ``N_QUANTILES`` midpoints ``(k + 0.5) / N`` (lower order statistic)."""
    n = sorted_values.size
    u = (np.arange(N_QUANTILES) + 0.5) / N_QUANTILES
    return np.ascontiguousarray(sorted_values[np.minimum((u * n).astype(np.int64), n - 1)], dtype=np.float64)


def profile_categorical(name: str, column: pa.ChunkedArray, family: str, options: BuildOptions) -> ColumnProfile:
    counts, n_null = category_counts(column)
    n_rows = len(column)
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
) -> Profile:
    """Build a :class:`Profile` from reference ``data`` (path/URI, DataFrame or Table), column by column.

    :param columns: restrict to these columns (default: all). A listed column missing from the data is
        an :class:`AisecInputError`.
    :raises AisecInputError: unreadable data, or a reference with no rows.
    """
    options = options or BuildOptions()
    source = data if isinstance(data, ColumnSource) else open_source(data, name=source_name)
    if source.num_rows == 0:
        raise AisecInputError(f"reference data {source.name} has no rows")
    names = _select_columns(source, columns, "reference data")
    profile_columns = {name: profile_column(source, name, options) for name in names}
    build = {
        "format": FORMAT,
        "source": source.name,
        "n_rows": source.num_rows,
        "columns": names,
        "options": options.to_dict(),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
    return Profile(profile_columns, build)


def _select_columns(source: ColumnSource, columns: list[str] | None, what: str) -> list[str]:
    if columns is None:
        return source.columns
    if isinstance(columns, (str, bytes)) or not columns or len(set(columns)) != len(list(columns)):
        raise AisecInputError(f"columns must be a non-empty list of distinct column names, not {columns!r}"[:300])
    missing = [c for c in columns if c not in source.columns]
    if missing:
        raise AisecInputError(f"{what} {source.name} has no column(s) {missing}")
    return list(columns)


# --------------------------------------------------------------------------------------------- storage
def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


def _clean(obj: Any) -> Any:
    """JSON-safe copy of profile metadata (non-finite floats → None)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return _clean(float(obj))
    return obj


def _payload_hasher() -> Any:
    """BLAKE3 for the payload: ~3 GB/s on one core (SHA-256 runs at ~0.4 GB/s without SHA-NI, which
    would make verifying a 1M x 20 profile cost more than the whole drift test)."""
    from blake3 import blake3

    return blake3()


@contextmanager
def _upload_on_success(path: Any) -> Iterator[io.BytesIO]:
    """Collect the bytes in memory; upload them in one write only if the block succeeds (no partial object)."""
    buffer = io.BytesIO()
    yield buffer
    data = buffer.getvalue()
    if is_opened(path):
        with path.open("wb") as fh:
            fh.write(data)
        return
    from airflow_aisec.core.tabular import _filesystem

    filesystem, fs_path = _filesystem(path)
    with filesystem.open_output_stream(fs_path) as fh:
        fh.write(data)


def _profile_writer(path: Any) -> Any:
    """A binary writer for ``path``: atomic rename locally; one upload of the whole file remotely."""
    if is_remote(path):
        return _upload_on_success(path)
    from airflow_aisec.utils.fs import atomic_writer

    return atomic_writer(local_path(path), "wb")


def save_profile(profile: Profile, path: Any) -> str:
    """Write ``profile`` to ``path`` atomically; return its digest (``sha256:<hex>``).

    :param path: local path / ``file://`` URI, or object storage (an opened path object, or a URI).
    """
    arrays_meta: dict[str, dict[str, Any]] = {}
    blobs: list[np.ndarray] = []
    offset = 0
    columns_meta = []
    for index, col in enumerate(profile.columns.values()):
        keys = {}
        for key, arr in col.arrays.items():
            arr = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<"))
            ref = f"{index}.{key}"
            arrays_meta[ref] = {"offset": offset, "dtype": arr.dtype.str, "length": int(arr.size)}
            keys[key] = ref
            blobs.append(arr)
            offset += arr.nbytes
        columns_meta.append({"name": col.name, "meta": _clean(col.meta), "arrays": keys})
    hasher = _payload_hasher()
    for arr in blobs:
        hasher.update(arr.data.cast("B"))
    header: dict[str, Any] = {
        "format": FORMAT,
        "build": _clean(profile.build),
        "columns": columns_meta,
        "arrays": arrays_meta,
        "payload_bytes": offset,
        "payload_hash": "blake3:" + hasher.hexdigest(),
    }
    digest = "sha256:" + hashlib.sha256(_canonical(header)).hexdigest()
    header["digest"] = digest
    header_bytes = _canonical(header)
    with _profile_writer(path) as fh:
        fh.write(MAGIC)
        fh.write(struct.pack("<Q", len(header_bytes)))
        fh.write(header_bytes)
        fh.write(bytes(_payload_start(len(header_bytes), FORMAT) - len(MAGIC) - 8 - len(header_bytes)))
        for arr in blobs:
            fh.write(arr.data.cast("B"))
    profile.digest = digest
    profile.path = str(path) if is_opened(path) else os.fspath(path)
    return digest


def load_profile(path: Any, *, expected_digest: str | None = None) -> Profile:
    """Load and verify a profile written by :func:`save_profile` (see :func:`open_profile`)."""
    profile, verify = open_profile(path, expected_digest=expected_digest, background=False)
    verify()
    return profile


def _aligned_empty(nbytes: int, alignment: int = 64) -> np.ndarray:
    """An uninitialised byte buffer whose start is ``alignment``-aligned (numpy's searchsorted and sort
    copy unaligned inputs on every call, which costs more than the search itself)."""
    raw = np.empty(nbytes + alignment, dtype=np.uint8)
    start = (-raw.ctypes.data) % alignment
    return raw[start : start + nbytes]


#: v2 payloads start at a multiple of this in the file (zero padding after the header), so the
#: arrays of a memory-mapped profile are aligned (numpy copies unaligned arrays on every search).
PAYLOAD_ALIGN = 64


def _payload_start(header_len: int, fmt: str) -> int:
    start = len(MAGIC) + 8 + header_len
    return start + (-start) % PAYLOAD_ALIGN if fmt == FORMAT else start


class _PayloadLoader:
    """Hashes a profile's payload on a thread (or inline) while the drift workers already use it.

    Two sources. A local v2 profile is memory-mapped read-only: every array is usable at once and the
    thread hashes the mapping (no copy into fresh memory, which costs more than the hash here). Any
    other profile (object storage, v1 layout) is streamed in 1 MiB chunks into an aligned private
    buffer; each array is handed out once its bytes are in (:meth:`wait_for`). :meth:`hexdigest`
    waits for the end. A short read or a file that grew while being read is an error, raised to
    every waiter.
    """

    CHUNK = 1 << 20

    def __init__(self, payload: np.ndarray, hasher: Any, path: str, source: Any = None) -> None:
        import threading

        self.payload = payload
        self._hasher, self._path, self._source = hasher, path, source
        self._loaded = 0 if source is not None else payload.size
        self._finished = False
        self._error: BaseException | None = None
        self._cond = threading.Condition()

    def run(self) -> None:
        view = self.payload.data
        done, size = 0, self.payload.size
        try:
            if self._source is None:  # mapped: hash in large slices (blake3 releases the GIL)
                for start in range(0, size, 8 * self.CHUNK):
                    self._hasher.update(view[start : start + 8 * self.CHUNK])
                return
            while done < size:
                got = self._source.readinto(view[done : min(done + self.CHUNK, size)])
                if not got:
                    raise AisecUndecidableError(
                        f"reference profile {self._path} is truncated or changed while being read"
                    )
                with self._cond:
                    self._loaded = done + got
                    self._cond.notify_all()
                self._hasher.update(view[done : done + got])
                done += got
            if self._source.read(1):
                raise AisecUndecidableError(f"reference profile {self._path} grew while being read")
        except BaseException as exc:  # handed to every waiter
            self._error = exc
        finally:
            if self._source is not None:
                self._source.close()
            with self._cond:
                self._finished = True
                self._cond.notify_all()

    def _raise(self) -> None:
        if self._error is not None:
            if isinstance(self._error, AisecUndecidableError):
                raise self._error
            raise AisecUndecidableError(
                f"could not read reference profile {self._path}: {self._error}"
            ) from self._error

    def wait_for(self, end: int) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._loaded >= end or self._finished)
        if self._loaded < end:
            self._raise()

    def hexdigest(self) -> str:
        with self._cond:
            self._cond.wait_for(lambda: self._finished)
        self._raise()
        return str(self._hasher.hexdigest())


class _LoadingArrays(Mapping[str, np.ndarray]):
    """A column's arrays, each handed out once the loader has read its bytes."""

    def __init__(self, arrays: dict[str, tuple[np.ndarray, int]], loader: _PayloadLoader) -> None:
        self._arrays, self._loader = arrays, loader

    def __getitem__(self, key: str) -> np.ndarray:
        arr, end = self._arrays[key]
        self._loader.wait_for(end)
        return arr

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)


def _open_profile_file(source: Any) -> tuple[bytes, Any, int]:
    """``(header_bytes, file object, file size)``; the file object is local (``fileno``) or in memory.

    :param source: local path / ``file://`` URI, or object storage (an opened path object, or a URI).
    """
    prefix = len(MAGIC) + 8
    if is_remote(source):
        path = str(source)
        try:
            if is_opened(source):
                with source.open("rb") as remote:
                    raw = remote.read()
            else:
                from airflow_aisec.core.tabular import _filesystem

                filesystem, fs_path = _filesystem(source)
                with filesystem.open_input_file(fs_path) as remote:
                    raw = remote.read()
        except FileNotFoundError as exc:
            raise AisecInputError(f"reference profile not found: {path}") from exc
        header_len = _check_prefix(path, raw[:prefix])
        return raw[prefix : prefix + header_len], io.BytesIO(raw), len(raw)
    path = local_path(source)
    if not os.path.isfile(path):
        raise AisecInputError(f"reference profile not found: {path}")
    fh = open(path, "rb", buffering=0)  # closed by the loader / verify()
    try:
        header_len = _check_prefix(path, fh.read(prefix))
        size = os.fstat(fh.fileno()).st_size
        if header_len > size - prefix:
            raise AisecUndecidableError(f"reference profile {path} is truncated (header longer than the file)")
        return fh.read(header_len), fh, size
    except BaseException:
        fh.close()
        raise


def _map_payload(fh: Any, start: int, size: int) -> np.ndarray:
    import mmap

    mapping = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    return np.frombuffer(mapping, dtype=np.uint8, count=size, offset=start)


def _file_state(fh: Any) -> tuple[int, ...]:
    st = os.fstat(fh.fileno())
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _check_prefix(path: str, prefix: bytes) -> int:
    if not prefix.startswith(MAGIC) or len(prefix) < len(MAGIC) + 8:
        raise AisecUndecidableError(f"{path} is not an aisec drift profile (bad magic)")
    (header_len,) = struct.unpack_from("<Q", prefix, len(MAGIC))
    return int(header_len)


def _payload_digest(header: dict[str, Any], path: str) -> tuple[str, Any]:
    """``(expected "algo:hex", new hasher)`` from the header; v1 profiles were hashed with SHA-256."""
    if "payload_hash" in header:
        expected = str(header["payload_hash"])
        if not expected.startswith("blake3:"):
            raise AisecUndecidableError(f"reference profile {path} uses an unknown payload hash {expected[:16]!r}")
        return expected, _payload_hasher()
    if header.get("format") == FORMAT_V1 and "payload_sha256" in header:
        return "sha256:" + str(header["payload_sha256"]), hashlib.sha256()
    raise AisecUndecidableError(f"reference profile {path} records no payload hash: refusing to use it")


def _check_header(
    path: str, header_bytes: bytes, file_size: int, expected_digest: str | None
) -> tuple[dict[str, Any], str, str, Any]:
    """Parse and verify a profile header: ``(header, digest, "algo:payload hash", hasher)``; fails closed."""
    from airflow_aisec.utils import strictjson

    # strict: duplicate keys, NaN, huge numbers, deep nesting are refused (AisecInputError, exit 2)
    header = strictjson.loads(header_bytes, source=f"reference profile {path} header", max_bytes=MAX_HEADER_BYTES)
    if not isinstance(header, dict) or header.get("format") not in (FORMAT, FORMAT_V1):
        raise AisecUndecidableError(f"reference profile {path} has an unknown format")
    stored_digest = header.pop("digest", None)
    if file_size - _payload_start(len(header_bytes), header["format"]) != header.get("payload_bytes"):
        raise AisecUndecidableError(f"reference profile {path} is truncated or padded (payload size mismatch)")
    digest = "sha256:" + hashlib.sha256(_canonical(header)).hexdigest()
    if digest != stored_digest:
        raise AisecUndecidableError(f"reference profile {path} was modified: header digest mismatch (tampered?)")
    if expected_digest and expected_digest != digest:
        raise AisecUndecidableError(
            f"reference profile {path} has digest {digest}, expected {expected_digest}: refusing to use it"
        )
    expected_payload, hasher = _payload_digest(header, path)
    validate_header(header, path)  # after the digest checks: tampering is reported as tampering
    return header, digest, expected_payload, hasher


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
        _validate_meta(meta, lengths, {k: specs[r]["dtype"] for k, r in arrays.items()}, path, where)


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


def open_profile(path: Any, *, expected_digest: str | None = None, background: bool = True) -> tuple[Profile, Any]:
    """Open a profile; return it with ``verify()``, which raises unless the payload hash matches.

    The header (with the payload's expected hash) is verified before returning. With ``background``
    the payload is read and hashed on a thread while the caller starts working, and each array is
    handed out once its bytes are in; the caller MUST call ``verify()`` before using any result (the
    drift engine does so before building its report, so a tampered profile still fails closed and no
    result computed from it escapes). A local v2 profile is memory-mapped read-only; because a mapping
    shows later writes to the file, ``verify()`` also raises when the file's inode, size, mtime or
    ctime changed since it was opened. Other profiles are read into private memory.

    :param expected_digest: the digest the caller trusts (e.g. reported when the profile was built);
        a different digest fails closed.
    :raises AisecInputError: the file does not exist.
    :raises AisecUndecidableError: not a profile, truncated, tampered (hash mismatch) or not the
        expected digest.
    """
    source = path
    path = str(source) if is_opened(source) else os.fspath(source)
    header_bytes, fh, file_size = _open_profile_file(source)
    try:
        header, digest, expected_payload, hasher = _check_header(path, header_bytes, file_size, expected_digest)
        start = _payload_start(len(header_bytes), header["format"])
        size = file_size - start
        fh.seek(len(MAGIC) + 8 + len(header_bytes))
        if any(fh.read(start - len(MAGIC) - 8 - len(header_bytes))):
            raise AisecUndecidableError(f"reference profile {path} was modified: non-zero header padding (tampered?)")
        mapped = header["format"] == FORMAT and not isinstance(fh, io.BytesIO) and size > 0
        if mapped:
            state = _file_state(fh)
            loader = _PayloadLoader(_map_payload(fh, start, size), hasher, path)
        else:
            loader = _PayloadLoader(_aligned_empty(size), hasher, path, source=fh)
        columns: dict[str, ColumnProfile] = {}
        for entry in header["columns"]:
            arrays: dict[str, tuple[np.ndarray, int]] = {}
            for key, ref in entry["arrays"].items():
                spec = header["arrays"][ref]
                dtype = np.dtype(spec["dtype"])
                lo, hi = int(spec["offset"]), int(spec["offset"]) + dtype.itemsize * int(spec["length"])
                if not 0 <= lo <= hi <= size:
                    raise AisecUndecidableError(f"reference profile {path} has an array outside its payload")
                arr = loader.payload[lo:hi].view(dtype)
                arr.flags.writeable = False
                arrays[key] = (arr, hi)
            columns[entry["name"]] = ColumnProfile(entry["name"], entry["meta"], _LoadingArrays(arrays, loader))
    except BaseException:
        fh.close()
        raise
    if background:
        import threading

        threading.Thread(target=loader.run, name="aisec-profile-load", daemon=True).start()
    else:
        loader.run()

    def verify() -> None:
        algorithm = expected_payload.split(":", 1)[0]
        if f"{algorithm}:{loader.hexdigest()}" != expected_payload:
            raise AisecUndecidableError(f"reference profile {path} was modified: payload hash mismatch (tampered?)")
        if mapped:  # the mapping shows later writes to the file: refuse a result if there were any
            try:
                changed = _file_state(fh) != state
            finally:
                fh.close()
            if changed:
                raise AisecUndecidableError(f"reference profile {path} changed while in use: refusing the result")

    return Profile(columns, header["build"], digest=digest, path=path), verify
