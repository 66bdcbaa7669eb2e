"""Cloud operators: construction, templating, and the missing-providers-amazon path (DAG runs against a
real S3 API are in tests/integration/cloud/test_operators_cloud.py)."""

from __future__ import annotations

import sys
import warnings

import pytest

from airflow_aisec.exceptions import AisecInputError
from airflow_aisec.operators.cloud import IamPolicyLintOperator, S3BucketPostureOperator, SageMakerPostureOperator


def test_template_fields_are_public_api():
    assert S3BucketPostureOperator.template_fields == (
        "report_path",
        "sarif_path",
        "buckets",
        "aws_conn_id",
        "region_name",
        "kms_key_id",
        "checks",
        "enforce",
        "verify",
    )
    assert IamPolicyLintOperator.template_fields == (
        "report_path",
        "sarif_path",
        "policy_files",
        "role_names",
        "aws_conn_id",
        "training_data_buckets",
        "sagemaker_notebook_instances",
        "sagemaker_training_jobs",
        "region_name",
        "verify",
    )
    assert SageMakerPostureOperator.template_fields == (
        "report_path",
        "sarif_path",
        "notebook_instances",
        "training_jobs",
        "aws_conn_id",
        "region_name",
        "verify",
    )
    assert S3BucketPostureOperator.aisec_check == "s3_posture"
    assert IamPolicyLintOperator.aisec_check == "iam_policy"
    assert SageMakerPostureOperator.aisec_check == "iam_policy"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fail_on": "bad"}, "fail_on must be one of"),
        ({"max_attempts": 0}, "max_attempts must be at least 1"),
    ],
)
def test_s3_operator_validates_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        S3BucketPostureOperator(task_id="t", buckets=["b"], **kwargs)


def test_iam_operator_needs_a_source_and_a_known_purpose():
    with pytest.raises(ValueError, match="needs policy_files, role_names or SageMaker resources"):
        IamPolicyLintOperator(task_id="t")
    with pytest.raises(ValueError, match="purpose must be 'inference' or 'training'"):
        IamPolicyLintOperator(task_id="t", policy_files=["p.json"], purpose="batch")


def test_constructor_builds_no_hook():
    op = S3BucketPostureOperator(task_id="t", buckets="a, b", aws_conn_id="does_not_exist")
    assert "hook" not in op.__dict__  # built lazily at run time only


def test_sagemaker_operator_needs_a_resource_and_validates_arguments():
    with pytest.raises(ValueError, match="needs notebook_instances or training_jobs"):
        SageMakerPostureOperator(task_id="t")
    with pytest.raises(ValueError, match="fail_on must be one of"):
        SageMakerPostureOperator(task_id="t", training_jobs="j", fail_on="bad")
    with pytest.raises(ValueError, match="botocore_config must be a dict"):
        SageMakerPostureOperator(task_id="t", training_jobs="j", botocore_config="retries=1")


def test_sagemaker_parameters_of_the_iam_operator_are_deprecated_but_kept():
    with pytest.warns(DeprecationWarning, match="SageMakerPostureOperator"):
        op = IamPolicyLintOperator(task_id="t", sagemaker_notebook_instances=["nb"])
    assert op.sagemaker_notebook_instances == ["nb"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # linting IAM alone warns nothing
        IamPolicyLintOperator(task_id="t2", policy_files=["p.json"])


@pytest.mark.parametrize(
    ("operator", "kwargs", "client_type"),
    [
        (S3BucketPostureOperator, {"buckets": "b"}, "s3"),
        (IamPolicyLintOperator, {"role_names": "r"}, "iam"),
        (SageMakerPostureOperator, {"training_jobs": "j"}, "sagemaker"),
    ],
)
def test_hooks_get_the_aws_parameters_like_providers_amazon_operators(operator, kwargs, client_type):
    op = operator(
        task_id="t",
        aws_conn_id="conn",
        region_name="eu-west-3",
        verify="/etc/ca.pem",
        botocore_config={"read_timeout": 5},
        **kwargs,
    )
    assert op.hook.aws_conn_id == "conn"
    assert op.hook.region_name == "eu-west-3"
    assert op.hook.verify == "/etc/ca.pem"
    assert op.hook.client_type == client_type
    assert op.hook.config.read_timeout == 5
    other = op.client_hook("s3control")
    assert (other.client_type, other.aws_conn_id, other.region_name) == ("s3control", "conn", "eu-west-3")


def test_missing_providers_amazon_is_a_clear_input_error(monkeypatch):
    # Simulated: providers-amazon is installed in this environment, so its absence is simulated by making
    # the import fail exactly as it would without the package.
    monkeypatch.setitem(sys.modules, "airflow.providers.amazon.aws.hooks.base_aws", None)
    op = S3BucketPostureOperator(task_id="t", buckets=["b"], aws_conn_id="aws_default")
    with pytest.raises(AisecInputError, match=r"pip install 'airflow-aisec\[aws\]'"):
        op._check(["b"])
    sm = SageMakerPostureOperator(task_id="sm", training_jobs="j", aws_conn_id="aws_default")
    with pytest.raises(AisecInputError, match=r"pip install 'airflow-aisec\[aws\]'"):
        sm._check([], ["j"])


@pytest.mark.parametrize(("value", "expected"), [(True, True), ("True", True), ("false", False), ("", False)])
def test_enforce_accepts_templated_strings(value, expected):
    from airflow_aisec.operators.cloud import _as_bool

    assert _as_bool(value, "enforce") is expected


def test_enforce_rejects_other_strings():
    from airflow_aisec.operators.cloud import _as_bool

    with pytest.raises(AisecInputError, match="enforce must be true or false, not 'maybe'"):
        _as_bool("maybe", "enforce")
