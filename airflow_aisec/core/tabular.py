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

from airflow_aisec.exceptions import AisecInputError, AisecTransientError, AisecUndecidableError
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
    #: ``(start, stop) -> reader`` of rows ``[start, stop)`` only (Parquet: the row groups they span);
    #: ``None``: :meth:`rows` reads whole columns and slices them (CSV, in-memory tables).
    _row_reader: Any = field(repr=False, default=None)

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
        if name not in self.schema.names:
            raise AisecInputError(f"could not read column {name!r} of {self.name}: no such column")
        try:
            return self._reader(name)
        except OSError as exc:  # object storage / filesystem hiccup while reading
            raise AisecTransientError(f"could not read column {name!r} of {self.name}: {exc}") from exc

    def rows(self, start: int, stop: int) -> ColumnSource:
        """Rows ``[start, stop)`` (in stored order) as a source of their own. Parquet data, a file or a
        dataset of files, local or in object storage, reads only the row groups that the range spans, so
        memory and I/O follow the range, not the whole table."""
        if not 0 <= start <= stop <= self.num_rows:
            raise AisecInputError(f"rows [{start}, {stop}) are outside {self.name} ({self.num_rows} rows)")
        if self._row_reader is not None:
            try:
                ranged = self._row_reader(start, stop)
            except OSError as exc:  # object storage / filesystem hiccup while reading the footers
                raise AisecTransientError(f"could not read the row groups of {self.name}: {exc}") from exc
        else:

            def ranged(name: str) -> pa.ChunkedArray:
                return self._reader(name).slice(start, stop - start)

        def reader(name: str) -> pa.ChunkedArray:
            column = ranged(name)
            if len(column) != stop - start:  # fail closed: never test fewer rows than the range claims
                raise AisecUndecidableError(
                    f"{self.name}: {len(column)} value(s) of column {name!r} read for rows [{start}, {stop}) "
                    "(the data changed while it was being read?)"
                )
            return column

        part = ColumnSource(self.name, self.schema, stop - start, reader)
        part.coerced = dict(self.coerced)
        return part


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
        try:
            return dataset.to_table(columns=[column], use_threads=True).column(0)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise AisecInputError(f"could not read column {column!r} of Parquet data {path}: {exc}") from exc

    return ColumnSource(name or path, dataset.schema, num_rows, read, _row_reader=_dataset_rows(dataset, path))


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
        try:
            table = pq.ParquetFile(path, metadata=metadata).read(columns=[column], use_threads=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise AisecInputError(f"could not read column {column!r} of Parquet data {path}: {exc}") from exc
        return table.column(0)

    def row_reader(start: int, stop: int) -> Any:
        sizes = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
        groups, skip = spanned_row_groups(sizes, start, stop)

        def read_rows(column: str) -> pa.ChunkedArray:
            if not groups:
                return pa.chunked_array([], type=schema.field(column).type)
            try:
                file = pq.ParquetFile(path, metadata=metadata)
                table = file.read_row_groups(groups, columns=[column], use_threads=False)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise AisecInputError(f"could not read column {column!r} of Parquet data {path}: {exc}") from exc
            return table.column(0).slice(skip, stop - start)

        return read_rows

    return ColumnSource(name, schema, metadata.num_rows, read, _row_reader=row_reader)


def spanned_row_groups(sizes: list[int], start: int, stop: int) -> tuple[list[int], int]:
    """The row groups (of ``sizes`` rows each, in order) that rows ``[start, stop)`` span, and how many
    rows of the first one precede ``start``."""
    groups: list[int] = []
    skip = first = 0
    for i, size in enumerate(sizes):
        if first < stop and first + size > start:
            if not groups:
                skip = start - first
            groups.append(i)
        first += size
    return groups, skip


def _dataset_rows(dataset: Any, path: str) -> Any:
    """Row-range reader of a Parquet dataset: the files in the order the dataset lists them (the order
    of a whole read), each file's row groups from its footer; only the spanned row groups are read."""

    def row_reader(start: int, stop: int) -> Any:
        try:
            fragments = list(dataset.get_fragments())
            layout = [(f, [g.num_rows for g in f.row_groups]) for f in fragments]
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise AisecInputError(f"could not read Parquet data {path}: {exc}") from exc
        sizes = [size for _, groups in layout for size in groups]
        spanned, skip = spanned_row_groups(sizes, start, stop)
        wanted = set(spanned)
        pieces: list[Any] = []
        index = 0
        for fragment, groups in layout:
            ids = [i for i in range(len(groups)) if index + i in wanted]
            index += len(groups)
            if ids:
                pieces.append(fragment.subset(row_group_ids=ids))

        def read_rows(column: str) -> pa.ChunkedArray:
            field_type = dataset.schema.field(column).type
            try:  # decoded on the calling thread, as a single file is
                tables = [p.to_table(columns=[column], schema=dataset.schema, use_threads=False) for p in pieces]
                chunks = [chunk for table in tables for chunk in table.column(0).chunks]
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise AisecInputError(f"could not read column {column!r} of Parquet data {path}: {exc}") from exc
            return pa.chunked_array(chunks, type=field_type).slice(skip, stop - start)

        return read_rows

    return row_reader


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
