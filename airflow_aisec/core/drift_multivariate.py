"""Multivariate drift: a domain-classifier test (can a model tell reference rows from current rows?).

Per-column tests (KS, chi-squared) compare marginal distributions; they cannot see a change in how
columns move *together* (a correlation flips while every column keeps its distribution). The
domain-classifier test sees any change a classifier can learn:

1. a seeded sample of at most ``max_rows`` rows from each side, labelled 0 (reference) and 1 (current);
2. a stratified half is used to train a gradient-boosted tree classifier
   (scikit-learn's ``HistGradientBoostingClassifier``), the other half is scored;
3. the ROC AUC of those held-out scores measures separability (0.5: indistinguishable);
4. the p-value is a permutation test on the held-out half: the held-out labels are permuted
   ``permutations`` times (the model was not trained on them, so under "no drift" every permutation
   is as likely as the observed labelling) and ``p = (1 + #{AUC_perm >= AUC}) / (1 + permutations)``.

Drift is declared when ``p < alpha`` **and** ``AUC >= min_auc`` (an effect-size floor: with many rows a
trivially small difference is significant but not worth acting on).

Numeric columns are used as they are (missing values allowed: the classifier handles them);
categorical/string columns are encoded with codes shared by both sides.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError
from airflow_aisec.report import Report, Status

F_MULTIVARIATE = "AISEC-DRIFT-MULTIVARIATE"


@dataclass(frozen=True)
class MultivariateConfig:
    """:param alpha: significance level. :param min_auc: effect-size floor. :param max_rows: rows per side.
    :param permutations: permutation-test draws. :param seed: seeds sampling, split, model and permutations.
    :param min_rows: fewer rows on a side → cannot decide.
    """

    alpha: float = 0.05
    min_auc: float = 0.55
    max_rows: int = 5000
    permutations: int = 1000
    seed: int = 0
    min_rows: int = 50

    def __post_init__(self) -> None:
        for name, low, high in (("alpha", 0.0, 1.0), ("min_auc", 0.5, 1.0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low < value <= high:
                raise AisecInputError(f"{name} must be a number in ({low}, {high}], not {value!r}")
        for name in ("max_rows", "permutations", "min_rows"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 10:
                raise AisecInputError(f"{name} must be an integer >= 10, not {value!r}")


def _frame(data: Any, columns: Sequence[str] | None, what: str) -> tuple[Any, str]:
    import pandas as pd

    from airflow_aisec.core.tabular import open_source

    source = open_source(data)
    names = list(columns) if columns else list(source.columns)
    missing = [c for c in names if c not in source.columns]
    if missing:
        raise AisecInputError(f"{what} {source.name} has no column(s) {missing}")
    return pd.DataFrame({c: source.read_column(c).to_pandas() for c in names}), source.name


def _encode(ref: Any, cur: Any, columns: list[str]) -> tuple[Any, Any]:
    """Both sides as float matrices; non-numeric columns as shared category codes (missing → NaN)."""
    import numpy as np
    import pandas as pd

    out_ref, out_cur = [], []
    for c in columns:
        a, b = ref[c], cur[c]
        if pd.api.types.is_numeric_dtype(a) and pd.api.types.is_numeric_dtype(b):
            va, vb = a.to_numpy(dtype=float), b.to_numpy(dtype=float)
        else:
            cats = pd.Index(pd.concat([a, b]).dropna().astype(str).unique())
            va = np.where(a.isna(), np.nan, cats.get_indexer(a.astype(str))).astype(float)
            vb = np.where(b.isna(), np.nan, cats.get_indexer(b.astype(str))).astype(float)
        for v, name in ((va, "reference"), (vb, "current")):
            if np.isinf(v).any():
                raise AisecInputError(f"{name} column {c!r} has infinite values")
        out_ref.append(va)
        out_cur.append(vb)
    return np.column_stack(out_ref), np.column_stack(out_cur)


def domain_classifier_test(
    reference: Any, current: Any, *, columns: Sequence[str] | None = None, config: MultivariateConfig | None = None
) -> dict[str, Any]:
    """Run the test (module docstring); returns ``auc``, ``p_value``, ``drift`` and the sizes used.

    :raises AisecInputError: missing or infinite columns; :raises AisecUndecidableError: too few rows.
    """
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    config = config or MultivariateConfig()
    ref, ref_name = _frame(reference, columns, "reference")
    cur, cur_name = _frame(current, columns or list(ref.columns), "current")
    names = list(ref.columns)
    for what, frame in (("reference", ref), ("current", cur)):
        if len(frame) < config.min_rows:
            raise AisecUndecidableError(
                f"{what} has {len(frame)} row(s), the multivariate test needs {config.min_rows}"
            )
    rng = np.random.default_rng(config.seed)
    x_ref, x_cur = _encode(ref, cur, names)
    x_ref = x_ref[rng.choice(len(x_ref), size=min(config.max_rows, len(x_ref)), replace=False)]
    x_cur = x_cur[rng.choice(len(x_cur), size=min(config.max_rows, len(x_cur)), replace=False)]
    x = np.vstack([x_ref, x_cur])
    y = np.r_[np.zeros(len(x_ref), dtype=int), np.ones(len(x_cur), dtype=int)]
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.5, stratify=y, random_state=int(rng.integers(2**31))
    )
    model = HistGradientBoostingClassifier(
        max_iter=100, learning_rate=0.1, early_stopping=False, random_state=int(rng.integers(2**31))
    )
    scores = model.fit(x_train, y_train).predict_proba(x_test)[:, 1]
    auc = float(roc_auc_score(y_test, scores))
    p_value = _permutation_p_value(scores, y_test, auc, config.permutations, rng)
    drift = bool(p_value < config.alpha and auc >= config.min_auc)
    return {
        "method": "domain classifier (HistGradientBoosting, held-out AUC, permutation p-value)",
        "auc": auc,
        "p_value": p_value,
        "drift": drift,
        "alpha": config.alpha,
        "min_auc": config.min_auc,
        "columns": names,
        "n_reference": len(x_ref),
        "n_current": len(x_cur),
        "n_held_out": len(y_test),
        "permutations": config.permutations,
        "seed": config.seed,
        "reference": ref_name,
        "current": cur_name,
    }


def _permutation_p_value(scores: Any, labels: Any, auc: float, permutations: int, rng: Any) -> float:
    """Share of label permutations of the held-out half whose AUC is at least the observed one."""
    import numpy as np
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    n1 = int(labels.sum())
    n0 = len(labels) - n1
    if n0 == 0 or n1 == 0:
        raise AisecUndecidableError("the held-out half has a single side: cannot compute an AUC")
    hits = 0
    for start in range(0, permutations, 200):  # bounded memory: 200 permutations at a time
        k = min(200, permutations - start)
        perm = rng.permuted(np.tile(labels, (k, 1)), axis=1)
        rank_sums = (perm * ranks).sum(axis=1)
        aucs = (rank_sums - n1 * (n1 + 1) / 2) / (n0 * n1)
        hits += int((aucs >= auc - 1e-12).sum())
    return (1 + hits) / (1 + permutations)


def add_to_report(report: Report, result: dict[str, Any]) -> Report:
    """Add the test's metrics, details and (on drift) a ``high`` finding to a finished drift report.

    A passing report with multivariate drift becomes ``fail``; ``error`` and ``fail`` stay as they are.
    """
    report.metrics["multivariate_auc"] = round(result["auc"], 6)
    report.metrics["multivariate_p_value"] = result["p_value"] if math.isfinite(result["p_value"]) else None
    report.metrics["multivariate_drift"] = int(result["drift"])
    report.details["multivariate"] = result
    if result["drift"]:
        report.add_finding(
            F_MULTIVARIATE,
            "high",
            f"a classifier tells current rows from reference rows (AUC {result['auc']:.3f}, p={result['p_value']:.4f}): "
            "the joint distribution changed",
            ",".join(result["columns"])[:200],
            {k: result[k] for k in ("auc", "p_value", "alpha", "min_auc", "n_held_out")},
        )
        if report.status in ("pass", "warn"):
            report.status = Status.FAIL
            report.summary = f"multivariate drift (AUC {result['auc']:.3f}); {report.summary}"
    return report


def multivariate_drift_report(
    reference: Any,
    current: Any,
    *,
    columns: Sequence[str] | None = None,
    config: MultivariateConfig | None = None,
    subject: str | None = None,
) -> Report:
    """The domain-classifier test alone, as a ``drift`` report (``fail`` on drift)."""
    result = domain_classifier_test(reference, current, columns=columns, config=config)
    report = Report.start("drift", subject or result["current"], tags=("OWASP-ML08", "OWASP-ML02", "AML.T0059"))
    report.finish("pass", f"no multivariate drift (AUC {result['auc']:.3f}, p={result['p_value']:.4f})")
    return add_to_report(report, result)
