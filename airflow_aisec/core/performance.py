"""Model performance on labelled live data: accuracy, F1, ROC AUC against a baseline.

Predictions come from a column of the data or from a model artifact; a model artifact is loaded only
through :func:`airflow_aisec.core.model_loading.load_verified_model`: read once, its SHA-256 must
match the one given and the model scan of the same bytes must pass before they are deserialised
(pickle/joblib files execute code when loaded: an unverified model is never deserialised, fail closed).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_aisec.exceptions import AisecCheckFailed, AisecInputError, AisecUndecidableError
from airflow_aisec.report import Report

TAGS = ("OWASP-ML08", "OWASP-ML10")
SUPPORTED = ("accuracy", "f1", "roc_auc")
#: regression metrics (``problem_type="regression"``); MAPE skips rows whose true value is ~0
REGRESSION = ("mae", "rmse", "r2", "mape")
#: metrics where a larger value is worse (degraded when above ``baseline + allowed``)
LOWER_IS_BETTER = frozenset({"mae", "rmse", "mape"})
PROBLEM_TYPES = ("classification", "regression")
#: |y_true| below this is left out of MAPE (a percentage error of a zero target is undefined)
MAPE_ZERO_GUARD = 1e-12


def file_sha256(path: str | os.PathLike[str]) -> str:
    """``sha256:<hex>`` of a file (:func:`airflow_aisec.core.hashing.file_sha256`)."""
    from airflow_aisec.core.hashing import file_sha256 as hex_sha256

    return "sha256:" + hex_sha256(path)


def load_verified_model(path: str, digest: str | None, *, allow: Sequence[str] = ()) -> Any:
    """Load a joblib/pickle model with :func:`airflow_aisec.core.model_loading.load_verified_model`.

    The file is read once; the digest (``sha256:<hex>`` or hex) is checked and the model scan runs
    over those bytes, and the model is deserialised from them. Any refusal (no digest, mismatch, scan
    not passing, loader/scan disagreement) means the performance cannot be decided: an error.
    """
    from airflow_aisec.core import model_loading

    if not digest:
        raise AisecInputError(f"model {path}: a model_digest is required to load a model artifact (fail closed)")
    try:
        return model_loading.load_verified_model(path, expected_digest=digest, allow=allow).model
    except AisecCheckFailed as exc:
        raise AisecUndecidableError(f"{exc}; the performance cannot be evaluated (refusing to load it)") from None


def _allowed(max_degradation: float | Mapping[str, float], metric: str) -> float:
    value = max_degradation.get(metric, 0.0) if isinstance(max_degradation, Mapping) else max_degradation
    return float(value)


def check_thresholds(
    baseline: Mapping[str, Any], max_degradation: float | Mapping[str, Any], problem_type: str = "classification"
) -> None:
    """Refuse thresholds that would silently disable the comparison (NaN, infinities, unknown names)."""
    if problem_type not in PROBLEM_TYPES:
        raise AisecInputError(f"problem_type must be one of {PROBLEM_TYPES}, not {problem_type!r}")
    regression = problem_type == "regression"
    names = REGRESSION if regression else SUPPORTED
    unknown = set(baseline) - set(names)
    if unknown:
        raise AisecInputError(f"baseline metrics {sorted(unknown)} are not supported ({names})")
    for name, value in baseline.items():
        if not _number(value) or not (
            (regression and (float(value) <= 1.0 if name == "r2" else float(value) >= 0.0))
            or (not regression and 0.0 <= float(value) <= 1.0)
        ):
            shown = "a finite number" + (" <= 1" if name == "r2" else " >= 0") if regression else "a number in [0, 1]"
            raise AisecInputError(f"baseline {name} must be {shown}, not {value!r}")
    allowances = dict(max_degradation) if isinstance(max_degradation, Mapping) else {"*": max_degradation}
    stray = set(allowances) - set(baseline) - {"*"}
    if stray:
        raise AisecInputError(f"max_degradation names metric(s) {sorted(stray)} that have no baseline")
    for name, value in allowances.items():
        if not _number(value) or float(value) < 0.0 or (not regression and float(value) > 1.0):
            shown = "a finite number >= 0" if regression else "a number in [0, 1]"
            raise AisecInputError(f"max_degradation for {name} must be {shown}, not {value!r}")


def _number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(float(value))


def evaluate_performance(  # long signature and docstring: the body is one linear pass
    data: Any,
    *,
    label_column: str,
    prediction_column: str | None = None,
    score_column: str | None = None,
    model_path: str | None = None,
    model_digest: str | None = None,
    model_allow: Sequence[str] = (),
    feature_columns: list[str] | None = None,
    baseline: Mapping[str, float] | None = None,
    max_degradation: float | Mapping[str, float] = 0.05,
    positive_label: Any = None,
    min_rows: int = 1,
    max_unlabelled_share: float | None = None,
    subject: str | None = None,
    problem_type: str = "classification",
) -> Report:
    """Compute accuracy, F1 (binary, or macro for multi-class) and ROC AUC (binary, with scores).

    With ``problem_type="regression"``: MAE, RMSE, R² and MAPE (rows whose true value is ~0 are left
    out of MAPE and counted in ``n_mape_excluded``); MAE, RMSE and MAPE degrade when they rise above
    ``baseline + max_degradation`` (absolute, in the metric's units), R² when it falls below.

    :param model_allow: extra allowlisted globals for the model scan (``module.name`` or globs).
    :param max_unlabelled_share: more unlabelled rows than this share → error (the labelled rows may
        have been chosen); ``None`` (default) only counts them (``n_unlabelled``).
    :param baseline: reference values, e.g. ``{"accuracy": 0.91, "f1": 0.88}``; a metric drops by
        more than ``max_degradation`` (absolute, global or per metric) → ``AISEC-PERF-DEGRADED`` finding.
    :raises AisecInputError: missing columns, neither predictions nor a model, bad baseline names.
    :raises AisecUndecidableError: fewer than ``min_rows`` labelled rows, unverifiable model, a
        baseline metric that cannot be computed.
    """
    if (prediction_column is None) == (model_path is None):
        raise AisecInputError("give exactly one of prediction_column or model_path")
    baseline = dict(baseline or {})
    check_thresholds(baseline, max_degradation, problem_type)
    if max_unlabelled_share is not None and not 0.0 <= max_unlabelled_share <= 1.0:
        raise AisecInputError(f"max_unlabelled_share must be in [0, 1], not {max_unlabelled_share!r}")
    from airflow_aisec.core.tabular import open_source

    source = open_source(data)
    report = Report.start("performance", subject or source.name, tags=TAGS)
    needed = [label_column] + [c for c in (prediction_column, score_column) if c]
    if model_path:
        needed += list(feature_columns or [])
    labelled, n_unlabelled, unlabelled_share = _labelled_rows(
        source, needed, label_column, min_rows=min_rows, max_unlabelled_share=max_unlabelled_share
    )
    y_true = labelled[label_column].to_numpy()
    if model_path:
        y_pred, scores = _model_predictions(
            labelled, label_column, model_path, model_digest, model_allow=model_allow, feature_columns=feature_columns
        )
    else:
        assert prediction_column is not None
        y_pred = labelled[prediction_column].to_numpy()
        scores = labelled[score_column].to_numpy(dtype=float) if score_column else None
    scored = (
        _score_regression(y_true, y_pred)
        if problem_type == "regression"
        else _score(y_true, y_pred, scores, positive_label)
    )
    if not baseline:
        raise AisecInputError(
            f"no baseline to compare {source.name} against: give baseline metrics (a pass would mean nothing)"
        )
    per_metric = _compare_baseline(report, scored.values, baseline, max_degradation, source.name)
    values = scored.values
    report.metrics.update({k: v for k, v in values.items() if v is not None})
    report.metrics.update(n_rows=len(labelled), n_unlabelled=n_unlabelled, unlabelled_share=round(unlabelled_share, 6))
    if problem_type == "regression":
        report.metrics["n_mape_excluded"] = scored.mape_excluded
    report.details.update(
        metrics=values,
        baseline=per_metric,
        labels=[str(x) for x in scored.labels],
        positive_label=str(scored.positive) if scored.binary else None,
        confusion_matrix=scored.confusion_matrix,
        source="model" if model_path else "predictions",
        problem_type=problem_type,
        model={"path": model_path, "digest": model_digest} if model_path else None,
    )
    shown = ", ".join(f"{k}={v:.4f}" for k, v in values.items() if v is not None)
    degraded_names = [str(m["metric"]) for m in per_metric if m["degraded"]]
    summary = (
        f"degraded: {', '.join(degraded_names)} ({shown})" if degraded_names else f"{shown} on {len(labelled)} rows"
    )
    return report.finish("fail" if degraded_names else "pass", summary)


def _labelled_rows(
    source: Any, needed: list[str], label_column: str, *, min_rows: int, max_unlabelled_share: float | None
) -> tuple[Any, int, float]:
    """The rows with a label (as a DataFrame of the ``needed`` columns), how many lack one, and their share.

    :raises AisecInputError: a needed column is missing.
    :raises AisecUndecidableError: fewer than ``min_rows`` labelled rows, or more unlabelled rows than allowed.
    """
    import pandas as pd

    missing = [c for c in needed if c not in source.columns]
    if missing:
        raise AisecInputError(f"data {source.name} has no column(s) {missing}")
    columns = {c: source.read_column(c).to_pandas() for c in dict.fromkeys(needed)}
    frame = pd.DataFrame(columns)
    labelled = frame[frame[label_column].notna()]
    n_unlabelled = len(frame) - len(labelled)
    if len(labelled) < max(1, min_rows):
        raise AisecUndecidableError(
            f"data {source.name} has {len(labelled)} labelled row(s), need at least {max(1, min_rows)}"
        )
    unlabelled_share = n_unlabelled / len(frame) if len(frame) else 0.0
    if max_unlabelled_share is not None and unlabelled_share > max_unlabelled_share:
        raise AisecUndecidableError(
            f"data {source.name}: {unlabelled_share:.1%} of rows are unlabelled (allowed {max_unlabelled_share:.1%}): "
            "the labelled rows may not represent the window"
        )
    return labelled, n_unlabelled, unlabelled_share


def _model_predictions(
    labelled: Any,
    label_column: str,
    model_path: str,
    model_digest: str | None,
    *,
    model_allow: Sequence[str],
    feature_columns: list[str] | None,
) -> tuple[Any, Any]:
    """Predictions (and positive-class scores of a binary ``predict_proba``) of the verified model."""
    model = load_verified_model(model_path, model_digest, allow=model_allow)
    features = labelled[list(feature_columns)] if feature_columns else labelled.drop(columns=[label_column])
    y_pred = model.predict(features)
    scores = None
    if hasattr(model, "predict_proba"):
        proba = model.predict_proba(features)
        if proba.shape[1] == 2:
            scores = proba[:, 1]
    return y_pred, scores


@dataclass
class _Scores:
    values: dict[str, float | None]  # accuracy, f1, roc_auc (None when it cannot be computed)
    labels: list[Any]
    binary: bool
    positive: Any
    confusion_matrix: list[list[int]]
    mape_excluded: int = 0


def _score(y_true: Any, y_pred: Any, scores: Any, positive_label: Any) -> _Scores:
    """Accuracy, F1 (binary, or macro for multi-class) and ROC AUC (binary, with scores)."""
    import numpy as np
    from sklearn import metrics as skm

    labels = sorted(set(np.unique(y_true).tolist()) | set(np.unique(y_pred).tolist()), key=str)
    binary = len(labels) <= 2
    pos = positive_label if positive_label is not None else (labels[-1] if labels else None)
    values: dict[str, float | None] = {"accuracy": float(skm.accuracy_score(y_true, y_pred))}
    if binary:
        values["f1"] = float(skm.f1_score(y_true, y_pred, pos_label=pos, average="binary", zero_division=0))
    else:
        values["f1"] = float(skm.f1_score(y_true, y_pred, average="macro", zero_division=0))
    values["roc_auc"] = None
    if binary and scores is not None and len(np.unique(y_true)) == 2:
        values["roc_auc"] = float(skm.roc_auc_score(y_true == pos, scores))
    matrix = skm.confusion_matrix(y_true, y_pred, labels=labels).tolist()
    return _Scores(values, labels, binary, pos, matrix)


def _score_regression(y_true: Any, y_pred: Any) -> _Scores:
    """MAE, RMSE, R² and MAPE (rows with |y_true| <= MAPE_ZERO_GUARD left out; None if none remain)."""
    import numpy as np

    try:
        t, p = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    except (TypeError, ValueError):
        raise AisecInputError("regression labels and predictions must be numeric") from None
    if not (np.isfinite(t).all() and np.isfinite(p).all()):
        raise AisecInputError("regression labels and predictions must be finite (NaN/inf found)")
    err = p - t
    ss_tot = float(((t - t.mean()) ** 2).sum())
    keep = np.abs(t) > MAPE_ZERO_GUARD
    values: dict[str, float | None] = {
        "mae": float(np.abs(err).mean()),
        "rmse": float(np.sqrt((err**2).mean())),
        "r2": 1.0 - float((err**2).sum()) / ss_tot if ss_tot > 0 else None,
        "mape": float(np.abs(err[keep] / t[keep]).mean()) if keep.any() else None,
    }
    return _Scores(values, [], False, None, [], mape_excluded=int((~keep).sum()))


def _compare_baseline(
    report: Report,
    values: Mapping[str, float | None],
    baseline: Mapping[str, Any],
    max_degradation: float | Mapping[str, float],
    name: str,
) -> list[dict[str, Any]]:
    """One row per baseline metric; a metric below ``baseline - allowed`` is an ``AISEC-PERF-DEGRADED`` finding.

    :raises AisecUndecidableError: a baseline metric that cannot be computed on this data.
    """
    per_metric = []
    for metric, base in baseline.items():
        value = values.get(metric)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            raise AisecUndecidableError(f"baseline metric {metric!r} cannot be computed on {name}")
        allowed = _allowed(max_degradation, metric)
        if metric in LOWER_IS_BETTER:  # an error metric: worse when it rises
            bound, degraded, word, sign, key = (
                float(base) + allowed,
                value > float(base) + allowed,
                "above",
                "+",
                "max_allowed",
            )
        else:
            bound, degraded, word, sign, key = (
                float(base) - allowed,
                value < float(base) - allowed,
                "below",
                "-",
                "min_allowed",
            )
        per_metric.append({"metric": metric, "value": value, "baseline": float(base), key: bound, "degraded": degraded})
        if degraded:
            report.add_finding(
                "AISEC-PERF-DEGRADED",
                "high",
                f"{metric} {value:.4f} {word} baseline {float(base):.4f} {sign} allowed {allowed:.4f}",
                metric,
                per_metric[-1],
            )
    return per_metric
