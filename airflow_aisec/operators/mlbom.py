"""ML-BOM operator: a CycloneDX 1.6 bill of materials of a trained model, from the reports upstream.

.. code-block:: python

    ml_bom = MLBomOperator(
        task_id="write_ml_bom",
        bom_path="/data/models/clf.mlbom.cdx.json",
        model_name="clf",
        manifest_path="/data/models/clf.manifest.json",  # written by ArtifactHashOperator
        audit_task_id="audit_dependencies",  # its SBOM: packages + VEX entries
        provenance_task_id="verify_dataset_provenance",  # the dataset and its digest
        split_task_id="split_dataset",  # the splits and their digests
        performance_task_id="train_model",  # metrics for the model card
    )

The model becomes a ``machine-learning-model`` component with the hashes of its integrity manifest
and a minimal model card; the datasets and splits become ``data`` components; the environment's
packages and vulnerabilities come from the dependency audit's SBOM, whose SHA-256 must still match the
audit's report. The document is validated against the CycloneDX 1.6 schema before it is written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_aisec.operators.base import REPORT_XCOM_KEY, AisecBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class MLBomOperator(AisecBaseOperator):
    """Write the ML-BOM (CycloneDX 1.6 JSON) of a trained model; the report's ``details.bom`` has its digest.

    :param bom_path: where to write the ML-BOM (atomically). (templated)
    :param model_name: the model's name. (templated)
    :param manifest_path: the model's integrity manifest (``ArtifactHashOperator``'s output). (templated)
    :param model_version: the model's version, if any. (templated)
    :param model_task: the model card's ML task (``classification``, ``regression`` …).
    :param audit_task_id: the ``DependencyAuditOperator`` task whose SBOM supplies the environment.
    :param provenance_task_id: the ``DatasetProvenanceOperator`` task that verified the dataset.
    :param split_task_id: the ``ReproducibleSplitOperator`` task that wrote the splits.
    :param performance_task_id: the task whose metrics fill the model card: an aisec report (its
        ``metrics``) or a task returning a ``name → number`` mapping.
    """

    aisec_check = "ml_bom"
    lineage_inputs = ("manifest_path",)
    lineage_outputs = ("bom_path",)
    template_fields: Sequence[str] = (
        *AisecBaseOperator.template_fields,
        "bom_path",
        "model_name",
        "manifest_path",
        "model_version",
    )
    ui_color = "#ede7f6"
    subject_attributes = ("model_name",)

    def __init__(
        self,
        *,
        bom_path: str,
        model_name: str,
        manifest_path: str,
        model_version: str | None = None,
        model_task: str | None = None,
        audit_task_id: str | None = None,
        provenance_task_id: str | None = None,
        split_task_id: str | None = None,
        performance_task_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not bom_path or not model_name or not manifest_path:
            raise ValueError("bom_path, model_name and manifest_path are required")
        self.bom_path = bom_path
        self.model_name = model_name
        self.manifest_path = manifest_path
        self.model_version = model_version
        self.model_task = model_task
        self.audit_task_id = audit_task_id
        self.provenance_task_id = provenance_task_id
        self.split_task_id = split_task_id
        self.performance_task_id = performance_task_id

    def _pull(self, context: Context, task_id: str | None, *, report: bool = True) -> Mapping[str, Any] | None:
        """An upstream report (or, for metrics, its return value); a named task without one is an error."""
        from airflow_aisec.exceptions import AisecInputError

        if not task_id:
            return None
        ti = context["ti"]
        value = ti.xcom_pull(task_ids=task_id, key=REPORT_XCOM_KEY)
        if value is None and not report:
            value = ti.xcom_pull(task_ids=task_id)
        if not isinstance(value, Mapping):
            raise AisecInputError(f"task {task_id!r} left no report in XCom for the ML-BOM")
        return value

    def _build(self, context: Context) -> Any:
        from airflow_aisec.core.sbom import data_from_reports, write_ml_bom
        from airflow_aisec.exceptions import AisecInputError

        audit = self._pull(context, self.audit_task_id)
        perf = self._pull(context, self.performance_task_id, report=False)
        metrics = perf.get("metrics") if perf and perf.get("schema") == "aisec.report/v1" else perf
        sbom = (audit or {}).get("details", {}).get("sbom")
        if audit is not None and not sbom:
            raise AisecInputError(f"task {self.audit_task_id!r} wrote no SBOM (set its sbom_path)")
        return write_ml_bom(
            bom_path=str(self.bom_path),
            model_name=str(self.model_name),
            manifest_path=str(self.manifest_path),
            data=data_from_reports(
                self._pull(context, self.provenance_task_id), self._pull(context, self.split_task_id)
            ),
            environment_sbom=sbom,
            metrics=metrics,
            model_version=str(self.model_version) if self.model_version else None,
            task=self.model_task,
        )

    def execute(self, context: Context) -> dict[str, Any]:
        data = self.run_check(context, subject=str(self.model_name), check=lambda: self._build(context))
        bom = data["details"]["bom"]
        self.emit_asset_events(context, {"sha256": bom["sha256"], "format": bom["format"]})
        return data
