"""core/tabular and the profile store take object storage as an already-opened path object (the
operator builds it from its connection): core never resolves credentials itself."""

from __future__ import annotations

import io
import uuid

import numpy as np
import pandas as pd
import pytest
from upath import UPath

from airflow_aisec.core.drift import build_and_save_profile, run_drift
from airflow_aisec.core.profile import load_profile
from airflow_aisec.core.tabular import count_rows, is_opened, open_source
from airflow_aisec.exceptions import AisecInputError


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
