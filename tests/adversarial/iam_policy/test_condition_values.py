"""Condition values that look restricting but are not: ``ArnEquals`` with wildcards (IAM matches ``*`` /
``?`` under ``ArnEquals`` exactly as under ``ArnLike``), a key compared with itself through a policy
variable, ``iam:PassedToService`` patterns naming several services; and ``Deny`` statements that name
another principal, which cancel nothing for the policy's holder."""

from __future__ import annotations

import pytest

from airflow_aisec.core.aws import iam
from tests.adversarial.iam_policy.test_conditions_and_json import PASSROLE
from tests.adversarial.iam_policy.test_wildcards import _doc, run_cli

NOT_REAL = [
    {"ArnEquals": {"iam:AssociatedResourceArn": "*"}},
    {"ArnEquals": {"iam:AssociatedResourceArn": "arn:*"}},
    {"ArnLike": {"iam:AssociatedResourceArn": "arn:aws:*"}},
    {"ArnLike": {"iam:AssociatedResourceArn": "arn:aws:*:*:*:*"}},
    {"StringLike": {"iam:AssociatedResourceArn": "arn:aws:s?*:*"}},
    {"StringLike": {"iam:PassedToService": "*.*"}},
    {"StringLike": {"iam:PassedToService": "*com"}},
    {"StringLike": {"iam:PassedToService": "*a*"}},
    {"StringLike": {"iam:PassedToService": ["sagemaker.amazonaws.com", "*.amazonaws.*"]}},
    {"StringEquals": {"iam:PassedToService": "${iam:PassedToService}"}},
    {"StringEquals": {"aws:ResourceTag/team": "${aws:ResourceTag/team}"}},
    {"StringEquals": {"iam:AssociatedResourceArn": "${ iam:AssociatedResourceArn , 'x'}"}},
    {"StringEquals": {"iam:ResourceTag/team": "${aws:ResourceTag/team}"}},
    {"StringEquals": {"iam:PassedToService": "${aws:RequestTag/service}"}},
    {"StringEquals": {"aws:ResourceTag/team": "${aws:UserAgent}"}},
    {"ArnLike": {"iam:AssociatedResourceArn": "arn:aws:sagemaker:eu-west-1:111122223333:${aws:RequestTag/x}"}},
]


@pytest.mark.parametrize("condition", NOT_REAL)
def test_passrole_behind_a_condition_that_restricts_nothing_fails(condition):
    code, report = run_cli(_doc({**PASSROLE, "Condition": condition}))
    assert (code, report["status"]) == (1, "fail")
    assert "AISEC-IAM-PASSROLE-UNCONDITIONED" in {f["id"] for f in report["findings"]}


@pytest.mark.parametrize(
    "condition",
    [
        {"StringLike": {"iam:PassedToService": "sagemaker.amazonaws.com*"}},
        {"ArnEquals": {"iam:AssociatedResourceArn": "arn:aws:sagemaker:eu-west-1:111122223333:training-job/x"}},
        {"StringEquals": {"aws:ResourceTag/team": "${aws:PrincipalTag/team}"}},  # ABAC: the caller's own tag
        {"StringLike": {"iam:AssociatedResourceArn": "arn:aws:sagemaker:*:${aws:PrincipalAccount}:training-job/*"}},
    ],
)
def test_real_passrole_conditions_still_count(condition):
    found = iam.lint_policy(_doc({**PASSROLE, "Condition": condition}))
    assert "AISEC-IAM-PASSROLE-UNCONDITIONED" not in {f.id for f in found}


OTHER_PRINCIPAL_DENIES = [
    {"NotPrincipal": {"AWS": "arn:aws:iam::111122223333:role/inference"}},
    {"Principal": {"AWS": "arn:aws:iam::111122223333:role/someone-else"}},
    {"Principal": {"Service": "*"}},
]


@pytest.mark.parametrize("who", OTHER_PRINCIPAL_DENIES)
def test_deny_naming_another_principal_cancels_no_inference_write(who):
    doc = _doc(
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::train/*"},
        {"Effect": "Deny", "Action": "s3:*", "Resource": "*", **who},
    )
    code, report = run_cli(doc, "--purpose", "inference", "--training-data-bucket", "train")
    assert (code, report["status"]) == (1, "fail")
    assert "AISEC-IAM-INFERENCE-WRITES-DATA" in {f["id"] for f in report["findings"]}


@pytest.mark.parametrize("who", OTHER_PRINCIPAL_DENIES)
def test_deny_naming_another_principal_cancels_no_training_delete(who):
    doc = _doc(
        {"Effect": "Allow", "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::train/*"},
        {"Effect": "Deny", "Action": "s3:*", "Resource": "*", **who},
    )
    found = iam.lint_policy(doc, purpose="training")
    assert "AISEC-IAM-TRAINING-CAN-DELETE" in {f.id for f in found}


def test_deny_of_everyone_still_cancels():
    doc = _doc(
        {"Effect": "Allow", "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::train/*"},
        {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "s3:*", "Resource": "*"},
    )
    assert "AISEC-IAM-TRAINING-CAN-DELETE" not in {f.id for f in iam.lint_policy(doc, purpose="training")}


@pytest.mark.parametrize(
    "action",
    [
        "s3:PutBucketPublicAccessBlock",
        "s3:PutBucketOwnershipControls",
        "s3:PutBucketTagging",
        "s3:PutBucketCORS",
        "s3:PutBucketNotification",
        "s3:PutBucketWebsite",
        "s3:PutBucket*",
    ],
)
def test_inference_role_reconfiguring_the_training_bucket_is_found(action):
    doc = _doc({"Effect": "Allow", "Action": action, "Resource": "arn:aws:s3:::train"})
    code, report = run_cli(doc, "--purpose", "inference", "--training-data-bucket", "train")
    assert (code, report["status"]) == (1, "fail")
    assert "AISEC-IAM-INFERENCE-WRITES-DATA" in {f["id"] for f in report["findings"]}


@pytest.mark.parametrize(
    "statements",
    [
        [{"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws-cn:s3:::train/*"}],
        [{"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws-us-gov:s3:::train/*"}],
        [
            {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws-cn:s3:::train/*"},
            {"Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::train/*"},
        ],
    ],
)
def test_inference_write_in_another_partition_is_found(statements):
    found = iam.lint_policy(_doc(*statements), purpose="inference", training_data_buckets=["train"])
    assert "AISEC-IAM-INFERENCE-WRITES-DATA" in {f.id for f in found}


def test_deny_in_the_same_partition_still_cancels():
    doc = _doc(
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws-cn:s3:::train/*"},
        {"Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws-cn:s3:::train/*"},
    )
    found = iam.lint_policy(doc, purpose="inference", training_data_buckets=["train"])
    assert "AISEC-IAM-INFERENCE-WRITES-DATA" not in {f.id for f in found}
