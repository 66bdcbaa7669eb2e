"""Reproducible split operator: seeded, optionally stratified train/test(/validation) Parquet splits.

.. code-block:: python

    split = ReproducibleSplitOperator(
        task_id="split",
        dataset_uri="/data/churn/train.csv",
        output_dir="/data/churn/splits/{{ run_id }}",
        seed=42,
        test_size=0.2,
        stratify_column="churned",
    )

Same input + same seed ⇒ byte-identical files and digests (recorded in the report and on outlet
asset events); a different seed ⇒ different digests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_aisec.operators.base import AisecBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class ReproducibleSplitOperator(AisecBaseOperator):
    """Split a CSV/Parquet dataset deterministically and write each split as Parquet (atomically).

    The report's ``details.splits`` maps ``train``/``test``/``validation`` to ``{path, rows, sha256,
    class_balance}``; ``details.parameters`` records the seed. Outlet asset events carry the digests.

    :param dataset_uri: local path or object-storage URI of the input table. (templated)
    :param output_dir: local folder for ``<prefix>train.parquet`` etc. (an object-storage URI is refused). (templated)
    :param seed: random seed (an integer in ``[0, 2**32)``), recorded in the report.
    :param test_size: test fraction of the whole dataset.
    :param validation_size: validation fraction of the whole dataset (0: no validation split).
    :param stratify_column: column whose class balance each split keeps. (templated)
    :param prefix: file-name prefix of the splits. (templated)
    :param storage_conn_id: Airflow connection for an object-storage input (required for ``s3://`` …:
        credentials are never taken from the worker's environment). (templated)
    :param conn_id: older name of ``storage_conn_id`` (still accepted).
    :param file_format: ``csv`` or ``parquet`` (default: from the file name).
    """

    aisec_check = "split"
    lineage_inputs = ("dataset_uri",)
    template_fields: Sequence[str] = (
        *AisecBaseOperator.template_fields,
        "dataset_uri",
        "output_dir",
        "stratify_column",
        "prefix",
        "storage_conn_id",
    )
    ui_color = "#e3f2fd"

    def __init__(
        self,
        *,
        dataset_uri: str,
        output_dir: str,
        seed: int,
        test_size: float = 0.2,
        validation_size: float = 0.0,
        stratify_column: str | None = None,
        prefix: str = "",
        conn_id: str | None = None,
        file_format: str | None = None,
        storage_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        from airflow_aisec.hooks.storage import storage_conn_id as pick_conn_id

        if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**32:
            raise ValueError(f"seed must be an integer in [0, 2**32), not {seed!r}")
        if not 0.0 < test_size < 1.0 or not 0.0 <= validation_size < 1.0 or test_size + validation_size >= 1.0:
            raise ValueError("test_size and validation_size must be fractions with test_size + validation_size < 1")
        self.dataset_uri = dataset_uri
        self.output_dir = output_dir
        self.seed = seed
        self.test_size = test_size
        self.validation_size = validation_size
        self.stratify_column = stratify_column
        self.prefix = prefix
        self.storage_conn_id = pick_conn_id(storage_conn_id, conn_id, "conn_id")
        self.file_format = file_format

    def _split(self) -> Any:
        from airflow_aisec.core.split import split_dataset
        from airflow_aisec.operators.validation import load_table
        from airflow_aisec.utils.uri import local_path

        output_dir = local_path(str(self.output_dir))  # splits are written locally (atomic rename)
        return split_dataset(
            load_table(str(self.dataset_uri), self.storage_conn_id, self.file_format),
            output_dir=output_dir,
            seed=self.seed,
            test_size=self.test_size,
            validation_size=self.validation_size,
            stratify_column=self.stratify_column or None,
            subject=str(self.dataset_uri),
            prefix=self.prefix,
        )

    def lineage_datasets(self, report: Any) -> tuple[list[str], list[str]]:
        """The input table, and the split files the report lists as outputs."""
        inputs, _ = super().lineage_datasets(report)
        splits = (report.get("details") or {}).get("splits") or {}
        return inputs, [str(s["path"]) for s in splits.values() if isinstance(s, dict) and s.get("path")]

    def execute(self, context: Context) -> dict[str, Any]:
        data = self.run_check(context, subject=str(self.dataset_uri), check=self._split)
        splits = data["details"]["splits"]
        extra: dict[str, Any] = {"seed": self.seed}
        for name, s in splits.items():
            extra[f"{name}_sha256"] = s["sha256"]
            extra[f"{name}_rows"] = s["rows"]
        self.emit_asset_events(context, extra)
        return data
