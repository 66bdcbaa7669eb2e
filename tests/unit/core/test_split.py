from __future__ import annotations

import hashlib
import subprocess
import sys

import pandas as pd
import pytest

from airflow_aisec.core.split import split_dataset, split_digests, split_frame
from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    from sklearn.datasets import load_wine

    return load_wine(as_frame=True).frame


def run(frame, out, seed, **kw):
    return split_dataset(frame, output_dir=out, seed=seed, stratify_column="target", **kw)


def test_same_seed_gives_identical_digests_different_seed_different(frame, tmp_path):
    a = run(frame, tmp_path / "a", 7, validation_size=0.1)
    b = run(frame, tmp_path / "b", 7, validation_size=0.1)
    c = run(frame, tmp_path / "c", 8, validation_size=0.1)
    assert split_digests(a.to_dict()) == split_digests(b.to_dict())
    assert set(split_digests(a.to_dict())) == {"train", "test", "validation"}
    assert all(split_digests(a.to_dict())[k] != split_digests(c.to_dict())[k] for k in ("train", "test", "validation"))


def test_split_files_and_report_agree(frame, tmp_path):
    report = run(frame, tmp_path, 3, test_size=0.25)
    assert report.status == "pass"
    splits = report.details["splits"]
    assert splits["train"]["rows"] + splits["test"]["rows"] == len(frame)
    for s in splits.values():
        assert hashlib.sha256(open(s["path"], "rb").read()).hexdigest() == s["sha256"]
        back = pd.read_parquet(s["path"])
        assert len(back) == s["rows"]
        assert set(back.columns) == set(frame.columns)
    # stratified: class shares within 2 points of the whole
    whole = frame["target"].value_counts(normalize=True)
    for label, share in splits["test"]["class_balance"]["shares"].items():
        assert abs(share - whole[int(label)]) < 0.02
    assert report.details["parameters"]["seed"] == 3
    train = pd.read_parquet(splits["train"]["path"])
    test = pd.read_parquet(splits["test"]["path"])
    assert len(pd.concat([train, test]).drop_duplicates()) == len(frame)  # a partition, no row lost


def test_digests_are_identical_across_processes(frame, tmp_path):
    code = (
        "import sys; from sklearn.datasets import load_wine; from airflow_aisec.core.split import split_dataset;"
        "r = split_dataset(load_wine(as_frame=True).frame, output_dir=sys.argv[1], seed=11, stratify_column='target');"
        "print(r.details['splits']['train']['sha256'])"
    )
    other = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "p")], capture_output=True, text=True, check=True
    )
    here = run(frame, tmp_path / "h", 11)
    assert other.stdout.strip() == here.details["splits"]["train"]["sha256"]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"seed": -1, "test_size": 0.2}, AisecInputError, "seed must be an integer"),
        ({"seed": 1, "test_size": 1.5}, AisecInputError, "test_size must be a fraction"),
        ({"seed": 1, "test_size": 0.5, "validation_size": 0.5}, AisecInputError, "validation_size"),
        ({"seed": 1, "test_size": 0.2, "stratify_column": "nope"}, AisecInputError, "stratify column 'nope'"),
    ],
)
def test_bad_parameters_name_the_input(frame, kwargs, error, match):
    with pytest.raises(error, match=match):
        split_frame(frame, **kwargs)


def test_unsplittable_data_fails_closed():
    with pytest.raises(AisecUndecidableError, match="cannot split"):
        split_frame(pd.DataFrame({"x": [1, 2, 3, 4], "y": [0, 0, 0, 1]}), seed=1, test_size=0.5, stratify_column="y")
    with pytest.raises(AisecUndecidableError, match="2 row"):
        split_frame(pd.DataFrame({"x": [1, 2]}), seed=1, test_size=0.5)
