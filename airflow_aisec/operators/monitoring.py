"""Monitoring when labels are late or absent: label-free performance estimate, multivariate drift."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_aisec.operators.base import AisecBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class PerformanceEstimateOperator(AisecBaseOperator):
    """Estimate a classifier's accuracy and F1 on a window without labels (confidence-based).

    The model's predicted probabilities are calibrated on a labelled reference set (isotonic, per
    class), then the expected confusion matrix on the current window gives the estimated accuracy and
    F1 with a Monte Carlo interval (report check ``performance_estimate``). An estimate more than
    ``max_degradation`` below the baseline (default: realised on the reference) is a ``high`` finding.
    Valid under covariate shift; blind to concept shift (check realised labels when they arrive).

    :param reference_path: labelled rows with the model's probability columns. (templated)
    :param current_path: current rows with the probability columns. (templated)
    :param proba_columns: one column per class (model order), or one positive-class column.
    :param label_column: the reference's label column.
    :param classes: class labels of the columns (default: their names; one column: ``["0", "1"]``).
    :param threshold: decision threshold of a one-column binary model. Default 0.5.
    :param baseline: ``{"accuracy": …, "f1": …}`` to compare with (default: realised on the reference).
    :param max_degradation: allowed drop. Default 0.05.
    :param seed: seeds the interval's draws. Default 0.
    :param on_degradation: ``fail`` (default), ``warn`` or ``pass-through`` (a retrain guard decides).
    :param storage_conn_id: Airflow connection for object-storage inputs (``s3://`` …; required for them,
        local paths need none).
    """

    aisec_check = "performance_estimate"
    template_fields: Sequence[str] = (*AisecBaseOperator.template_fields, "reference_path", "current_path")
    ui_color = "#e8f5e9"
    outcome_option = "on_degradation"

    def __init__(
        self,
        *,
        reference_path: str,
        current_path: str,
        proba_columns: Sequence[str],
        label_column: str,
        classes: Sequence[str] | None = None,
        threshold: float = 0.5,
        baseline: Mapping[str, float] | None = None,
        max_degradation: float = 0.05,
        seed: int = 0,
        on_degradation: str = "fail",
        storage_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.set_outcome(on_degradation)
        if not proba_columns:
            raise ValueError("PerformanceEstimateOperator needs proba_columns")
        if not 0.0 <= max_degradation <= 1.0:
            raise ValueError(f"max_degradation must be in [0, 1], not {max_degradation!r}")
        self.reference_path = reference_path
        self.current_path = current_path
        self.proba_columns = list(proba_columns)
        self.label_column = label_column
        self.classes = list(classes) if classes else None
        self.threshold = threshold
        self.baseline = dict(baseline) if baseline else None
        self.max_degradation = max_degradation
        self.seed = seed
        self.on_degradation = on_degradation
        self.storage_conn_id = storage_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_aisec.core.performance_estimate import estimate_performance
        from airflow_aisec.hooks.storage import resolve_storage

        conn = self.storage_conn_id
        return self.run_check(
            context,
            subject=str(self.current_path),
            check=lambda: self.soften(
                estimate_performance(
                    resolve_storage(str(self.reference_path), conn, what="reference data"),
                    resolve_storage(str(self.current_path), conn, what="current data"),
                    proba_columns=self.proba_columns,
                    label_column=self.label_column,
                    classes=self.classes,
                    threshold=self.threshold,
                    baseline=self.baseline,
                    max_degradation=self.max_degradation,
                    seed=self.seed,
                    subject=str(self.current_path),
                )
            ),
        )


class MultivariateDriftOperator(AisecBaseOperator):
    """Domain-classifier drift test: can a classifier tell current rows from reference rows?

    A gradient-boosted classifier is trained on half of a seeded sample of both sides; the held-out
    AUC with a permutation p-value decides (drift when ``p < alpha`` and ``AUC >= min_auc``). Catches
    changes in how columns move together that per-column tests miss. Report check ``drift``.

    :param reference_path: reference rows. (templated)
    :param current_path: current window. (templated)
    :param columns: columns to use (default: all of the reference).
    :param alpha: significance level. Default 0.05.
    :param min_auc: effect-size floor. Default 0.55.
    :param max_rows: rows sampled per side. Default 5000.
    :param seed: seeds sampling, split, classifier and permutations. Default 0.
    :param on_drift: ``fail`` (default), ``warn`` or ``pass-through``.
    :param storage_conn_id: Airflow connection for object-storage inputs (``s3://`` …; required for them,
        local paths need none).
    """

    aisec_check = "drift"
    template_fields: Sequence[str] = (*AisecBaseOperator.template_fields, "reference_path", "current_path")
    ui_color = "#e3f2fd"
    outcome_option = "on_drift"

    def __init__(
        self,
        *,
        reference_path: str,
        current_path: str,
        columns: Sequence[str] | None = None,
        alpha: float = 0.05,
        min_auc: float = 0.55,
        max_rows: int = 5000,
        seed: int = 0,
        on_drift: str = "fail",
        storage_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.set_outcome(on_drift)
        from airflow_aisec.core.drift_multivariate import MultivariateConfig

        self.config = MultivariateConfig(alpha=alpha, min_auc=min_auc, max_rows=max_rows, seed=seed)
        self.reference_path = reference_path
        self.current_path = current_path
        self.columns = list(columns) if columns else None
        self.on_drift = on_drift
        self.storage_conn_id = storage_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_aisec.core.drift_multivariate import multivariate_drift_report
        from airflow_aisec.hooks.storage import resolve_storage

        conn = self.storage_conn_id
        return self.run_check(
            context,
            subject=str(self.current_path),
            check=lambda: self.soften(
                multivariate_drift_report(
                    resolve_storage(str(self.reference_path), conn, what="reference data"),
                    resolve_storage(str(self.current_path), conn, what="current data"),
                    columns=self.columns,
                    config=self.config,
                    subject=str(self.current_path),
                )
            ),
        )
