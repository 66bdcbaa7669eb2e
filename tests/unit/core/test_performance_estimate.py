"""Label-free performance estimation validated against the realised metric on synthetic data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from airflow_aisec.core.performance_estimate import estimate_performance
from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError


def _world(rng, n, scale0=1.0, shift1=0.0):
    """Inputs and labels drawn from a fixed P(label | input): only the inputs' distribution changes."""
    x = np.column_stack([rng.normal(0, scale0, n), rng.normal(shift1, 1.0, n)])
    y = (rng.random(n) < 1 / (1 + np.exp(-(2.5 * x[:, 0] + x[:, 1])))).astype(int)
    return x, y


@pytest.fixture(scope="module")
def model():
    from sklearn.linear_model import LogisticRegression

    x, y = _world(np.random.default_rng(0), 3000)
    return LogisticRegression().fit(x, y)


def _frame(model, x, y=None, sharpen=1.0):
    p = model.predict_proba(x)[:, 1]
    if sharpen != 1.0:  # an over-confident model: same decisions, probabilities pushed to 0/1
        p = p**sharpen / (p**sharpen + (1 - p) ** sharpen)
    frame = pd.DataFrame({"p_no": 1 - p, "p_yes": p})
    if y is not None:
        frame["label"] = np.where(y == 1, "yes", "no")
    return frame


def _realised(model, x, y):
    from sklearn.metrics import accuracy_score, f1_score

    pred = model.predict(x)
    return accuracy_score(y, pred), f1_score(y, pred)


@pytest.mark.parametrize(
    ("scale0", "shift1"),
    [(1.0, 0.0), (0.35, 0.0), (1.0, 1.5)],
    ids=["no-shift", "shift-towards-the-boundary", "shift-in-x1"],
)
def test_estimate_tracks_the_realised_metric_under_covariate_shift(model, scale0, shift1):
    rng = np.random.default_rng(11)
    x_ref, y_ref = _world(rng, 3000)
    x_cur, y_cur = _world(rng, 3000, scale0, shift1)
    report = estimate_performance(
        _frame(model, x_ref, y_ref),
        _frame(model, x_cur),
        proba_columns=["p_no", "p_yes"],
        classes=["no", "yes"],
        label_column="label",
        max_degradation=1.0,
    ).to_dict()
    accuracy, f1 = _realised(model, x_cur, y_cur)
    m = report["metrics"]
    assert report["check"] == "performance_estimate"
    assert m["estimated_accuracy"] == pytest.approx(accuracy, abs=0.03)
    assert m["estimated_f1"] == pytest.approx(f1, abs=0.04)
    assert m["estimated_accuracy_lower"] - 0.02 <= accuracy <= m["estimated_accuracy_upper"] + 0.02


def test_degradation_from_covariate_shift_fails_the_gate(model):
    rng = np.random.default_rng(5)
    x_ref, y_ref = _world(rng, 2000)
    x_cur, y_cur = _world(rng, 2000, scale0=0.3)
    reference = _frame(model, x_ref, y_ref)
    kwargs = {"proba_columns": ["p_yes"], "classes": ["no", "yes"], "label_column": "label"}
    same = estimate_performance(reference, _frame(model, _world(rng, 2000)[0]), **kwargs).to_dict()
    shifted = estimate_performance(reference, _frame(model, x_cur), **kwargs).to_dict()
    assert _realised(model, x_cur, y_cur)[0] < same["metrics"]["reference_accuracy"] - 0.1  # it did degrade
    assert same["status"] == "pass"
    assert shifted["status"] == "fail"
    assert {f["id"] for f in shifted["findings"]} == {"AISEC-PERF-ESTIMATED-DEGRADED"}


def test_calibration_on_the_reference_corrects_an_over_confident_model(model):
    rng = np.random.default_rng(3)
    x_ref, y_ref = _world(rng, 3000)
    x_cur, y_cur = _world(rng, 3000, scale0=0.5)
    report = estimate_performance(
        _frame(model, x_ref, y_ref, sharpen=4.0),
        _frame(model, x_cur, sharpen=4.0),
        proba_columns=["p_no", "p_yes"],
        classes=["no", "yes"],
        label_column="label",
        max_degradation=1.0,
    ).to_dict()
    accuracy = _realised(model, x_cur, y_cur)[0]
    raw = report["details"]["uncalibrated_estimate"]["accuracy"]
    assert abs(raw - accuracy) > 0.08  # trusting the raw confidence would be badly wrong
    assert report["metrics"]["estimated_accuracy"] == pytest.approx(accuracy, abs=0.03)


def test_multiclass_accuracy(model):
    rng = np.random.default_rng(2)
    n = 3000
    q = rng.dirichlet([1, 1, 1], size=2 * n)
    y = np.array([rng.choice(3, p=row) for row in q])
    frame = pd.DataFrame(q, columns=["a", "b", "c"])
    frame["label"] = np.array(["a", "b", "c"])[y]
    report = estimate_performance(
        frame.iloc[:n], frame.iloc[n:], proba_columns=["a", "b", "c"], label_column="label", max_degradation=1.0
    ).to_dict()
    realised = float((q[n:].argmax(axis=1) == y[n:]).mean())
    assert report["metrics"]["estimated_accuracy"] == pytest.approx(realised, abs=0.03)


def test_deterministic_interval(model):
    rng = np.random.default_rng(4)
    x, y = _world(rng, 500)
    ref, cur = _frame(model, x, y), _frame(model, _world(rng, 500)[0])
    kwargs = {"proba_columns": ["p_no", "p_yes"], "classes": ["no", "yes"], "label_column": "label"}
    a = estimate_performance(ref, cur, **kwargs).to_dict()["metrics"]
    b = estimate_performance(ref, cur, **kwargs).to_dict()["metrics"]
    a.pop("duration_seconds"), b.pop("duration_seconds")
    assert a == b


def test_refuses_inputs_it_cannot_use(model):
    rng = np.random.default_rng(6)
    x, y = _world(rng, 200)
    ref = _frame(model, x, y)
    kwargs = {"proba_columns": ["p_no", "p_yes"], "classes": ["no", "yes"], "label_column": "label"}
    bad = ref.copy()
    bad.loc[4, "p_yes"] = np.nan
    with pytest.raises(AisecInputError, match="NaN or infinite"):
        estimate_performance(ref, bad, **kwargs)
    bad = ref.copy()
    bad.loc[4, "p_yes"] = 1.5
    with pytest.raises(AisecInputError, match="outside"):
        estimate_performance(ref, bad, **kwargs)
    with pytest.raises(AisecInputError, match="do not sum to 1"):
        estimate_performance(ref, ref.assign(p_no=0.9), **kwargs)
    with pytest.raises(AisecInputError, match="no column"):
        estimate_performance(ref.drop(columns=["label"]), ref, **kwargs)
    with pytest.raises(AisecUndecidableError, match="single class"):
        estimate_performance(ref.assign(label="yes"), ref, **kwargs)
    with pytest.raises(AisecInputError, match="are not among the classes"):
        estimate_performance(ref.assign(label="maybe"), ref, **kwargs)
    with pytest.raises(AisecUndecidableError, match="need at least"):
        estimate_performance(ref, ref.iloc[:5], **kwargs)
    with pytest.raises(AisecInputError, match="baseline must map"):
        estimate_performance(ref, ref, baseline={"auc": 0.9}, **kwargs)
