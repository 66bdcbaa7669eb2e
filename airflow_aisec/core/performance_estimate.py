"""Label-free performance estimation: expected accuracy and F1 from calibrated predicted probabilities.

When labels arrive late or never, a classifier's accuracy on the current window can still be
estimated from its own predicted probabilities, if those are calibrated (confidence-based
performance estimation, the approach of NannyML's CBPE):

1. **Calibrate on the reference set** (labelled, e.g. the held-out test set): for each class an
   isotonic regression maps the model's probability column to the observed frequency of that class
   (one-vs-rest), rows renormalised. A model that is over- or under-confident is corrected here.
2. **Estimate on the current window** (no labels needed): with calibrated probabilities ``q``, the
   expected confusion matrix is ``E[C[a, b]] = sum_i q[i, a] * [pred_i = b]``, where ``pred_i`` is the
   model's decision (argmax of its probabilities, or ``probability >= threshold`` for one column).
   Expected accuracy is its trace over ``n``; F1 (binary: of the positive class, else macro) is
   computed from its expected counts.
3. **Interval**: labels are drawn from the calibrated probabilities (seeded Monte Carlo) and the
   realised metric computed on each draw; the reported interval holds the central ``confidence``
   share of draws (the sampling uncertainty of the realised metric on ``n`` rows).

The estimate stays valid under *covariate shift* (the inputs change, ``P(label | input)`` does not);
it cannot see *concept shift* (the same inputs now have other labels): realised labels, when they
come, must still be checked with :mod:`airflow_aisec.core.performance`.

The estimate is gated against the realised metric on the reference set (or a given baseline): an
estimate more than ``max_degradation`` below it is a ``high`` finding (status ``fail``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError
from airflow_aisec.report import Report

TAGS = ("OWASP-ML08",)
METRICS = ("accuracy", "f1")
F_DEGRADED = "AISEC-PERF-ESTIMATED-DEGRADED"
#: cap on Monte Carlo label draws times rows (memory/time bound of the interval)
_MAX_DRAW_CELLS = 20_000_000


def _probabilities(data: Any, columns: Sequence[str], what: str, extra: Sequence[str] = ()) -> tuple[Any, Any, str]:
    """The probability matrix (rows × columns) and the extra columns; refuses missing/non-finite/out-of-range values."""
    import numpy as np
    import pandas as pd

    from airflow_aisec.core.tabular import open_source

    source = open_source(data)
    missing = [c for c in [*columns, *extra] if c not in source.columns]
    if missing:
        raise AisecInputError(f"{what} {source.name} has no column(s) {missing}")
    frame = pd.DataFrame({c: source.read_column(c).to_pandas() for c in dict.fromkeys([*columns, *extra])})
    if len(frame) == 0:
        raise AisecUndecidableError(f"{what} {source.name} has no rows")
    try:
        p = frame[list(columns)].to_numpy(dtype=float)
    except (TypeError, ValueError):
        raise AisecInputError(f"{what} {source.name}: probability columns {list(columns)} are not numeric") from None
    if not np.isfinite(p).all():
        raise AisecInputError(f"{what} {source.name}: probability columns have missing, NaN or infinite values")
    if (p < 0).any() or (p > 1).any():
        raise AisecInputError(f"{what} {source.name}: probabilities outside [0, 1]")
    if p.shape[1] > 1 and not np.allclose(p.sum(axis=1), 1.0, atol=1e-3):
        raise AisecInputError(f"{what} {source.name}: the probability columns do not sum to 1 per row")
    return p, frame, source.name


def _decisions(p: Any, threshold: float) -> Any:
    import numpy as np

    return (p[:, 0] >= threshold).astype(int) if p.shape[1] == 1 else np.argmax(p, axis=1)


def _class_matrix(p: Any) -> Any:
    """One probability column per class (a single positive-class column becomes [1 - p, p])."""
    import numpy as np

    return np.column_stack([1.0 - p[:, 0], p[:, 0]]) if p.shape[1] == 1 else p


def _fit_calibration(p: Any, y: Any) -> list[Any]:
    """One isotonic regression per class column, fitted on the reference set (one-vs-rest)."""
    from sklearn.isotonic import IsotonicRegression

    q = _class_matrix(p)
    return [
        IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(q[:, k], (y == k).astype(float))
        for k in range(q.shape[1])
    ]


def _calibrate(models: list[Any], p: Any) -> Any:
    import numpy as np

    q = _class_matrix(p)
    cal = np.column_stack([m.predict(q[:, k]) for k, m in enumerate(models)])
    total = cal.sum(axis=1, keepdims=True)
    uniform = np.full_like(cal, 1.0 / cal.shape[1])
    return np.where(total > 0, cal / np.where(total > 0, total, 1.0), uniform)


def _metrics_from_confusion(c: Any, positive: int | None) -> dict[str, float]:
    """Accuracy and F1 (of ``positive`` when binary, else macro) from a (true × predicted) count matrix."""
    import numpy as np

    n = c.sum()
    tp = np.diag(c)
    fp = c.sum(axis=0) - tp
    fn = c.sum(axis=1) - tp
    denom = 2 * tp + fp + fn
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp, dtype=float), where=denom > 0)
    return {
        "accuracy": float(tp.sum() / n) if n else math.nan,
        "f1": float(f1[positive]) if positive is not None else float(f1.mean()),
    }


def _expected_confusion(q: Any, pred: Any) -> Any:
    import numpy as np

    k = q.shape[1]
    return np.stack([q[pred == b].sum(axis=0) for b in range(k)], axis=1)  # rows: true, columns: predicted


def _realised_confusion(y: Any, pred: Any, k: int) -> Any:
    import numpy as np

    c = np.zeros((k, k))
    np.add.at(c, (y, pred), 1)
    return c


def _interval(q: Any, pred: Any, positive: int | None, *, draws: int, confidence: float, seed: int) -> dict[str, Any]:
    """Central ``confidence`` interval of the realised accuracy/F1 over labels drawn from ``q``."""
    import numpy as np

    n, k = q.shape
    draws = max(20, min(draws, _MAX_DRAW_CELLS // max(n, 1)))
    rng = np.random.default_rng(seed)
    cum = np.cumsum(q, axis=1)
    values: dict[str, list[float]] = {m: [] for m in METRICS}
    for _ in range(draws):
        y = (rng.random((n, 1)) > cum).sum(axis=1).clip(max=k - 1)
        scored = _metrics_from_confusion(_realised_confusion(y, pred, k), positive)
        for m in METRICS:
            values[m].append(scored[m])
    lo, hi = (1 - confidence) / 2, 1 - (1 - confidence) / 2
    return {m: [float(np.quantile(v, lo)), float(np.quantile(v, hi))] for m, v in values.items()}


def _labels(frame: Any, label_column: str, classes: list[str], name: str) -> Any:
    import numpy as np

    if frame[label_column].isna().any():
        raise AisecInputError(f"reference {name}: label column {label_column!r} has missing values")
    lookup = {c: i for i, c in enumerate(classes)}
    raw = [str(v) for v in frame[label_column]]
    unknown = sorted(set(raw) - set(lookup))
    if unknown:
        raise AisecInputError(
            f"reference {name}: labels {unknown[:5]} are not among the classes {classes[:10]} of the probability columns"
        )
    y = np.array([lookup[v] for v in raw], dtype=int)
    if len(set(y.tolist())) < 2:
        raise AisecUndecidableError(f"reference {name} has a single class: the probabilities cannot be calibrated")
    return y


def _check_settings(
    proba_columns: Sequence[str],
    classes: Sequence[str] | None,
    threshold: float,
    max_degradation: float,
    confidence: float,
    baseline: Mapping[str, float] | None,
) -> list[str]:
    """Refuse settings that would make the estimate meaningless; return the class labels (strings)."""
    if not proba_columns:
        raise AisecInputError("give the probability column(s)")
    for name, value, low, high in (
        ("threshold", threshold, 0.0, 1.0),
        ("max_degradation", max_degradation, 0.0, 1.0),
        ("confidence", confidence, 0.5, 0.999),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise AisecInputError(f"{name} must be a number in [{low}, {high}], not {value!r}")
    names = list(classes) if classes else (["0", "1"] if len(proba_columns) == 1 else list(proba_columns))
    if len(names) != max(2, len(proba_columns)) or len(set(map(str, names))) != len(names):
        raise AisecInputError(f"classes {names} do not match the probability columns {list(proba_columns)}")
    names = [str(c) for c in names]
    unknown = set(baseline or {}) - set(METRICS)
    if unknown or any(not isinstance(v, (int, float)) or not 0 <= v <= 1 for v in (baseline or {}).values()):
        raise AisecInputError(f"baseline must map {METRICS} to numbers in [0, 1], not {baseline!r}")
    return names


def estimate_performance(
    reference: Any,
    current: Any,
    *,
    proba_columns: Sequence[str],
    label_column: str,
    classes: Sequence[str] | None = None,
    threshold: float = 0.5,
    baseline: Mapping[str, float] | None = None,
    max_degradation: float = 0.05,
    confidence: float = 0.95,
    draws: int = 400,
    seed: int = 0,
    min_rows: int = 30,
    subject: str | None = None,
) -> Report:
    """Estimate accuracy and F1 on ``current`` without its labels (module docstring).

    :param proba_columns: one column per class (in the model's class order), or one column holding
        the positive-class probability of a binary model.
    :param label_column: the label column of ``reference`` (``current`` needs none).
    :param classes: class labels of the columns (default: the column names; for one column the
        negative and positive labels, default ``["0", "1"]``). Compared as strings.
    :param threshold: decision threshold of a one-column binary model.
    :param baseline: metrics to compare with (default: realised on the reference set).
    :param max_degradation: estimate below ``baseline - max_degradation`` → ``fail``.
    :raises AisecInputError: bad columns or values; :raises AisecUndecidableError: too few rows, one class.
    """
    import numpy as np

    names = _check_settings(proba_columns, classes, threshold, max_degradation, confidence, baseline)
    p_ref, ref_frame, ref_name = _probabilities(reference, proba_columns, "reference", [label_column])
    p_cur, _, cur_name = _probabilities(current, proba_columns, "current")
    for what, rows in (("reference", len(p_ref)), ("current", len(p_cur))):
        if rows < min_rows:
            raise AisecUndecidableError(f"{what} has {rows} row(s), need at least {min_rows} to estimate")
    y_ref = _labels(ref_frame, label_column, names, ref_name)
    positive = 1 if len(names) == 2 else None
    calibration = _fit_calibration(p_ref, y_ref)
    pred_ref, pred_cur = _decisions(p_ref, threshold), _decisions(p_cur, threshold)
    k = len(names)
    realised_ref = _metrics_from_confusion(_realised_confusion(y_ref, pred_ref, k), positive)
    q_cur = _calibrate(calibration, p_cur)
    estimated = _metrics_from_confusion(_expected_confusion(q_cur, pred_cur), positive)
    raw_conf = _metrics_from_confusion(_expected_confusion(_class_matrix(p_cur), pred_cur), positive)
    interval = _interval(q_cur, pred_cur, positive, draws=draws, confidence=confidence, seed=seed)
    base = {m: float(v) for m, v in (baseline or realised_ref).items()}
    report = Report.start("performance_estimate", subject or cur_name, tags=TAGS)
    per_metric = []
    for metric, value in base.items():
        floor = value - max_degradation
        degraded = estimated[metric] < floor
        per_metric.append({"metric": metric, "estimated": estimated[metric], "baseline": value, "min_allowed": floor})
        if degraded:
            report.add_finding(
                F_DEGRADED,
                "high",
                f"estimated {metric} {estimated[metric]:.4f} below baseline {value:.4f} - allowed {max_degradation:.4f}",
                metric,
                {**per_metric[-1], "interval": interval[metric]},
            )
    for m in METRICS:
        report.metrics[f"estimated_{m}"] = round(estimated[m], 6)
        report.metrics[f"estimated_{m}_lower"] = round(interval[m][0], 6)
        report.metrics[f"estimated_{m}_upper"] = round(interval[m][1], 6)
        report.metrics[f"reference_{m}"] = round(realised_ref[m], 6)
    report.metrics.update(n_rows=len(p_cur), n_reference_rows=len(p_ref))
    report.details.update(
        method="confidence-based (isotonic calibration on the reference set)",
        classes=names,
        estimated=estimated,
        interval={"confidence": confidence, **interval},
        uncalibrated_estimate=raw_conf,
        reference_realised=realised_ref,
        baseline=per_metric,
        predicted_class_share=np.bincount(pred_cur, minlength=k).astype(float).__truediv__(len(pred_cur)).tolist(),
        reference=ref_name,
    )
    failed = bool(report.findings)
    shown = ", ".join(f"{m}≈{estimated[m]:.3f} [{interval[m][0]:.3f}, {interval[m][1]:.3f}]" for m in METRICS)
    return report.finish(
        "fail" if failed else "pass", f"{'estimated degradation: ' if failed else ''}{shown} on {len(p_cur)} rows"
    )
