"""Partitioned drift: part profiles merge into the single-pass profile (same digest), partial window
statistics merge into the whole-window test (same statistics and p-values), and the KS statistic from
counts at the reference points equals ``scipy.stats.ks_2samp``."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_aisec.core import stats
from airflow_aisec.core.drift import DriftConfig, run_drift
from airflow_aisec.core.drift_partition import merge_partials, partial_drift, save_partial
from airflow_aisec.core.drift_profile import BuildOptions, build_profile, save_profile
from airflow_aisec.core.drift_profile.partition import (
    build_part_profile,
    merge_part_profiles,
    parse_partition,
    row_range,
)
from airflow_aisec.exceptions import AisecInputError

STAMP = "2026-01-01T00:00:00Z"
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))


def _table(draw_values: list[float], cats: list[str | None], ints: list[int]) -> pa.Table:
    return pa.table({"x": pa.array(draw_values, pa.float64()), "c": pa.array(cats, pa.string()), "i": ints})


SPECIAL = st.sampled_from([0.0, -0.0, 1.0, -1.0, 2.5, float("nan"), float("inf"), float("-inf")])
VALUES = st.one_of(SPECIAL, st.floats(-5, 5, allow_nan=False).map(lambda v: round(v, 1)))


@st.composite
def tables(draw, min_rows: int = 1) -> pa.Table:
    n = draw(st.integers(min_rows, 60))
    values = draw(st.lists(VALUES, min_size=n, max_size=n))
    cats = draw(st.lists(st.sampled_from(["a", "b", "c", None]), min_size=n, max_size=n))
    ints = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    return _table(values, cats, ints)


def test_parse_partition_and_row_ranges_tile():
    assert parse_partition("2/4") == (2, 4)
    for bad in ("0/4", "5/4", "x", "1/0", "3"):
        with pytest.raises(AisecInputError, match="partition"):
            parse_partition(bad)
    for total in (0, 1, 7, 100):
        for n in range(1, 9):
            ranges = [row_range(total, k, n) for k in range(1, n + 1)]
            assert ranges[0][0] == 0 and ranges[-1][1] == total
            assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))


@SETTINGS
@given(table=tables(), n_parts=st.integers(1, 8), exact_max=st.sampled_from([2, 5, 1000]), group=st.integers(1, 9))
def test_merged_profile_digest_equals_single_pass(tmp_path_factory, table, n_parts, exact_max, group):
    """Sorted runs merge exactly; where the single pass stores a grid, the grid built at the merge is it."""
    base = tmp_path_factory.mktemp("p")
    pq.write_table(table, base / "d.parquet", row_group_size=group)
    options = BuildOptions(exact_max=exact_max, grid_size=4, max_categories=3)
    single = save_profile(build_profile(base / "d.parquet", options=options, created_at=STAMP), base / "s.prof")
    parts = []
    for k in range(1, n_parts + 1):
        part = build_part_profile(base / "d.parquet", f"{k}/{n_parts}", options=options, created_at=STAMP)
        save_profile(part, base / f"p{k}.prof")
        parts.append(base / f"p{k}.prof")
    merged = save_profile(merge_part_profiles(parts[::-1]), base / "m.prof")
    assert merged == single
    assert (base / "m.prof").read_bytes() == (base / "s.prof").read_bytes()


def _partitioned(base, n_parts):
    paths = []
    for k in range(1, n_parts + 1):
        doc = partial_drift(base / "c.parquet", profile=base / "r.prof", partition=f"{k}/{n_parts}")
        save_partial(doc, base / f"part-{k}.json")
        paths.append(base / f"part-{k}.json")
    return merge_partials(paths[::-1])


def _features(report):
    out = {}
    for f in report.to_dict()["details"]["features"]:
        f = dict(f)
        effects = dict(f.pop("effect_sizes", None) or {})
        effects.pop("wasserstein_norm", None)  # not additive: not reported for a partitioned window
        mean = effects.pop("mean", None)
        out[f["name"]] = (f, effects, mean)
    return out


@SETTINGS
@given(ref=tables(), cur=tables(), n_parts=st.integers(1, 8), grid=st.booleans())
def test_merged_window_statistics_equal_whole_window(tmp_path_factory, ref, cur, n_parts, grid):
    base = tmp_path_factory.mktemp("w")
    pq.write_table(ref, base / "r.parquet")
    pq.write_table(cur, base / "c.parquet", row_group_size=7)
    options = BuildOptions(exact_max=3 if grid else 1000, grid_size=4)
    try:
        save_profile(build_profile(base / "r.parquet", options=options), base / "r.prof")
        whole = run_drift(base / "c.parquet", profile=base / "r.prof", config=DriftConfig(), workers=1)
    except Exception as exc:  # the whole window cannot be decided: neither can its partitions
        with pytest.raises(type(exc), match="."):
            _partitioned(base, n_parts)
        return
    merged = _partitioned(base, n_parts)
    assert merged.status == whole.status and merged.summary == whole.summary
    got, want = _features(merged), _features(whole)
    assert list(got) == list(want)
    for name, (f, effects, mean) in want.items():
        g, g_effects, g_mean = got[name]
        assert g == f, name  # statistic, p-values, corrected p-values, counts, null signal: identical
        assert g_effects == effects, name  # PSI, its p-value, JS, KS: identical
        assert (g_mean is None) == (mean is None) and (mean is None or g_mean == pytest.approx(mean, rel=1e-12))


@SETTINGS
@given(cur=tables(), n_parts=st.integers(1, 6), cuts=st.lists(st.integers(0, 60), max_size=3), group=st.integers(1, 9))
def test_a_window_of_many_files_merges_to_the_whole_window(tmp_path_factory, cur, n_parts, cuts, group):
    """The window as a directory of Parquet files (what a window at scale is): each partition reads the
    row groups of its own range, across file boundaries, and the merge equals the whole-window test."""
    base = tmp_path_factory.mktemp("d")
    rng = np.random.default_rng(5)
    pq.write_table(_table(list(rng.normal(0, 1, 40)), ["a", "b"] * 20, [0, 1, 2, 3] * 10), base / "r.parquet")
    save_profile(build_profile(base / "r.parquet", options=BuildOptions(exact_max=1000)), base / "r.prof")
    bounds = sorted({0, cur.num_rows, *(min(c, cur.num_rows) for c in cuts)})
    (base / "c.parquet").mkdir()  # a directory named like the file, for _partitioned
    for i, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False)):
        pq.write_table(cur.slice(a, b - a), base / "c.parquet" / f"{i:02d}.parquet", row_group_size=group)
    whole = run_drift(base / "c.parquet", profile=base / "r.prof", config=DriftConfig(), workers=1)
    merged = _partitioned(base, n_parts)
    assert merged.status == whole.status and merged.summary == whole.summary
    for name, (f, effects, _) in _features(whole).items():
        assert _features(merged)[name][:2] == (f, effects), name


@settings(max_examples=200, deadline=None)
@given(
    ref=st.lists(st.integers(-6, 6).map(float), min_size=1, max_size=40),
    cur=st.lists(st.integers(-8, 8).map(lambda v: v / 1.0), min_size=1, max_size=40),
)
def test_ks_from_counts_equals_scipy_with_ties(ref, cur):
    from scipy.stats import ks_2samp

    from airflow_aisec.core.drift_partition import _dense_cells

    r, c = np.sort(np.asarray(ref)), np.sort(np.asarray(cur))
    first = np.flatnonzero(np.concatenate(([True], r[1:] != r[:-1])))
    u, r_lt = r[first], first
    r_le = np.concatenate((first[1:], [r.size]))
    dense = _dense_cells(u, c)
    assert dense.min() >= 0
    assert dense.sum() == c.size
    # each cell by definition: between two points, at a point
    below = np.concatenate(([-np.inf], u))
    for i in range(u.size):
        assert dense[2 * i] == np.sum((c > below[i]) & (c < u[i]))
        assert dense[2 * i + 1] == np.sum(c == u[i])
    assert dense[-1] == np.sum(c > u[-1])
    cum = np.cumsum(dense)
    d = stats.ks_statistic_from_counts(r_lt, r_le, r.size, cum[0::2][: u.size], cum[1::2], c.size)
    expected = ks_2samp(r, c, method="asymp")
    assert d == float(expected.statistic)
    assert d == stats.ks_statistic_sorted(r, c)
    assert abs(stats.ks_pvalue(d, r.size, c.size)[1] - ks_2samp(r, c).pvalue) <= 1e-12


def test_a_part_profile_is_not_a_drift_reference(tmp_path):
    pq.write_table(_table([1.0, 2.0, 3.0], ["a", "b", "a"], [1, 2, 3]), tmp_path / "d.parquet")
    save_profile(build_part_profile(tmp_path / "d.parquet", "1/2"), tmp_path / "p.prof")
    with pytest.raises(AisecInputError, match="one partition of a profile"):
        run_drift(tmp_path / "d.parquet", profile=tmp_path / "p.prof")


def test_wasserstein_is_refused_for_a_partitioned_window(tmp_path):
    pq.write_table(_table([1.0, 2.0, 3.0, 4.0], ["a", "b", "a", "b"], [1, 2, 3, 4]), tmp_path / "d.parquet")
    save_profile(build_profile(tmp_path / "d.parquet"), tmp_path / "r.prof")
    with pytest.raises(AisecInputError, match="wasserstein needs the whole window"):
        partial_drift(
            tmp_path / "d.parquet",
            profile=tmp_path / "r.prof",
            partition="1/2",
            config=DriftConfig(methods={"x": "wasserstein"}),
        )


@pytest.mark.parametrize("top", [0, 1, 255, 256, 65_535, 65_536, 2**32 - 1, 2**32, 2**40])
def test_packed_arrays_round_trip_in_their_narrowest_type(top):
    from airflow_aisec.core.drift_partition import _pack, _unpack

    arr = np.array([0, 1, top, top // 2], dtype=np.int64)
    text = _pack(arr)
    expected = "<u1" if top < 256 else "<u2" if top < 65_536 else "<u4" if top < 2**32 else "<i8"
    assert text.startswith(expected + ":")
    np.testing.assert_array_equal(_unpack(text, "x"), arr)


def test_packed_arrays_of_the_earlier_form_still_read_and_odd_types_are_refused():
    import base64
    import zlib

    from airflow_aisec.core.drift_partition import _unpack
    from airflow_aisec.exceptions import AisecUndecidableError

    arr = np.array([3, 1, 4, 1, 5], dtype="<i8")
    legacy = base64.b64encode(zlib.compress(arr.tobytes())).decode()
    np.testing.assert_array_equal(_unpack(legacy, "x"), arr)
    with pytest.raises(AisecUndecidableError, match="type"):
        _unpack("<f8:" + legacy, "x")
    with pytest.raises(AisecUndecidableError, match="length"):
        _unpack("<u4:" + base64.b64encode(zlib.compress(b"abc")).decode(), "x")


def test_write_partial_advises_when_partitions_are_small_for_an_exact_profile(tmp_path):
    """Counting a partition at every distinct reference value pays only when the partition is much larger
    than the profile: the report says so (and the statistics are written either way)."""
    from airflow_aisec.core.drift_partition import write_partial

    rng = np.random.default_rng(7)
    pq.write_table(pa.table({"x": rng.normal(size=1500), "i": rng.integers(0, 5, 1500)}), tmp_path / "r.parquet")
    pq.write_table(pa.table({"x": rng.normal(size=40_000), "i": rng.integers(0, 5, 40_000)}), tmp_path / "c.parquet")
    save_profile(build_profile(tmp_path / "r.parquet"), tmp_path / "r.prof")
    small = write_partial(
        tmp_path / "c.parquet", profile=tmp_path / "r.prof", partition="1/40", output=tmp_path / "a.json"
    )
    advice = small.details["partial"]["advice"]
    assert small.status.value == "pass" and (tmp_path / "a.json").is_file()
    assert "1 KS feature(s)" in advice and "1,500 distinct reference values" in advice and "1,000 rows" in advice
    large = write_partial(
        tmp_path / "c.parquet", profile=tmp_path / "r.prof", partition="1/2", output=tmp_path / "b.json"
    )
    assert "advice" not in large.details["partial"] and large.metrics["n_rows_current"] == 20_000


@pytest.mark.parametrize("values", [[0.5, 1.0, 2.0, 3.5], [0.5, 1.0, 1.0, 2.0, 2.0, 2.0, 3.5], [1.0], []])
def test_ks_points_with_and_without_ties(values):
    """The distinct-values fast path gives the ranks the general path gives."""
    from airflow_aisec.core.drift_partition import ks_points, ks_values
    from airflow_aisec.core.drift_profile import ColumnProfile

    arr = np.asarray(values, dtype=np.float64)
    u, lt, le = ks_points(ColumnProfile("x", {}, {"values": arr}))
    expected = np.unique(arr)
    np.testing.assert_array_equal(u, expected)
    np.testing.assert_array_equal(lt, np.searchsorted(arr, expected, "left"))
    np.testing.assert_array_equal(le, np.searchsorted(arr, expected, "right"))
    np.testing.assert_array_equal(ks_values(ColumnProfile("x", {}, {"values": arr})), expected)
