"""Column-by-column access to tabular data (Parquet, CSV, pandas, pyarrow), local or object storage.

Drift checks read one column at a time so that memory stays about one column, whatever the width of
the table. A local Parquet file is read with :class:`pyarrow.parquet.ParquetFile` (footer parsed once,
each column decoded on the calling thread); a directory of Parquet files or a URI through
:mod:`pyarrow.dataset` with column projection; CSV is parsed once (CSV has no column layout to project on); in-memory pandas DataFrames
and pyarrow Tables are accepted as they are. Local paths and ``file://`` URIs are read from the local
filesystem (:func:`airflow_aisec.utils.uri.local_path`). Object storage is best given as an already
opened path object (an ``ObjectStoragePath`` / ``UPath`` with ``.fs`` and ``.path``: inside Airflow the
operator builds it from its connection); a bare ``s3://`` / ``gs://`` string goes through
:func:`pyarrow.fs.FileSystem.from_uri` (the environment's credentials: the CLI's case).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from airflow_aisec.exceptions import AisecInputError, AisecTransientError
from airflow_aisec.utils.uri import is_remote, local_path, parse_storage_uri


@dataclass
class ColumnSource:
    """A table whose columns can be read one at a time.

    :param name: what to call the data in reports (path or ``<DataFrame>``).
    :param schema: the pyarrow schema (column names and types).
    :param num_rows: number of rows.
    """

    name: str
    schema: pa.Schema
    num_rows: int
    _reader: Any = field(repr=False, default=None)
    #: columns whose values had mixed Python types and were coerced to strings (pandas input).
    coerced: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = list(self.schema.names)
        if len(set(names)) != len(names):  # which "x" would be tested? refuse rather than pick one
            dupes = sorted({n for n in names if names.count(n) > 1})
            raise AisecInputError(f"{self.name} has duplicate column name(s) {dupes[:10]}: cannot tell them apart")

    @property
    def columns(self) -> list[str]:
        return list(self.schema.names)

    def read_column(self, name: str) -> pa.ChunkedArray:
        """Read one column (``pyarrow.ChunkedArray``)."""
        try:
            return self._reader(name)
        except OSError as exc:  # object storage / filesystem hiccup while reading
            raise AisecTransientError(f"could not read column {name!r} of {self.name}: {exc}") from exc


def _filesystem(path: Any) -> tuple[Any, str]:
    """``(pyarrow filesystem, path in it)`` for a local path, a URI, or an opened object-storage path."""
    from pyarrow import fs

    if is_opened(path):
        return fs.PyFileSystem(fs.FSSpecHandler(path.fs)), str(path.path)
    parsed = parse_storage_uri(path)
    if parsed.is_remote:
        try:
            return fs.FileSystem.from_uri(parsed.uri)
        except (pa.ArrowInvalid, ValueError) as exc:
            raise AisecInputError(f"unsupported data URI {parsed.raw!r}: {exc}") from exc
        except OSError as exc:
            raise AisecTransientError(f"could not open {parsed.raw!r}: {exc}") from exc
    return fs.LocalFileSystem(), os.path.abspath(local_path(path))


def is_opened(data: Any) -> bool:
    """An object-storage path object the caller opened (``.fs`` and ``.path``), not a string or table."""
    return not isinstance(data, (str, bytes, os.PathLike)) and hasattr(data, "fs") and hasattr(data, "path")


def _is_csv(path: str) -> bool:
    lowered = path.lower()
    return lowered.endswith((".csv", ".csv.gz", ".tsv"))


def open_source(data: Any, *, name: str | None = None) -> ColumnSource:
    """Open ``data`` (path/URI of Parquet or CSV, ``pandas.DataFrame`` or ``pyarrow.Table``) for reading.

    :raises AisecInputError: the path does not exist, is not readable as Parquet/CSV, or the object
        is not a supported table type. The message names the input.
    """
    if isinstance(data, pa.Table):
        table = data
        return ColumnSource(name or "<pyarrow.Table>", table.schema, table.num_rows, lambda c: table.column(c))
    if type(data).__name__ == "DataFrame" and hasattr(data, "columns"):
        return _from_pandas(data, name or "<DataFrame>")
    if not is_opened(data) and not isinstance(data, (str, os.PathLike)):
        raise AisecInputError(f"unsupported data input of type {type(data).__name__}: give a path, DataFrame or Table")
    path = str(data) if is_opened(data) else os.fspath(data)
    filesystem, fs_path = _filesystem(data)
    from pyarrow import fs

    try:
        info = filesystem.get_file_info(fs_path)
    except OSError as exc:
        raise AisecTransientError(f"could not stat {path!r}: {exc}") from exc
    if info.type == fs.FileType.NotFound:
        raise AisecInputError(f"data not found: {path}")
    if _is_csv(path):
        from pyarrow import csv

        try:
            with filesystem.open_input_stream(fs_path) as fh:
                table = csv.read_csv(fh, read_options=csv.ReadOptions(use_threads=True))
        except pa.ArrowInvalid as exc:
            raise AisecInputError(f"could not parse CSV {path}: {exc}") from exc
        return ColumnSource(name or path, table.schema, table.num_rows, lambda c: table.column(c))
    if info.type == fs.FileType.File and not is_remote(data):
        return _local_parquet_file(fs_path, name or path)
    import pyarrow.dataset as ds

    try:
        dataset = ds.dataset(fs_path, format="parquet", filesystem=filesystem)
        num_rows = dataset.count_rows()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise AisecInputError(f"could not read Parquet data {path}: {exc}") from exc

    def read(column: str) -> pa.ChunkedArray:
        return dataset.to_table(columns=[column], use_threads=True).column(0)

    return ColumnSource(name or path, dataset.schema, num_rows, read)


def _local_parquet_file(path: str, name: str) -> ColumnSource:
    """One local Parquet file: the footer is parsed once; each read opens its own reader (so worker
    threads read columns concurrently) and decodes on the calling thread (``use_threads=False``: the
    drift engine already runs one column per core; Arrow's pool on top only adds hand-offs)."""
    import pyarrow.parquet as pq

    try:
        metadata = pq.read_metadata(path)
        schema = metadata.schema.to_arrow_schema()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise AisecInputError(f"could not read Parquet data {path}: {exc}") from exc

    def read(column: str) -> pa.ChunkedArray:
        if column not in schema.names:
            raise AisecInputError(f"could not read column {column!r} of Parquet data {path}: no such column")
        try:
            table = pq.ParquetFile(path, metadata=metadata).read(columns=[column], use_threads=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise AisecInputError(f"could not read column {column!r} of Parquet data {path}: {exc}") from exc
        return table.column(0)

    return ColumnSource(name, schema, metadata.num_rows, read)


def _from_pandas(frame: Any, name: str) -> ColumnSource:
    labels = [str(c) for c in frame.columns]
    if len(set(labels)) != len(labels):
        dupes = sorted({n for n in labels if labels.count(n) > 1})
        raise AisecInputError(f"{name} has duplicate column name(s) {dupes[:10]}: cannot tell them apart")
    arrays: dict[str, pa.Array] = {}
    coerced: dict[str, str] = {}
    for col in frame.columns:
        series = frame[col]
        try:
            arrays[str(col)] = pa.array(series, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            kinds = sorted({type(v).__name__ for v in series.dropna()})
            coerced[str(col)] = "mixed value types (" + ", ".join(kinds) + ") coerced to strings"
            arrays[str(col)] = pa.array(series.map(lambda v: None if v is None or v != v else str(v)), type=pa.string())
    table = pa.table(arrays) if arrays else pa.table({})
    source = ColumnSource(name, table.schema, len(frame), lambda c: table.column(c))
    source.coerced = coerced
    return source


def count_rows(data: Any) -> int:
    """Number of rows at ``data`` (Parquet: from footers; CSV: parsed); 0 when the path does not exist."""
    try:
        return open_source(data).num_rows
    except AisecInputError as exc:
        if str(exc).startswith("data not found"):
            return 0
        raise
