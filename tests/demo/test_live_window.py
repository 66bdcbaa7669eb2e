"""Simulated live windows (drift and poisoning drills)."""

from __future__ import annotations

import hashlib

import pytest
from aisec_demo import live_window as lw

from airflow_aisec.exceptions import AisecInputError


@pytest.fixture(scope="module")
def reference():
    return lw.bundled_reference("breast_cancer")


def test_window_without_shift_is_a_deterministic_sample(reference):
    a, labelled, info = lw.simulate_window(reference, rows=100, seed=3)
    b, _, _ = lw.simulate_window(reference, rows=100, seed=3)
    assert a.equals(b)
    assert "target" not in a.columns
    assert len(labelled) == 50
    assert "target" in labelled.columns
    assert info["shifted_features"] == []
    assert a["mean radius"].isin(reference["mean radius"]).all()


def test_shift_moves_a_third_of_the_features_by_k_std(reference):
    base, _, _ = lw.simulate_window(reference, rows=100, seed=3)
    shifted, _, info = lw.simulate_window(reference, rows=100, seed=3, shift=2.0)
    assert len(info["shifted_features"]) == 10
    col = info["shifted_features"][0]
    assert (shifted[col] - base[col]).round(9).unique().tolist() == [round(2.0 * reference[col].std(), 9)]
    untouched = [c for c in base.columns if c not in info["shifted_features"]]
    assert shifted[untouched].equals(base[untouched])


def test_bad_inputs_name_themselves(reference):
    with pytest.raises(AisecInputError, match="label column 'y'"):
        lw.simulate_window(reference, label_column="y")
    with pytest.raises(AisecInputError, match="shift_features"):
        lw.simulate_window(reference, shift=1, shift_features=["nope"])
    with pytest.raises(AisecInputError, match="not a scikit-learn bundled dataset"):
        lw.bundled_reference("nope")
    with pytest.raises(AisecInputError, match="does not exist"):
        lw.read_table("/nonexistent/x.csv")


def test_tamper_changes_the_sealed_file(reference, tmp_path):
    features, labelled, _ = lw.simulate_window(reference, rows=50, seed=1)
    paths = lw.write_window(tmp_path, features, labelled)
    before = hashlib.sha256(open(paths["features"], "rb").read()).hexdigest()
    assert lw.tamper_window(tmp_path, rows=5) == 5
    after_frame = lw.read_table(paths["features"])
    assert len(after_frame) == 55
    assert hashlib.sha256(open(paths["features"], "rb").read()).hexdigest() != before
