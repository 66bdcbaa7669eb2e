"""Drift engine: bad columns, decisions, profile storage and integrity, readers."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_aisec.core.drift import DriftConfig, build_and_save_profile, parse_methods, run_drift
from airflow_aisec.core.drift_html import render_html
from airflow_aisec.core.drift_profile import BuildOptions, build_profile, load_profile, save_profile
from airflow_aisec.core.tabular import count_rows, open_source
from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError
from airflow_aisec.report import validate

N = 2000


def _frames(seed: int = 2):
    rng = np.random.default_rng(seed)
    ref = pd.DataFrame(
        {
            "num": rng.normal(size=N),
            "ints": rng.integers(0, 4, N),
            "cat": rng.choice(["a", "b", "c"], N),
            "const": np.full(N, 3.0),
            "when": pd.date_range("2024-01-01", periods=N, freq="h"),
            "empty": [None] * N,
            "mixed": [1, "a"] * (N // 2),
            "nans": np.full(N, np.nan),
            "ids": [f"id-{i}" for i in range(N)],
            "lists": [[1, 2]] * N,
            "flag": rng.random(N) < 0.3,
            "gone": rng.normal(size=N),
        }
    )
    cur = ref.sample(frac=1.0, random_state=1).reset_index(drop=True).drop(columns=["gone"])
    cur["num"] = rng.normal(size=N)
    return ref, cur


def _features(report):
    return {f["name"]: f for f in report.to_dict()["details"]["features"]}


def test_bad_columns_get_a_status_and_reason_never_a_crash():
    ref, cur = _frames()
    report = run_drift(cur, reference=ref)
    data = validate(report.to_dict())
    f = _features(report)
    assert f["num"]["method"] == "ks"
    assert f["num"]["status"] == "ok"
    assert f["ints"]["method"] == "chi2"  # low-cardinality integers
    assert f["cat"]["method"] == "chi2"
    assert f["flag"]["method"] == "chi2"
    assert (f["const"]["status"], f["const"]["method"]) == ("derived", "chi2")
    assert "constant" in f["const"]["reason"]
    assert (f["when"]["status"], f["when"]["method"]) == ("derived", "ks")
    assert "datetime" in f["when"]["reason"]
    assert f["mixed"]["status"] == "derived"
    assert "mixed value types" in f["mixed"]["reason"]
    assert f["empty"]["status"] == "skipped"
    assert f["nans"]["status"] == "skipped"
    assert "no finite values" in f["nans"]["reason"]
    assert f["ids"]["status"] == "skipped"
    assert "high cardinality" in f["ids"]["reason"]
    assert f["lists"]["status"] == "skipped"
    assert "unsupported type" in f["lists"]["reason"]
    assert f["gone"]["status"] == "missing"
    assert any(x["id"] == "AISEC-DRIFT-MISSING-COLUMN" and x["location"] == "gone" for x in data["findings"])
    assert data["metrics"]["n_features"] == 12
    # only the missing column counts as drift here, and a missing expected column fails closed
    assert data["details"]["dataset"]["drifted_features"] == ["gone"]
    assert data["details"]["dataset"]["unusable_features"] == ["gone"]
    assert data["status"] == "fail"


def test_shift_new_category_and_null_rate_are_detected():
    ref, cur = _frames()
    cur["num"] = cur["num"] + 0.5
    cur.loc[: N // 2, "cat"] = "zzz"
    cur.loc[: N // 4, "ints"] = None
    report = run_drift(cur.drop(columns=["mixed"]), reference=ref.drop(columns=["gone", "mixed"]))
    f = _features(report)
    assert f["num"]["status"] == "drifted"
    assert f["num"]["p_corrected"] < 0.05
    assert f["cat"]["new_categories"] == ["zzz"]
    assert f["ints"]["drifted"]
    assert any("null rate" in r for r in f["ints"]["drift_reasons"])
    assert f["ints"]["null_rate"] == pytest.approx((N // 4 + 1) / N)
    ids = {x.id for x in report.findings}
    assert {"AISEC-DRIFT-FEATURE", "AISEC-DRIFT-NEW-CATEGORY"} <= ids


def test_dataset_rule_share_and_critical_features():
    rng = np.random.default_rng(4)
    ref = pd.DataFrame({k: rng.normal(size=N) for k in "abcd"})
    cur = pd.DataFrame({k: rng.normal(size=N) for k in "abcd"})
    cur["a"] += 1
    r1 = run_drift(cur, reference=ref, config=DriftConfig(drift_share=0.5))
    assert r1.status == "warn"
    assert r1.metrics["drift_share"] == pytest.approx(0.25)
    r2 = run_drift(cur, reference=ref, config=DriftConfig(drift_share=0.25))
    assert r2.status == "fail"
    r3 = run_drift(cur, reference=ref, config=DriftConfig(critical_features=("a",)))
    assert r3.status == "fail"
    assert r3.to_dict()["details"]["dataset"]["critical_drifted"] == ["a"]
    assert any(x.id == "AISEC-DRIFT-DATASET" and x.severity == "high" for x in r3.findings)
    same = run_drift(ref, reference=ref, config=DriftConfig(correction="bonferroni"))
    assert same.status == "pass"
    assert same.metrics["n_drifted"] == 0


def test_method_overrides_and_effect_sizes():
    rng = np.random.default_rng(6)
    ref = pd.DataFrame({"x": rng.normal(size=N), "y": rng.normal(size=N), "z": rng.normal(size=N)})
    cur = ref + 2.0
    config = DriftConfig(methods=parse_methods(["x=psi", "y=js", "z=wasserstein"]))
    f = _features(run_drift(cur, reference=ref, config=config))
    assert (f["x"]["method"], f["y"]["method"], f["z"]["method"]) == ("psi", "js", "wasserstein")
    assert f["y"]["p_value"] is None
    assert f["y"]["threshold"] == 0.1
    assert f["z"]["statistic"] == pytest.approx(2.0, rel=0.05)  # W1 / std of a 2-sigma shift
    assert all(f[k]["status"] == "drifted" for k in "xyz")
    assert set(f["x"]["effect_sizes"]) >= {"psi", "psi_p_value", "js", "wasserstein_norm"}
    with pytest.raises(AisecInputError, match="must look like COLUMN=METHOD"):
        parse_methods(["x"])
    with pytest.raises(AisecInputError, match="not in"):
        DriftConfig(methods={"x": "magic"})
    with pytest.raises(AisecInputError, match="does not apply to categorical"):
        run_drift(
            pd.DataFrame({"c": ["a"] * 5}),
            reference=pd.DataFrame({"c": ["a", "b"] * 5}),
            config=DriftConfig(methods={"c": "ks"}),
        )


def test_empty_window_and_untestable_data_are_errors():
    ref, cur = _frames()
    with pytest.raises(AisecUndecidableError, match="has no rows"):
        run_drift(cur.iloc[:0], reference=ref)
    with pytest.raises(AisecUndecidableError, match="no column of .* could be tested"):
        run_drift(pd.DataFrame({"e": [None] * 5}), reference=pd.DataFrame({"e": [None] * 5}))
    with pytest.raises(AisecInputError, match="exactly one of profile= or reference="):
        run_drift(cur)
    with pytest.raises(AisecInputError, match="data not found"):
        run_drift("/nonexistent/window.parquet", reference=ref)
    with pytest.raises(AisecInputError, match="drift_share must be in"):
        DriftConfig(drift_share=0)


def test_type_change_is_a_high_finding():
    ref = pd.DataFrame({"x": np.arange(100.0), "y": np.arange(100.0)})
    cur = pd.DataFrame({"x": [str(i) for i in range(100)], "y": np.arange(100.0)})
    report = run_drift(cur, reference=ref)
    assert _features(report)["x"]["status"] == "type_changed"
    assert any(f.id == "AISEC-DRIFT-TYPE-CHANGED" and f.severity == "high" for f in report.findings)


def test_profile_round_trip_exact_and_grid_and_same_verdicts(tmp_path):
    ref, cur = _frames()
    cur["num"] += 0.3
    path = tmp_path / "ref.prof"
    report = build_and_save_profile(ref, path).to_dict()
    digest = report["details"]["profile"]["digest"]
    assert digest.startswith("sha256:")
    assert [p.name for p in tmp_path.iterdir()] == ["ref.prof"]  # atomic: no temp file left
    warm = run_drift(cur, profile=path, expected_digest=digest).to_dict()
    cold = run_drift(cur, reference=ref).to_dict()
    strip = lambda r: [(f["name"], f["status"], f.get("statistic"), f.get("p_value")) for f in r["details"]["features"]]  # noqa: E731
    assert strip(warm) == strip(cold)
    assert warm["details"]["profile"]["digest"] == digest
    grid = build_profile(ref, options=BuildOptions(exact_max=100, grid_size=64))
    save_profile(grid, tmp_path / "grid.prof")
    loaded = load_profile(tmp_path / "grid.prof")
    assert loaded.columns["num"].meta["storage"] == "grid"
    gf = _features(run_drift(cur, profile=loaded))["num"]
    assert gf["statistic_bounds"][0] <= gf["statistic"] <= gf["statistic_bounds"][1]
    assert gf["p_value_bounds"][0] <= gf["p_value"] <= gf["p_value_bounds"][1]
    assert gf["status"] == "drifted"


def test_tampered_truncated_or_unexpected_profiles_fail_closed(tmp_path):
    ref, _ = _frames()
    path = tmp_path / "ref.prof"
    digest = save_profile(build_profile(ref[["num", "cat"]]), path)
    raw = path.read_bytes()
    (tmp_path / "payload.prof").write_bytes(raw[:-8] + bytes(8))
    with pytest.raises(AisecUndecidableError, match="payload hash mismatch"):
        load_profile(tmp_path / "payload.prof")
    (tmp_path / "header.prof").write_bytes(raw.replace(b'"n_null":0', b'"n_null":9', 1))
    with pytest.raises(AisecUndecidableError, match="header digest mismatch"):
        load_profile(tmp_path / "header.prof")
    (tmp_path / "short.prof").write_bytes(raw[:-100])
    with pytest.raises(AisecUndecidableError, match="truncated"):
        load_profile(tmp_path / "short.prof")
    (tmp_path / "huge-header.prof").write_bytes(raw[:23] + (2**62).to_bytes(8, "little") + raw[31:])
    with pytest.raises(AisecUndecidableError, match="header longer than the file"):
        load_profile(tmp_path / "huge-header.prof")
    (tmp_path / "junk.prof").write_bytes(b"PAR1 not a profile")
    with pytest.raises(AisecUndecidableError, match="bad magic"):
        load_profile(tmp_path / "junk.prof")
    with pytest.raises(AisecUndecidableError, match="refusing to use it"):
        load_profile(path, expected_digest="sha256:" + "0" * 64)
    with pytest.raises(AisecInputError, match="reference profile not found"):
        load_profile(tmp_path / "absent.prof")
    assert load_profile(path, expected_digest=digest).digest == digest


def test_parquet_directory_csv_and_row_counts(tmp_path):
    rng = np.random.default_rng(8)
    table = pa.table({"x": rng.normal(size=500), "c": rng.choice(["u", "v"], 500)})
    (tmp_path / "dir").mkdir()
    pq.write_table(table.slice(0, 200), tmp_path / "dir" / "part-0.parquet")
    pq.write_table(table.slice(200), tmp_path / "dir" / "part-1.parquet")
    table.to_pandas().to_csv(tmp_path / "w.csv", index=False)
    assert count_rows(str(tmp_path / "dir")) == 500
    assert count_rows(str(tmp_path / "w.csv")) == 500
    assert count_rows(str(tmp_path / "missing.parquet")) == 0
    assert open_source(f"file://{tmp_path / 'dir'}").num_rows == 500
    report = run_drift(str(tmp_path / "w.csv"), reference=str(tmp_path / "dir"))
    assert report.status == "pass"
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(AisecInputError, match="could not read Parquet"):
        open_source(str(tmp_path / "bad.parquet"))


def test_html_report_is_self_contained(tmp_path):
    ref, cur = _frames()
    cur["num"] += 1
    html = render_html(run_drift(cur, reference=ref).to_dict())
    assert "<svg" in html
    assert "num" in html
    assert "drifted" in html
    assert "<script" not in html
    assert "http" not in html.replace("http://www.w3.org", "")
    assert os.linesep in html or "\n" in html


def test_warm_run_with_tampered_payload_fails_closed(tmp_path):
    ref, cur = _frames()
    path = tmp_path / "ref.prof"
    save_profile(build_profile(ref[["num"]]), path)
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 0x01  # flip one bit of the last stored float
    path.write_bytes(bytes(raw))
    with pytest.raises(AisecUndecidableError, match="payload hash mismatch"):
        run_drift(cur, profile=path, workers=2)


def test_column_all_null_in_the_window_is_drift_by_null_rate():
    rng = np.random.default_rng(9)
    ref = pd.DataFrame({"x": rng.normal(size=500), "c": rng.choice(["a", "b"], 500), "ok": rng.normal(size=500)})
    cur = pd.DataFrame({"x": np.full(500, np.nan), "c": [None] * 500, "ok": rng.normal(size=500)})
    f = _features(run_drift(cur, reference=ref))
    for name in ("x", "c"):
        assert f[name]["drifted"] is True
        assert f[name]["null_rate"] == 1.0
        assert f[name]["reason"].startswith("no ")  # "no finite values" / "no non-null values" in current window
    assert f["ok"]["status"] == "ok"


def test_sorted_finite_splits_nan_and_infinities_off_one_sort():
    from airflow_aisec.core.drift_profile import sorted_finite

    values = np.array([3.0, np.nan, -np.inf, 1.0, np.inf, np.nan, 2.0, -np.inf, np.inf, np.inf])
    finite, n_nan, n_posinf, n_neginf = sorted_finite(values)
    assert finite.tolist() == [1.0, 2.0, 3.0]
    assert (n_nan, n_posinf, n_neginf) == (2, 3, 2)
    clean = np.array([2.0, -1.0, 0.5])
    assert sorted_finite(clean)[0].tolist() == [-1.0, 0.5, 2.0]
    assert clean.tolist() == [2.0, -1.0, 0.5]  # input untouched
    assert sorted_finite(np.array([np.nan, np.nan]))[0].size == 0
    assert sorted_finite(np.empty(0))[1:] == (0, 0, 0)


def test_loaded_profile_arrays_are_aligned_read_only_and_v1_profiles_still_verify(tmp_path):
    import hashlib
    import json
    import struct

    from airflow_aisec.core.drift_profile import storage as prof_mod

    ref, cur = _frames()
    path = tmp_path / "ref.prof"
    save_profile(build_profile(ref[["num", "ints"]]), path)
    loaded = load_profile(path)
    values = loaded.columns["num"].arrays["values"]
    assert values.flags.aligned and not values.flags.writeable
    assert np.array_equal(values, np.sort(ref["num"].to_numpy()))
    # a v1 profile (payload hashed with SHA-256) written by an earlier release is still verified
    raw = path.read_bytes()
    start = len(prof_mod.MAGIC) + 8
    (header_len,) = struct.unpack_from("<Q", raw, len(prof_mod.MAGIC))
    header = json.loads(raw[start : start + header_len])
    payload = raw[prof_mod._payload_start(header_len, prof_mod.FORMAT) :]  # v2 pads the header
    header.pop("digest")
    header.pop("payload_hash")
    header.update(format=prof_mod.FORMAT_V1, payload_sha256=hashlib.sha256(payload).hexdigest())
    header["digest"] = "sha256:" + hashlib.sha256(prof_mod._canonical(header)).hexdigest()
    encoded = prof_mod._canonical(header)
    v1 = prof_mod.MAGIC + struct.pack("<Q", len(encoded)) + encoded + payload
    (tmp_path / "v1.prof").write_bytes(v1)
    assert np.array_equal(load_profile(tmp_path / "v1.prof").columns["num"].arrays["values"], values)
    (tmp_path / "v1-bad.prof").write_bytes(v1[:-1] + bytes([v1[-1] ^ 1]))
    with pytest.raises(AisecUndecidableError, match="payload hash mismatch"):
        run_drift(cur, profile=tmp_path / "v1-bad.prof")


def test_profile_payload_read_failure_reaches_every_waiter(tmp_path):
    """A streamed payload (object storage, v1 layout) that ends early fails the test, not a hang."""
    from airflow_aisec.core.drift_profile import storage as prof_mod

    ref, _ = _frames()
    path = tmp_path / "ref.prof"
    save_profile(build_profile(ref[["num"]]), path)
    header_bytes, fh, file_size = prof_mod._open_profile_file(str(path))
    start = prof_mod._payload_start(len(header_bytes), prof_mod.FORMAT)
    size = file_size - start
    fh.seek(start)

    class ShortRead:  # the file shrinks under the reader after its size was taken
        def __init__(self, inner, limit):
            self.inner, self.left = inner, limit

        def readinto(self, view):
            n = self.inner.readinto(view[: max(0, min(len(view), self.left))])
            self.left -= n
            return n

        def read(self, n):
            return b""

        def close(self):
            self.inner.close()

    loader = prof_mod._PayloadLoader(
        prof_mod._aligned_empty(size), prof_mod._payload_hasher(), str(path), source=ShortRead(fh, size // 2)
    )
    loader.run()
    loader.wait_for(size // 4)  # bytes that did arrive are usable
    with pytest.raises(AisecUndecidableError, match="truncated or changed while being read"):
        loader.wait_for(size)
    with pytest.raises(AisecUndecidableError, match="truncated or changed while being read"):
        loader.hexdigest()


def test_memory_mapped_profile_written_during_use_or_with_padding_tampered_fails_closed(tmp_path):
    from airflow_aisec.core.drift_profile import storage as prof_mod

    ref, cur = _frames()
    path = tmp_path / "ref.prof"
    save_profile(build_profile(ref[["num"]]), path)
    profile, verify = prof_mod.open_profile(path, background=False)  # hashed before the write below
    assert profile.columns["num"].arrays["values"].flags.aligned
    with open(path, "r+b") as fh:  # same bytes, written in place while the profile is in use
        fh.seek(-8, os.SEEK_END)
        last = fh.read(8)
        fh.seek(-8, os.SEEK_END)
        fh.write(last)
    with pytest.raises(AisecUndecidableError, match="changed while in use"):
        verify()
    raw = bytearray(path.read_bytes())
    header_end = len(prof_mod.MAGIC) + 8 + int.from_bytes(raw[len(prof_mod.MAGIC) : len(prof_mod.MAGIC) + 8], "little")
    assert prof_mod._payload_start(header_end - len(prof_mod.MAGIC) - 8, prof_mod.FORMAT) > header_end  # padded
    raw[header_end] = 1
    (tmp_path / "pad.prof").write_bytes(bytes(raw))
    with pytest.raises(AisecUndecidableError, match="non-zero header padding"):
        load_profile(tmp_path / "pad.prof")


def test_local_parquet_file_with_row_groups_reads_like_the_dataframe(tmp_path):
    ref, cur = _frames()
    cols = ["num", "ints", "cat", "flag"]
    pq.write_table(pa.Table.from_pandas(cur[cols]), tmp_path / "w.parquet", row_group_size=300)
    assert pq.ParquetFile(tmp_path / "w.parquet").num_row_groups > 1
    source = open_source(str(tmp_path / "w.parquet"))
    assert source.num_rows == N
    assert source.read_column("num").to_numpy().tolist() == cur["num"].tolist()
    from_file = _features(run_drift(str(tmp_path / "w.parquet"), reference=ref[cols]))
    from_frame = _features(run_drift(cur[cols], reference=ref[cols]))
    assert {k: (v["statistic"], v["p_value"]) for k, v in from_file.items()} == {
        k: (v["statistic"], v["p_value"]) for k, v in from_frame.items()
    }
    with pytest.raises(AisecInputError, match="could not read column 'nope'"):
        source.read_column("nope")


def test_the_former_profile_module_path_still_exports_the_drift_profile():
    from airflow_aisec.core import drift_profile, profile

    assert profile.load_profile is drift_profile.load_profile and profile.BuildOptions is BuildOptions
    assert set(profile.__all__) <= set(drift_profile.__all__)


def test_rank_grid_counts_are_exact_at_every_knot():
    from airflow_aisec.core.drift_profile import rank_grid

    values = np.sort(np.array([1.0, 1.0, 2.0, 3.0, 3.0, 3.0, 5.0, 8.0]))
    knots, lt, le, bound = rank_grid(values, 3)
    assert knots.tolist() == [1.0, 3.0, 8.0]
    assert lt.tolist() == [int((values < k).sum()) for k in knots]
    assert le.tolist() == [int((values <= k).sum()) for k in knots]
    assert bound == max(lt[1:] - le[:-1]) / values.size


def test_columns_tested_on_threads_import_scipy_safely(tmp_path):
    """Fresh processes: the first columns tested at once on threads import scipy lazily without deadlock."""
    import subprocess
    import sys

    data = tmp_path / "d.csv"
    rows = "".join(f"{i},{i % 3},{['a', 'b', 'c'][i % 3]},{i * 2},{['x', 'y'][i % 2]}\n" for i in range(60))
    data.write_text("n1,n2,c1,n3,c2\n" + rows, encoding="utf-8")
    code = (
        "import sys; from airflow_aisec.core.drift import run_drift; "
        "r = run_drift(sys.argv[1], reference=sys.argv[1], workers=4); print(r.status)"
    )
    for _ in range(3):  # the race needs several threads starting imports together; try a few processes
        out = subprocess.run([sys.executable, "-c", code, str(data)], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        assert out.stdout.strip() == "pass"
