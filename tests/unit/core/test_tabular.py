"""core/tabular and the profile store take object storage as an already-opened path object (the
operator builds it from its connection): core never resolves credentials itself."""

from __future__ import annotations

import io
import uuid
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from upath import UPath

from airflow_aisec.core.drift import build_and_save_profile, run_drift
from airflow_aisec.core.profile import load_profile
from airflow_aisec.core.tabular import ColumnSource, count_rows, is_opened, open_source
from airflow_aisec.exceptions import AisecInputError, AisecTransientError, AisecUndecidableError


@pytest.fixture
def memory_dir():
    import fsspec

    base = f"memory://aisec-tabular-{uuid.uuid4().hex[:8]}"
    fs = fsspec.filesystem("memory")
    rng = np.random.default_rng(3)
    for name, shift in (("ref.parquet", 0.0), ("cur.parquet", 2.0)):
        buf = io.BytesIO()
        pd.DataFrame({"x": rng.normal(shift, 1, 500), "y": rng.normal(0, 1, 500)}).to_parquet(buf, index=False)
        fs.pipe(f"{base}/{name}".removeprefix("memory://"), buf.getvalue())
    fs.pipe(f"{base}/t.csv".removeprefix("memory://"), b"a,b\n1,2\n3,4\n")
    return UPath(base)


def test_opened_paths_are_read_with_their_own_filesystem(memory_dir):
    ref = memory_dir / "ref.parquet"
    assert is_opened(ref) and not is_opened(str(ref))
    source = open_source(ref)
    assert source.num_rows == 500 and source.columns == ["x", "y"]
    assert source.read_column("x").length() == 500
    assert count_rows(memory_dir / "t.csv") == 2
    assert count_rows(memory_dir / "missing.parquet") == 0


def test_profile_round_trip_and_drift_on_opened_paths(memory_dir):
    report = build_and_save_profile(memory_dir / "ref.parquet", memory_dir / "ref.prof")
    digest = report.details["profile"]["digest"]
    assert load_profile(memory_dir / "ref.prof", expected_digest=digest).digest == digest
    drift = run_drift(memory_dir / "cur.parquet", profile=memory_dir / "ref.prof", expected_digest=digest)
    assert drift.status == "fail" and drift.details["dataset"]["drifted_features"] == ["x"]


def test_bare_strings_follow_the_uri_rules(tmp_path):
    pd.DataFrame({"x": [1, 2, 3]}).to_parquet(tmp_path / "a.parquet")
    assert open_source(f"FILE://{tmp_path / 'a.parquet'}").num_rows == 3
    for bad, message in (("s3:/b/a.parquet", "malformed URI"), ("ftp://h/a.parquet", "unsupported storage scheme")):
        with pytest.raises(AisecInputError, match=message):
            open_source(bad)


def _write_files(base, sizes_and_groups):
    """One Parquet file per ``(rows, row_group_size)``, values numbering the rows in listing order."""
    base.mkdir(parents=True, exist_ok=True)
    first = 0
    for i, (rows, group) in enumerate(sizes_and_groups):
        values = pa.array(np.arange(first, first + rows, dtype=np.float64))
        pq.write_table(
            pa.table({"x": values, "k": pa.array([f"c{v % 3}" for v in range(rows)], pa.string())}),
            base / f"part-{i:03d}.parquet",
            row_group_size=group,
        )
        first += rows
    return first


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    layout=st.lists(st.tuples(st.integers(0, 30), st.integers(1, 8)), min_size=1, max_size=5),
    data=st.data(),
)
def test_row_ranges_of_files_and_datasets_read_like_a_slice_of_the_whole(tmp_path_factory, layout, data):
    base = tmp_path_factory.mktemp("rows")
    total = _write_files(base / "dir", layout)
    sources = [open_source(base / "dir")]  # a dataset of files
    pq.write_table(pq.read_table(base / "dir"), base / "one.parquet", row_group_size=layout[0][1])
    sources.append(open_source(base / "one.parquet"))  # one file
    sources.append(open_source(pq.read_table(base / "dir")))  # in memory: whole and sliced
    start = data.draw(st.integers(0, total))
    stop = data.draw(st.integers(start, total))
    for source in sources:
        assert source.num_rows == total
        part = source.rows(start, stop)
        assert part.num_rows == stop - start
        for name in ("x", "k"):
            assert part.read_column(name).to_pylist() == source.read_column(name).slice(start, stop - start).to_pylist()
        with pytest.raises(AisecInputError, match="nope"):
            part.read_column("nope")


def test_a_row_range_reads_only_the_files_it_spans(tmp_path):
    """A partition of a dataset opens the data of its own files only (footers aside): memory and I/O
    follow the partition, not the window."""
    from fsspec.implementations.local import LocalFileSystem

    class Recording(LocalFileSystem):
        cachable = False
        opened: list[str] = []

        def _open(self, path, mode="rb", **kwargs):
            self.opened.append(str(path).rsplit("/", 1)[-1])
            return super()._open(path, mode=mode, **kwargs)

    _write_files(tmp_path / "dir", [(10, 4), (10, 4), (10, 4), (10, 4)])
    opened_path = SimpleNamespace(fs=Recording(), path=str(tmp_path / "dir"))
    source = open_source(opened_path)
    part = source.rows(12, 25)  # rows of the second and third files
    Recording.opened.clear()
    assert part.read_column("x").to_pylist() == [float(v) for v in range(12, 25)]
    assert set(Recording.opened) == {"part-001.parquet", "part-002.parquet"}
    with pytest.raises(AisecInputError, match=r"rows \[5, 41\) are outside"):
        source.rows(5, 41)


def test_a_dataset_that_changes_under_a_row_range_fails_closed(tmp_path):
    """A file rewritten with fewer rows between opening and reading: an error (retried, or refused),
    never a range that silently tests fewer rows than it claims."""
    _write_files(tmp_path / "dir", [(10, 4), (10, 4)])
    source = open_source(tmp_path / "dir")
    short = pa.table({"x": pa.array([1.0] * 5), "k": pa.array(["a"] * 5)})
    pq.write_table(short, tmp_path / "dir" / "part-001.parquet")
    with pytest.raises((AisecTransientError, AisecUndecidableError)):
        source.rows(8, 20).read_column("x")
    # whatever the storage, a reader returning fewer values than the range is refused
    lying = ColumnSource("t", pa.schema([("x", pa.float64())]), 20, None, _row_reader=lambda a, b: lambda c: short["x"])
    with pytest.raises(AisecUndecidableError, match=r"5 value\(s\) of column 'x' read for rows \[8, 20\)"):
        lying.rows(8, 20).read_column("x")
