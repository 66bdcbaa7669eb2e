"""SageMaker posture: the security settings of notebook instances and training jobs (pure; no Airflow).

:func:`audit_sagemaker` describes each resource through a boto3 SageMaker client (under the retry rules
of :mod:`airflow_aisec.core.aws.common`) and returns findings; :func:`check_sagemaker_posture` wraps them
in one report closed by the shared severity gate.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_aisec.core.aws.common import CallError, RetryPolicy, finish_report, retry_call
from airflow_aisec.exceptions import AisecInputError
from airflow_aisec.report import SEVERITIES, Report, parse_fail_on

# --------------------------------------------------------------------------------------- SageMaker
#: id → severity, title, prowler / checkov equivalents, threat tags.
SAGEMAKER_CHECKS: dict[str, dict[str, Any]] = {
    "AISEC-SM-NOTEBOOK-DIRECT-INTERNET": {
        "severity": "high",
        "title": "Notebook instance has direct internet access",
        "prowler": ["sagemaker_notebook_instance_without_direct_internet_access_configured"],
        "checkov": ["CKV_AWS_122"],
        "tags": ["OWASP-ML05", "AML.T0024"],
    },
    "AISEC-SM-NOTEBOOK-ROOT-ACCESS": {
        "severity": "medium",
        "title": "Notebook instance allows root access",
        "prowler": ["sagemaker_notebook_instance_root_access_disabled"],
        "checkov": ["CKV_AWS_307"],
        "tags": ["AML.T0055"],
    },
    "AISEC-SM-NOTEBOOK-NO-KMS": {
        "severity": "medium",
        "title": "Notebook instance storage is not encrypted with a customer-managed KMS key",
        "prowler": ["sagemaker_notebook_instance_encryption_enabled"],
        "checkov": ["CKV_AWS_22"],
        "tags": ["OWASP-ML05"],
    },
    "AISEC-SM-NOTEBOOK-NO-VPC": {
        "severity": "medium",
        "title": "Notebook instance is not in a VPC subnet",
        "prowler": ["sagemaker_notebook_instance_vpc_settings_configured"],
        "checkov": [],
        "tags": ["OWASP-ML05"],
    },
    "AISEC-SM-TRAINING-NO-ICT-ENCRYPTION": {
        "severity": "medium",
        "title": "Training job does not encrypt inter-container traffic",
        "prowler": ["sagemaker_training_jobs_intercontainer_encryption_enabled"],
        "checkov": [],
        "tags": ["OWASP-ML05"],
    },
    "AISEC-SM-TRAINING-NO-VOLUME-KMS": {
        "severity": "medium",
        "title": "Training job volume/output not encrypted with a KMS key",
        "prowler": ["sagemaker_training_jobs_volume_and_output_encryption_enabled"],
        "checkov": [],
        "tags": ["OWASP-ML05"],
    },
    "AISEC-SM-TRAINING-NO-NETWORK-ISOLATION": {
        "severity": "low",
        "title": "Training job containers are not network-isolated",
        "prowler": ["sagemaker_training_jobs_network_isolation_enabled"],
        "checkov": [],
        "tags": ["OWASP-ML02", "AML.T0010"],
    },
}


def evaluate_notebook_instance(name: str, desc: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Findings ``(id, details)`` for a ``DescribeNotebookInstance`` response (AWS defaults when absent)."""
    out: list[tuple[str, dict[str, Any]]] = []
    if desc.get("DirectInternetAccess", "Enabled") == "Enabled":
        out.append(("AISEC-SM-NOTEBOOK-DIRECT-INTERNET", {"DirectInternetAccess": desc.get("DirectInternetAccess")}))
    if desc.get("RootAccess", "Enabled") == "Enabled":
        out.append(("AISEC-SM-NOTEBOOK-ROOT-ACCESS", {"RootAccess": desc.get("RootAccess", "Enabled (default)")}))
    if not desc.get("KmsKeyId"):
        out.append(("AISEC-SM-NOTEBOOK-NO-KMS", {}))
    if not desc.get("SubnetId"):
        out.append(("AISEC-SM-NOTEBOOK-NO-VPC", {}))
    return out


def evaluate_training_job(name: str, desc: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Findings ``(id, details)`` for a ``DescribeTrainingJob`` response."""
    out: list[tuple[str, dict[str, Any]]] = []
    if not desc.get("EnableInterContainerTrafficEncryption"):
        out.append(("AISEC-SM-TRAINING-NO-ICT-ENCRYPTION", {}))
    volume_key = (desc.get("ResourceConfig") or {}).get("VolumeKmsKeyId")
    output_key = (desc.get("OutputDataConfig") or {}).get("KmsKeyId")
    if not volume_key or not output_key:
        out.append(("AISEC-SM-TRAINING-NO-VOLUME-KMS", {"volume_kms_key": volume_key, "output_kms_key": output_key}))
    if not desc.get("EnableNetworkIsolation"):
        out.append(("AISEC-SM-TRAINING-NO-NETWORK-ISOLATION", {"vpc": bool(desc.get("VpcConfig"))}))
    return out


def audit_sagemaker(
    client: Any,
    *,
    notebook_instances: Sequence[str] = (),
    training_jobs: Sequence[str] = (),
    retry: RetryPolicy | None = None,
) -> list[dict[str, Any]]:
    """Security settings of SageMaker notebook instances and training jobs (the settings prowler and checkov
    also check: direct internet access, root access, KMS keys, VPC, inter-container traffic encryption,
    network isolation; ids in :data:`SAGEMAKER_CHECKS`), as ``Report.add_finding`` keyword dicts.

    A resource that does not exist is an input error; a denied read is undecidable.
    """
    from airflow_aisec.exceptions import AisecUndecidableError

    retry = retry or RetryPolicy()
    out: list[dict[str, Any]] = []
    targets = [
        ("notebook-instance", n, "describe_notebook_instance", "NotebookInstanceName") for n in notebook_instances
    ]
    targets += [("training-job", j, "describe_training_job", "TrainingJobName") for j in training_jobs]
    for kind, name, api, param in targets:
        try:
            desc = retry_call(
                functools.partial(getattr(client, api), **{param: name}),
                target=f"SageMaker {kind} {name!r}",
                name=name,
                api=api,
                retry=retry,
            )
        except CallError as exc:
            if exc.kind == "missing" or "RecordNotFound" in str(exc) or "not found" in str(exc).lower():
                raise AisecInputError(f"SageMaker {kind} {name!r} not found ({exc.api})") from None
            raise AisecUndecidableError(str(exc)) from None
        evaluate = evaluate_notebook_instance if kind == "notebook-instance" else evaluate_training_job
        for check_id, details in evaluate(name, desc):
            check = SAGEMAKER_CHECKS[check_id]
            out.append(
                {
                    "id": check_id,
                    "severity": check["severity"],
                    "title": check["title"],
                    "location": f"sagemaker/{kind}/{name}",
                    "details": {
                        **details,
                        "equivalents": {"prowler": check["prowler"], "checkov": check["checkov"]},
                        "tags": check["tags"],
                    },
                }
            )
    return out


#: The report ``check`` of a SageMaker posture run. The report schema has no SageMaker check name yet;
#: these findings have always been reported by the IAM lint (same check, same UI and metrics), so a
#: SageMaker-only run keeps that name.
SAGEMAKER_REPORT_CHECK = "iam_policy"


def check_sagemaker_posture(
    client: Any,
    *,
    notebook_instances: Sequence[str] = (),
    training_jobs: Sequence[str] = (),
    fail_on: str = "low",
    retry: RetryPolicy | None = None,
) -> Report:
    """Check the security settings of SageMaker notebook instances and training jobs; one report.

    :param client: a boto3 SageMaker client (or anything with the same ``describe_*`` methods).
    :param fail_on: lowest severity that fails the report; lower findings give ``warn``.
    :raises AisecInputError: nothing to check, or a resource that does not exist.
    :raises AisecUndecidableError: a denied or failed read (the report would be ``error``).
    :raises AisecTransientError: throttling / 5xx / network errors outlasting the retries.
    """
    if not notebook_instances and not training_jobs:
        raise AisecInputError("give at least one SageMaker notebook instance or training job to check")
    parse_fail_on(fail_on, choices=SEVERITIES)
    names = [
        *(f"sagemaker/notebook-instance/{n}" for n in notebook_instances),
        *(f"sagemaker/training-job/{j}" for j in training_jobs),
    ]
    subject = names[0] if len(names) == 1 else f"{len(names)} SageMaker resources"
    findings = audit_sagemaker(client, notebook_instances=notebook_instances, training_jobs=training_jobs, retry=retry)
    report = Report.start(SAGEMAKER_REPORT_CHECK, subject, tags=["OWASP-ML05"])
    for f in findings:
        report.add_finding(**f)
        report.add_tags(*f["details"]["tags"])
    report.metrics["sagemaker_resources"] = len(names)
    report.details["resources"] = names
    return finish_report(report, fail_on)
