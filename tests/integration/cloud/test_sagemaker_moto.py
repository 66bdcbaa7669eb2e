"""SageMaker settings (notebook instance and training job hardening) read through boto3 from moto."""

from __future__ import annotations

import uuid

import pytest

from airflow_aisec.cli import main
from airflow_aisec.core.aws.iam import lint_iam_policies
from airflow_aisec.core.aws.sagemaker import check_sagemaker_posture
from airflow_aisec.exceptions import AisecInputError

pytestmark = pytest.mark.integration
ROLE = "arn:aws:iam::123456789012:role/sagemaker-execution"


def _default_resources(sm):
    nb, job = f"nb-{uuid.uuid4().hex[:6]}", f"tj-{uuid.uuid4().hex[:6]}"
    sm.create_notebook_instance(NotebookInstanceName=nb, InstanceType="ml.t3.medium", RoleArn=ROLE)
    sm.create_training_job(
        TrainingJobName=job,
        AlgorithmSpecification={
            "TrainingImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/t:1",
            "TrainingInputMode": "File",
        },
        RoleArn=ROLE,
        OutputDataConfig={"S3OutputPath": "s3://models/out"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        StoppingCondition={"MaxRuntimeInSeconds": 600},
    )
    return nb, job


def test_sagemaker_posture_reports_what_the_iam_lint_reported(moto_server):
    sm = moto_server.client("sagemaker")
    nb, job = _default_resources(sm)
    report = check_sagemaker_posture(sm, notebook_instances=[nb], training_jobs=[job]).to_dict()
    before = lint_iam_policies(sagemaker_client=sm, notebook_instances=[nb], training_jobs=[job]).to_dict()
    assert report["status"] == before["status"] == "fail"
    assert report["check"] == "iam_policy"
    assert report["subject"] == "2 SageMaker resources"
    assert report["findings"] == before["findings"]
    assert report["metrics"]["sagemaker_resources"] == 2
    assert report["metrics"]["findings_high"] == 1  # the severity gate filled the counts
    with pytest.raises(AisecInputError, match=r"SageMaker notebook-instance 'nope' not found"):
        check_sagemaker_posture(sm, notebook_instances=["nope"])
    with pytest.raises(AisecInputError, match="at least one SageMaker notebook instance or training job"):
        check_sagemaker_posture(sm)


def test_default_notebook_and_training_job_are_flagged(moto_server):
    sm = moto_server.client("sagemaker")
    nb, job = _default_resources(sm)
    report = lint_iam_policies(sagemaker_client=sm, notebook_instances=[nb], training_jobs=[job]).to_dict()
    assert report["status"] == "fail"
    got = sorted((f["id"], f["location"]) for f in report["findings"])
    assert got == [
        ("AISEC-SM-NOTEBOOK-DIRECT-INTERNET", f"sagemaker/notebook-instance/{nb}"),
        ("AISEC-SM-NOTEBOOK-NO-KMS", f"sagemaker/notebook-instance/{nb}"),
        ("AISEC-SM-NOTEBOOK-NO-VPC", f"sagemaker/notebook-instance/{nb}"),
        ("AISEC-SM-NOTEBOOK-ROOT-ACCESS", f"sagemaker/notebook-instance/{nb}"),
        ("AISEC-SM-TRAINING-NO-ICT-ENCRYPTION", f"sagemaker/training-job/{job}"),
        ("AISEC-SM-TRAINING-NO-NETWORK-ISOLATION", f"sagemaker/training-job/{job}"),
        ("AISEC-SM-TRAINING-NO-VOLUME-KMS", f"sagemaker/training-job/{job}"),
    ]
    assert report["metrics"]["sagemaker_resources"] == 2


def test_missing_notebook_is_an_input_error(moto_server):
    with pytest.raises(AisecInputError, match=r"SageMaker notebook-instance 'nope' not found"):
        lint_iam_policies(sagemaker_client=moto_server.client("sagemaker"), notebook_instances=["nope"])


def test_cli_notebook_instance(moto_server, monkeypatch, tmp_path, capsys):
    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
    }.items():
        monkeypatch.setenv(k, v)
    nb = f"nb-{uuid.uuid4().hex[:6]}"
    moto_server.client("sagemaker").create_notebook_instance(
        NotebookInstanceName=nb,
        InstanceType="ml.t3.medium",
        RoleArn=ROLE,
        DirectInternetAccess="Disabled",
        RootAccess="Disabled",
        KmsKeyId="arn:aws:kms:us-east-1:123456789012:key/k1",
        SubnetId="subnet-0123",
        SecurityGroupIds=["sg-0123"],
    )
    code = main(["iam-lint", "--notebook-instance", nb, "--endpoint-url", moto_server.endpoint_url])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith(f"[PASS] iam_policy sagemaker/notebook-instance/{nb}")
