"""IAM lint of policies fetched for a role through boto3, against the loopback moto server."""

from __future__ import annotations

import json
import uuid

import pytest

from airflow_aisec.core.aws.iam import lint_iam_policies
from airflow_aisec.exceptions import AisecInputError, AisecUndecidableError

pytestmark = pytest.mark.integration

TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


def test_inline_and_attached_policies_of_a_role_are_linted(moto_server):
    iam = moto_server.client("iam")
    role = f"fraud-inference-{uuid.uuid4().hex[:6]}"
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=TRUST, Tags=[{"Key": "team", "Value": "ml"}])
    iam.put_role_policy(
        RoleName=role,
        PolicyName="write-training",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": ["s3:PutObject"], "Resource": "arn:aws:s3:::train-data/*"}],
            }
        ),
    )
    arn = iam.create_policy(
        PolicyName=f"pass-{role}",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"}}
        ),
    )["Policy"]["Arn"]
    iam.attach_role_policy(RoleName=role, PolicyArn=arn)
    report = lint_iam_policies(role_names=[role], iam_client=iam, training_data_buckets=["train-data"]).to_dict()
    assert report["status"] == "fail"
    got = sorted((f["id"], f["location"].split("#")[0]) for f in report["findings"])
    assert got == [
        ("AISEC-IAM-INFERENCE-WRITES-DATA", f"role/{role}/inline/write-training"),
        ("AISEC-IAM-PASSROLE-UNCONDITIONED", f"role/{role}/attached/pass-{role}"),
        ("AISEC-IAM-RESOURCE-STAR", f"role/{role}/attached/pass-{role}"),
    ]
    assert {p["purpose"] for p in report["details"]["policies"]} == {"inference"}


def test_missing_role_is_an_input_error(moto_server):
    with pytest.raises(AisecInputError, match=r"IAM role 'no-such-role' does not exist \(get_role: NoSuchEntity\)"):
        lint_iam_policies(role_names=["no-such-role"], iam_client=moto_server.client("iam"))


def test_role_without_policies_cannot_be_decided(moto_server):
    iam = moto_server.client("iam")
    role = f"empty-{uuid.uuid4().hex[:6]}"
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=TRUST)
    with pytest.raises(AisecUndecidableError, match=f"IAM role '{role}' has no inline or attached policies"):
        lint_iam_policies(role_names=[role], iam_client=iam)


def test_fetched_policy_with_duplicate_keys_is_an_error_not_last_wins(moto_server):
    """botocore would decode the document leniently (the last duplicate wins); the lint reads the text."""
    iam = moto_server.client("iam")
    role = f"dup-inference-{uuid.uuid4().hex[:6]}"
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=TRUST)
    text = (
        '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:PassRole", '
        '"Resource": "*", "Effect": "Deny"}]}'
    )
    iam.put_role_policy(RoleName=role, PolicyName="dup", PolicyDocument=text)
    with pytest.raises(AisecInputError, match=r"role/.*/inline/dup: invalid JSON: duplicate key 'Effect'"):
        lint_iam_policies(role_names=[role], iam_client=iam)
