"""Track model quality on labelled live data against a baseline."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_aisec.operators.base import AisecBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class ModelPerformanceOperator(AisecBaseOperator):
    """Accuracy, F1 and ROC AUC (or MAE, RMSE, R², MAPE) on labelled live data, compared with baseline values.

    Predictions are read from ``prediction_column`` (and scores from ``score_column``), or computed
    by a model artifact loaded through :func:`airflow_aisec.core.model_loading.load_verified_model`:
    read once, its SHA-256 must match ``model_digest`` and the model scan of the same bytes must
    pass before it is deserialised (from memory); any refusal is an ``error`` report.
    The report (check ``performance``) has the metrics, the per-metric comparison and the confusion
    matrix; a metric below ``baseline - max_degradation`` is a ``high`` finding and fails the task.
    Outlet asset events carry the metrics.

    :param data_path: labelled live data (Parquet/CSV, path or URI). (templated)
    :param label_column: the ground-truth column.
    :param prediction_column: column with the model's predictions (or use ``model_path``).
    :param score_column: column with positive-class scores (for ROC AUC).
    :param model_path: joblib/pickle model artifact (or use ``prediction_column``). (templated)
    :param model_digest: required with ``model_path``: ``sha256:<hex>``. (templated)
    :param model_allow: extra allowlisted globals for the pre-load model scan.
    :param feature_columns: model inputs (default: every column but the label).
    :param baseline: e.g. ``{"accuracy": 0.91, "f1": 0.88, "roc_auc": 0.95}`` (required: without a
        baseline there is nothing to pass).
    :param max_degradation: allowed absolute drop, global or per metric. Default 0.05.
    :param positive_label: positive class for binary F1/ROC AUC (default: the larger label).
    :param min_rows: fewer labelled rows → error (cannot decide). Default 1.
    :param max_unlabelled_share: a larger share of unlabelled rows → error (the labelled rows may have
        been chosen). Default ``None``: unlabelled rows are only counted (``n_unlabelled``).
    :param on_degradation: ``fail`` (default: the task fails), ``warn`` (report status ``warn``, task
        succeeds) or ``pass-through`` (report keeps status ``fail``, task succeeds; a downstream task,
        e.g. :class:`~airflow_aisec.operators.retrain.RetrainTriggerOperator`, decides).
    :param storage_conn_id: Airflow connection for an object-storage ``data_path`` (``s3://`` …; required
        for it: credentials are never taken from the worker's environment). ``model_path`` is a local
        file. (templated)
    :param problem_type: ``classification`` (default) or ``regression``: MAE, RMSE, R² and MAPE (zero
        targets left out of MAPE); the baseline then names those, and error metrics degrade upwards.
    """

    aisec_check = "performance"
    template_fields: Sequence[str] = (
        *AisecBaseOperator.template_fields,
        "data_path",
        "model_path",
        "model_digest",
        "storage_conn_id",
    )
    ui_color = "#e8f5e9"
    outcome_option = "on_degradation"

    def __init__(
        self,
        *,
        data_path: str,
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
        on_degradation: str = "fail",
        storage_conn_id: str | None = None,
        problem_type: str = "classification",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.storage_conn_id = storage_conn_id
        self.set_outcome(on_degradation)
        if (prediction_column is None) == (model_path is None):
            raise ValueError("ModelPerformanceOperator needs exactly one of prediction_column or model_path")
        from airflow_aisec.core.performance import check_thresholds

        if not baseline:
            raise ValueError("ModelPerformanceOperator needs baseline metrics: without them a pass would mean nothing")
        check_thresholds(baseline, max_degradation, problem_type)
        if max_unlabelled_share is not None and not 0.0 <= max_unlabelled_share <= 1.0:
            raise ValueError(f"max_unlabelled_share must be in [0, 1], not {max_unlabelled_share!r}")
        self.data_path = data_path
        self.label_column = label_column
        self.prediction_column = prediction_column
        self.score_column = score_column
        self.model_path = model_path
        self.model_digest = model_digest
        self.model_allow = tuple(model_allow)
        self.feature_columns = feature_columns
        self.baseline = dict(baseline or {})
        self.max_degradation = max_degradation
        self.positive_label = positive_label
        self.min_rows = min_rows
        self.max_unlabelled_share = max_unlabelled_share
        self.on_degradation = on_degradation
        self.problem_type = problem_type

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_aisec.core.performance import evaluate_performance
        from airflow_aisec.hooks.storage import resolve_storage
        from airflow_aisec.utils.uri import local_path

        result = self.run_check(
            context,
            subject=str(self.data_path),
            check=lambda: self.soften(
                evaluate_performance(
                    resolve_storage(str(self.data_path), self.storage_conn_id, what="data"),
                    label_column=self.label_column,
                    prediction_column=self.prediction_column,
                    score_column=self.score_column,
                    model_path=local_path(str(self.model_path)) if self.model_path else None,
                    model_digest=self.model_digest,
                    model_allow=self.model_allow,
                    feature_columns=self.feature_columns,
                    baseline=self.baseline,
                    max_degradation=self.max_degradation,
                    positive_label=self.positive_label,
                    min_rows=self.min_rows,
                    max_unlabelled_share=self.max_unlabelled_share,
                    subject=str(self.data_path),
                    problem_type=self.problem_type,
                )
            ),
        )
        self.emit_asset_events(context, {"status": result["status"], **result["details"]["metrics"]})
        return result
