"""A public Allow stays public behind conditions that only look fixed: ``ArnEquals`` with wildcards
(IAM treats it as ``ArnLike``) and values that are policy variables (filled in from the request)."""

from __future__ import annotations

import pytest

from tests.adversarial.s3_posture.conftest import BUCKET, FakeS3, policy, run_cli, tls_deny


@pytest.mark.parametrize(
    "condition",
    [
        {"ArnEquals": {"aws:PrincipalArn": "arn:aws:iam::*:root"}},
        {"ArnEquals": {"aws:SourceArn": "*"}},
        {"ArnEquals": {"aws:PrincipalArn": "arn:aws:iam::11112222333?:role/x"}},
        {"StringEquals": {"aws:SourceVpce": "${aws:SourceVpce}"}},
        {"StringEquals": {"aws:PrincipalAccount": "${aws:PrincipalAccount}"}},
        {"StringEquals": {"aws:SourceAccount": "${aws:PrincipalAccount}"}},
        {"ArnLike": {"aws:PrincipalArn": "${aws:PrincipalArn}"}},
    ],
)
def test_public_allow_behind_a_condition_that_only_looks_fixed_is_public(monkeypatch, condition):
    open_ = {
        "Sid": "Open",
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{BUCKET}/*",
        "Condition": condition,
    }
    code, report = run_cli(monkeypatch, FakeS3(policy(tls_deny(), open_)))
    assert (code, report["status"]) == (1, "fail")
    assert "AISEC-S3-POLICY-PUBLIC" in {f["id"] for f in report["findings"]}


def test_fixed_arnequals_is_still_restricting(monkeypatch):
    open_ = {
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{BUCKET}/*",
        "Condition": {"ArnEquals": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/reader"}},
    }
    code, report = run_cli(monkeypatch, FakeS3(policy(tls_deny(), open_)))
    assert (code, report["status"]) == (0, "pass"), report["findings"]


@pytest.mark.parametrize("checks", [",", " , ,", ", "])
def test_an_empty_check_selection_is_an_error_not_a_pass(monkeypatch, checks):
    code, report = run_cli(monkeypatch, FakeS3(None), "--checks", checks)
    assert (code, report["status"]) == (2, "error")
    assert "at least one check group" in report["summary"]


def test_an_empty_check_list_in_the_engine_is_refused():
    from airflow_aisec.core.aws import s3 as s3_posture
    from airflow_aisec.exceptions import AisecInputError

    with pytest.raises(AisecInputError, match="at least one check group"):
        s3_posture.check_s3_posture(FakeS3(None), [BUCKET], checks=[])
