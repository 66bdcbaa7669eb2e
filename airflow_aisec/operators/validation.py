"""Training-data validation operator: a Great Expectations 1.x suite plus data-poisoning heuristics.

.. code-block:: python

    validate = DataValidationOperator(
        task_id="validate_training_data",
        dataset_uri="s3://ml-data/churn/train.parquet",
        storage_conn_id="aws_default",
        expectations="include/suites/churn.json",  # or [{"type": ..., "kwargs": ...}] / GX objects
        reference="/srv/profiles/churn.reference.json",
        label_column="churned",
        thresholds={"max_duplicate_share": 0.005},
    )

Data is read at execute time only (never in ``__init__``); GX, pandas and scipy are imported lazily.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_aisec.operators.base import AisecBaseOperator

if TYPE_CHECKING:
    import pandas as pd
    from airflow.sdk import Context


def load_table(uri: str, conn_id: str | None = None, fmt: str | None = None) -> pd.DataFrame:
    """Read a CSV/Parquet table from a local path or object storage (``ObjectStoragePath`` + ``conn_id``)."""
    from pathlib import PurePosixPath

    from airflow_aisec.core.validation import read_table
    from airflow_aisec.exceptions import AisecUndecidableError
    from airflow_aisec.hooks.storage import resolve_storage

    path = resolve_storage(str(uri), conn_id, what="dataset")
    if isinstance(path, str):
        return read_table(path, fmt)
    fmt = fmt or PurePosixPath(str(path)).suffix.lstrip(".")
    try:
        with path.open("rb") as fh:
            return read_table(fh, fmt)
    except FileNotFoundError as exc:
        raise AisecUndecidableError(f"dataset {uri!r} does not exist") from exc


class DataValidationOperator(AisecBaseOperator):
    """Validate a CSV/Parquet dataset with a GX expectation suite and poisoning heuristics.

    Fails when a critical GX expectation fails or a poisoning heuristic exceeds its threshold
    (label-distribution shift, exact-duplicate share, out-of-range rows, new categories; findings
    tagged OWASP-ML02 / AML.T0020); warns when only ``warning``-severity expectations fail. The
    report carries each failed expectation with GX's observed value.

    :param dataset_uri: local path or object-storage URI of a CSV/Parquet file. (templated)
    :param expectations: GX expectation objects, ``{"type", "kwargs"}`` dicts, a suite dict, or the
        path of a suite JSON file. (templated)
    :param reference: known-good reference: a profile dict / JSON file from
        :func:`~airflow_aisec.core.validation.build_reference_profile`, or a CSV/Parquet path. (templated)
    :param label_column: label column for the label-shift and new-label checks. (templated)
    :param thresholds: :class:`~airflow_aisec.core.validation.PoisoningThresholds` fields to override.
    :param storage_conn_id: Airflow connection for object-storage URIs (required for ``s3://`` …:
        credentials are never taken from the worker's environment). (templated)
    :param conn_id: older name of ``storage_conn_id`` (still accepted).
    :param file_format: ``csv`` or ``parquet`` (default: from the file name).
    :param suite_name: name of the ephemeral GX suite.
    """

    aisec_check = "data_validation"
    lineage_inputs = ("dataset_uri", "reference")
    template_fields: Sequence[str] = (
        *AisecBaseOperator.template_fields,
        "dataset_uri",
        "expectations",
        "reference",
        "label_column",
        "storage_conn_id",
    )
    ui_color = "#fff8e1"

    def __init__(
        self,
        *,
        dataset_uri: str,
        expectations: Any = None,
        reference: str | Mapping[str, Any] | None = None,
        label_column: str | None = None,
        thresholds: Mapping[str, Any] | None = None,
        conn_id: str | None = None,
        file_format: str | None = None,
        suite_name: str = "aisec",
        storage_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        from airflow_aisec.hooks.storage import storage_conn_id as pick_conn_id

        if expectations is None and reference is None:
            raise ValueError("give expectations and/or reference: there is nothing to validate")
        if file_format is not None and file_format not in ("csv", "parquet"):
            raise ValueError(f"file_format must be 'csv' or 'parquet', not {file_format!r}")
        self.dataset_uri = dataset_uri
        self.expectations = expectations
        self.reference = reference
        self.label_column = label_column
        self.thresholds = dict(thresholds) if thresholds else None
        self.storage_conn_id = pick_conn_id(storage_conn_id, conn_id, "conn_id")
        self.file_format = file_format
        self.suite_name = suite_name

    def _validate(self) -> Any:
        from airflow_aisec.core.validation import validate_dataframe
        from airflow_aisec.utils.uri import is_remote, local_path

        reference = self.reference
        if isinstance(reference, str) and is_remote(reference):
            if reference.endswith(".json"):
                from airflow_aisec.hooks.storage import StorageHook
                from airflow_aisec.utils import strictjson

                data = StorageHook(self.storage_conn_id).read_bytes(reference, what="reference profile")
                reference = strictjson.loads(data, source=f"reference profile {reference!r}")
            else:
                reference = load_table(reference, self.storage_conn_id)
        elif isinstance(reference, str):
            reference = local_path(reference)
        return validate_dataframe(
            load_table(str(self.dataset_uri), self.storage_conn_id, self.file_format),
            subject=str(self.dataset_uri),
            expectations=self.expectations,
            reference=reference,
            label_column=self.label_column,
            thresholds=self.thresholds,
            suite_name=self.suite_name,
        )

    def execute(self, context: Context) -> dict[str, Any]:
        data = self.run_check(context, subject=str(self.dataset_uri), check=self._validate)
        self.emit_asset_events(
            context, {"status": data["status"], "rows": data["metrics"].get("rows"), "findings": len(data["findings"])}
        )
        return data
