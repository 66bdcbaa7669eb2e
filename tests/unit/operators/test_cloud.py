"""Cloud operators: construction, templating, and the missing-providers-amazon path (DAG runs against a
real S3 API are in tests/integration/cloud/test_operators_cloud.py)."""

from __future__ import annotations

import sys

import pytest

from airflow_aisec.exceptions import AisecInputError
from airflow_aisec.operators.cloud import IamPolicyLintOperator, S3BucketPostureOperator


def test_template_fields_are_public_api():
    assert S3BucketPostureOperator.template_fields == (
        "report_path",
        "buckets",
        "aws_conn_id",
        "region_name",
        "kms_key_id",
        "checks",
        "enforce",
    )
    assert IamPolicyLintOperator.template_fields == (
        "report_path",
        "policy_files",
        "role_names",
        "aws_conn_id",
        "training_data_buckets",
        "sagemaker_notebook_instances",
        "sagemaker_training_jobs",
    )
    assert S3BucketPostureOperator.aisec_check == "s3_posture"
    assert IamPolicyLintOperator.aisec_check == "iam_policy"


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


def test_missing_providers_amazon_is_a_clear_input_error(monkeypatch):
    # Simulated: providers-amazon is installed in this environment, so its absence is simulated by making
    # the import fail exactly as it would without the package.
    monkeypatch.setitem(sys.modules, "airflow.providers.amazon.aws.hooks.base_aws", None)
    op = S3BucketPostureOperator(task_id="t", buckets=["b"], aws_conn_id="aws_default")
    with pytest.raises(AisecInputError, match=r"pip install 'airflow-aisec\[aws\]'"):
        op._check(["b"])


@pytest.mark.parametrize(("value", "expected"), [(True, True), ("True", True), ("false", False), ("", False)])
def test_enforce_accepts_templated_strings(value, expected):
    from airflow_aisec.operators.cloud import _as_bool

    assert _as_bool(value, "enforce") is expected


def test_enforce_rejects_other_strings():
    from airflow_aisec.operators.cloud import _as_bool

    with pytest.raises(AisecInputError, match="enforce must be true or false, not 'maybe'"):
        _as_bool("maybe", "enforce")
