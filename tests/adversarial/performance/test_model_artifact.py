"""ModelPerformanceOperator's model artifact: the same verify-before-load as the server."""

from __future__ import annotations

import hashlib
import os
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_aisec.core import modelscan
from airflow_aisec.core.performance import evaluate_performance
from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    import joblib
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    d = tmp_path_factory.mktemp("perf")
    x = np.random.default_rng(1).normal(size=(120, 2))
    y = (x[:, 0] > 0).astype(int)
    frame = pd.DataFrame({"f0": x[:, 0], "f1": x[:, 1], "label": y})
    data = d / "live.csv"
    frame.to_csv(data, index=False)
    good = d / "good.joblib"
    joblib.dump(LogisticRegression().fit(x, y), good)
    bad = d / "bad.joblib"
    joblib.dump(LogisticRegression().fit(x, 1 - y), bad)  # a valid model that gets everything wrong
    return str(data), good.read_bytes(), bad.read_bytes()


def _run(data, path, digest):
    return evaluate_performance(
        data,
        label_column="label",
        model_path=str(path),
        model_digest=digest,
        feature_columns=["f0", "f1"],
        baseline={"accuracy": 0.5},
    ).to_dict()


WRAPS = st.sampled_from(["plain", "dict", "list"])


@settings(max_examples=30)
@given(protocol=st.integers(0, 5), wrap=WRAPS, fn=st.sampled_from(["system", "popen"]))
def test_malicious_model_with_valid_digest_is_an_error_and_never_runs(tmp_path_factory, labelled, protocol, wrap, fn):
    d = tmp_path_factory.mktemp("evil")
    sentinel = d / "PWNED"

    class Trojan:
        def __reduce__(self):
            return (os.system if fn == "system" else os.popen, (f"touch {sentinel}",))

    obj = {"plain": Trojan(), "dict": {"model": 1, "hook": Trojan()}, "list": [1, Trojan()]}[wrap]
    path = d / "model.joblib"
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    digest = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(AisecUndecidableError, match="did not pass the model scan.*refusing to load it"):
        _run(labelled[0], path, digest)
    assert not sentinel.exists()


@settings(max_examples=25)
@given(flip=st.integers(0, 100_000))
def test_digest_mismatch_is_an_error_and_no_load(tmp_path_factory, labelled, flip):
    data, good, _ = labelled
    d = tmp_path_factory.mktemp("mismatch")
    path = d / "model.joblib"
    i = flip % len(good)
    path.write_bytes(good[:i] + bytes([good[i] ^ 0x01]) + good[i + 1 :])
    with pytest.raises(AisecUndecidableError, match="digest mismatch.*refusing to load it"):
        _run(data, path, "sha256:" + hashlib.sha256(good).hexdigest())


@pytest.mark.parametrize("point", ["during-scan", "before-unpickle"])
def test_swapped_model_never_scores_the_data(tmp_path, labelled, monkeypatch, point):
    """The file is replaced by another valid model after verification: the verified one is scored."""
    from airflow_aisec.core import model_loading as ml

    data, good, bad = labelled
    path = tmp_path / "model.joblib"
    path.write_bytes(good)
    if point == "during-scan":
        real = modelscan.scan_bytes
        monkeypatch.setattr(modelscan, "scan_bytes", lambda *a, **k: (path.write_bytes(bad), real(*a, **k))[1])
    else:
        real_load = ml._restricted_load
        monkeypatch.setattr(ml, "_restricted_load", lambda *a, **k: (path.write_bytes(bad), real_load(*a, **k))[1])
    report = _run(data, path, "sha256:" + hashlib.sha256(good).hexdigest())
    assert path.read_bytes() == bad
    assert report["metrics"]["accuracy"] > 0.9  # the swapped-in model would score ~0


def test_no_digest_is_refused(labelled, tmp_path):
    data, good, _ = labelled
    path = tmp_path / "model.joblib"
    path.write_bytes(good)
    for digest in (None, ""):
        with pytest.raises(AisecInputError, match="model_digest is required"):
            _run(data, path, digest)
    with pytest.raises(AisecInputError, match="must be a SHA-256"):
        _run(data, path, "md5:" + "0" * 32)
