"""Adversarial-robustness gate before a model is published."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_aisec.operators.base import AisecBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class AdversarialRobustnessOperator(AisecBaseOperator):
    """Attack a verified scikit-learn classifier with black-box evasion attacks and gate on robust accuracy.

    The model is loaded through :func:`airflow_aisec.core.model_loading.load_verified_model` (digest
    checked and bytes scanned before they are deserialised). A seeded sample of held-out rows is
    attacked with the Adversarial Robustness Toolbox (``hopskipjump`` or ``boundary``; install the
    ``robustness`` extra); an attack succeeds when it changes a correct prediction with a
    perturbation of L2 norm at most ``epsilon`` (feature standard-deviation units). The report (check
    ``robustness``) has clean and adversarial accuracy, attack success rate, mean perturbation norm
    and query count; adversarial accuracy below ``min_robust_accuracy`` or a drop above
    ``max_accuracy_drop`` is a ``high`` finding and fails the task. Exceeding the wall-clock budget is
    an ``error`` unless ``accept_partial``.

    :param data_path: held-out labelled rows (Parquet/CSV, local path or URI). (templated)
    :param model_path: joblib/pickle classifier. (templated)
    :param model_digest: ``sha256:<hex>`` of the model file (or give ``manifest_path``). (templated)
    :param manifest_path: manifest recording the model's SHA-256. (templated)
    :param label_column: the ground-truth column.
    :param feature_columns: model inputs (default: every column but the label).
    :param model_allow: extra allowlisted globals for the pre-load model scan.
    :param attack: ``hopskipjump`` (default) or ``boundary``.
    :param min_robust_accuracy: fail below this adversarial accuracy.
    :param max_accuracy_drop: fail when clean minus adversarial accuracy exceeds this.
    :param epsilon: perturbation bound. Default 0.5.
    :param sample_size: rows attacked. Default 50.
    :param max_iter: attack iterations per row. Default 5.
    :param max_eval: HopSkipJump queries per gradient estimate. Default 100.
    :param seed: seeds the sample and the attack. Default 0.
    :param time_budget_seconds: wall-clock budget. Default 120.
    :param accept_partial: report the rows attacked when the budget runs out instead of an error.
    :param storage_conn_id: Airflow connection for an object-storage ``data_path`` (``s3://`` …; required
        for it, local paths need none). The model is loaded from a local path (verify-before-load).
    """

    aisec_check = "robustness"
    template_fields: Sequence[str] = (
        *AisecBaseOperator.template_fields,
        "data_path",
        "model_path",
        "model_digest",
        "manifest_path",
    )
    ui_color = "#fff3e0"

    def __init__(
        self,
        *,
        data_path: str,
        model_path: str,
        label_column: str,
        model_digest: str | None = None,
        manifest_path: str | None = None,
        feature_columns: list[str] | None = None,
        model_allow: Sequence[str] = (),
        attack: str = "hopskipjump",
        min_robust_accuracy: float | None = None,
        max_accuracy_drop: float | None = None,
        epsilon: float = 0.5,
        sample_size: int = 50,
        max_iter: int = 5,
        max_eval: int = 100,
        seed: int = 0,
        time_budget_seconds: float = 120.0,
        accept_partial: bool = False,
        storage_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if model_digest is None and manifest_path is None:
            raise ValueError("AdversarialRobustnessOperator needs model_digest or manifest_path (verify before load)")
        from airflow_aisec.core.robustness import RobustnessConfig

        self.config = RobustnessConfig(
            attack=attack,
            sample_size=sample_size,
            epsilon=epsilon,
            max_iter=max_iter,
            max_eval=max_eval,
            seed=seed,
            time_budget_seconds=time_budget_seconds,
            accept_partial=accept_partial,
            min_robust_accuracy=min_robust_accuracy,
            max_accuracy_drop=max_accuracy_drop,
        )
        self.data_path = data_path
        self.model_path = model_path
        self.label_column = label_column
        self.model_digest = model_digest
        self.manifest_path = manifest_path
        self.feature_columns = feature_columns
        self.model_allow = tuple(model_allow)
        self.storage_conn_id = storage_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_aisec.core.robustness import evaluate_robustness
        from airflow_aisec.hooks.storage import resolve_storage

        return self.run_check(
            context,
            subject=str(self.model_path),
            check=lambda: evaluate_robustness(
                resolve_storage(str(self.data_path), self.storage_conn_id, what="held-out data"),
                model_path=self.model_path,
                model_digest=self.model_digest,
                manifest_path=self.manifest_path,
                model_allow=self.model_allow,
                label_column=self.label_column,
                feature_columns=self.feature_columns,
                config=self.config,
                subject=str(self.model_path),
            ),
        )
