"""Model performance: metrics vs sklearn, baseline degradation, verified model artifacts."""

from __future__ import annotations

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, roc_auc_score

from airflow_aisec.core.performance import evaluate_performance, file_sha256
from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError


@pytest.fixture
def labelled(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 2))
    y = (x[:, 0] + 0.5 * rng.normal(size=600) > 0).astype(int)
    frame = pd.DataFrame({"f0": x[:, 0], "f1": x[:, 1], "label": y})
    model = LogisticRegression().fit(x, y)
    frame["pred"] = model.predict(x)
    frame["score"] = model.predict_proba(x)[:, 1]
    path = tmp_path / "live.parquet"
    frame.to_parquet(path)
    model_path = tmp_path / "model.joblib"
    joblib.dump(model, model_path)
    return frame, str(path), str(model_path)


def test_metrics_match_sklearn_and_baseline_passes(labelled):
    frame, path, _ = labelled
    report = evaluate_performance(
        path, label_column="label", prediction_column="pred", score_column="score", baseline={"accuracy": 0.8}
    ).to_dict()
    assert report["status"] == "pass"
    assert report["metrics"]["f1"] == pytest.approx(f1_score(frame["label"], frame["pred"]))
    assert report["metrics"]["roc_auc"] == pytest.approx(roc_auc_score(frame["label"], frame["score"]))
    assert report["details"]["baseline"][0]["degraded"] is False


def test_degradation_beyond_allowance_fails(labelled):
    _, path, _ = labelled
    report = evaluate_performance(
        path,
        label_column="label",
        prediction_column="pred",
        baseline={"accuracy": 0.99, "f1": 0.5},
        max_degradation={"accuracy": 0.01, "f1": 0.05},
    )
    assert report.status == "fail"
    assert [f.location for f in report.findings] == ["accuracy"]
    assert report.findings[0].id == "AISEC-PERF-DEGRADED"


def test_model_artifact_is_loaded_only_with_matching_digest(labelled):
    frame, path, model_path = labelled
    digest = file_sha256(model_path)
    report = evaluate_performance(
        path,
        label_column="label",
        model_path=model_path,
        model_digest=digest,
        feature_columns=["f0", "f1"],
        baseline={"accuracy": 0.5},
    ).to_dict()
    assert report["metrics"]["accuracy"] == pytest.approx((frame["pred"] == frame["label"]).mean())
    assert report["metrics"]["roc_auc"] > 0.8
    with pytest.raises(AisecUndecidableError, match="refusing to load it"):
        evaluate_performance(path, label_column="label", model_path=model_path, model_digest="sha256:" + "0" * 64)
    with pytest.raises(AisecInputError, match="model_digest is required"):
        evaluate_performance(path, label_column="label", model_path=model_path)


def test_bad_inputs(labelled):
    _, path, _ = labelled
    with pytest.raises(AisecInputError, match="exactly one of prediction_column or model_path"):
        evaluate_performance(path, label_column="label")
    with pytest.raises(AisecInputError, match=r"no column\(s\) \['nope'\]"):
        evaluate_performance(path, label_column="nope", prediction_column="pred")
    with pytest.raises(AisecUndecidableError, match="labelled row"):
        evaluate_performance(path, label_column="label", prediction_column="pred", min_rows=10_000)
    with pytest.raises(AisecUndecidableError, match="'roc_auc' cannot be computed"):
        evaluate_performance(path, label_column="label", prediction_column="pred", baseline={"roc_auc": 0.9})


# ------------------------------------------------------------------------------------------ regression
def _regression_frame(noise: float, zeros: int = 0):
    rng = np.random.default_rng(9)
    y = rng.uniform(1.0, 10.0, 400)
    y[:zeros] = 0.0
    return pd.DataFrame({"y": y, "pred": y + rng.normal(0.0, noise, 400)})


def test_regression_metrics_match_scikit_learn():
    from sklearn import metrics as skm

    frame = _regression_frame(0.5)
    report = evaluate_performance(
        frame, label_column="y", prediction_column="pred", problem_type="regression", baseline={"mae": 0.5}
    ).to_dict()
    m = report["metrics"]
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(frame.y, frame.pred))
    assert m["rmse"] == pytest.approx(skm.root_mean_squared_error(frame.y, frame.pred))
    assert m["r2"] == pytest.approx(skm.r2_score(frame.y, frame.pred))
    assert m["mape"] == pytest.approx(skm.mean_absolute_percentage_error(frame.y, frame.pred))
    assert report["status"] == "pass" and m["n_mape_excluded"] == 0


def test_regression_error_metrics_degrade_upwards_and_r2_downwards():
    noisy = _regression_frame(3.0)
    report = evaluate_performance(
        noisy,
        label_column="y",
        prediction_column="pred",
        problem_type="regression",
        baseline={"mae": 0.5, "rmse": 0.6, "r2": 0.95},
        max_degradation={"mae": 0.2, "rmse": 0.2, "r2": 0.05},
    ).to_dict()
    assert report["status"] == "fail"
    assert {f["location"] for f in report["findings"]} == {"mae", "rmse", "r2"}
    assert "above baseline" in next(f["title"] for f in report["findings"] if f["location"] == "mae")


def test_mape_zero_guard_excludes_zero_targets():
    frame = _regression_frame(0.5, zeros=10)
    report = evaluate_performance(
        frame, label_column="y", prediction_column="pred", problem_type="regression", baseline={"mape": 1.0}
    ).to_dict()
    assert report["metrics"]["n_mape_excluded"] == 10
    kept = frame.iloc[10:]
    assert report["metrics"]["mape"] == pytest.approx(float((abs(kept.pred - kept.y) / kept.y).mean()))
    all_zero = pd.DataFrame({"y": [0.0] * 5, "pred": [1.0] * 5})
    with pytest.raises(AisecUndecidableError, match="cannot be computed"):
        evaluate_performance(
            all_zero, label_column="y", prediction_column="pred", problem_type="regression", baseline={"mape": 1.0}
        )


@pytest.mark.parametrize(
    ("baseline", "max_degradation", "match"),
    [
        ({"accuracy": 0.9}, 0.1, "not supported"),
        ({"mae": -1.0}, 0.1, "must be a finite number >= 0"),
        ({"r2": 1.5}, 0.1, "must be a finite number <= 1"),
        ({"mae": float("nan")}, 0.1, "must be a finite number"),
        ({"mae": 1.0}, float("inf"), "max_degradation for"),
    ],
)
def test_regression_thresholds_refused(baseline, max_degradation, match):
    frame = _regression_frame(0.5)
    with pytest.raises(AisecInputError, match=match):
        evaluate_performance(
            frame,
            label_column="y",
            prediction_column="pred",
            problem_type="regression",
            baseline=baseline,
            max_degradation=max_degradation,
        )


def test_regression_refuses_non_finite_predictions():
    frame = _regression_frame(0.5)
    frame.loc[3, "pred"] = np.inf
    with pytest.raises(AisecInputError, match="must be finite"):
        evaluate_performance(
            frame, label_column="y", prediction_column="pred", problem_type="regression", baseline={"mae": 1.0}
        )
