"""S3 TLS-only: the Deny must cover every s3 action, on the bucket ARN and on every object, for every
principal, under a condition that is true on every plain-HTTP request. Equivalent spellings pass;
every weakening is found (exit 1)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_aisec.core.aws import iam
from airflow_aisec.core.aws import s3 as s3_posture
from airflow_aisec.core.aws.catalogue import catalogue
from tests.adversarial.s3_posture.conftest import BUCKET, FakeS3, policy, run_cli, tls_deny

B = BUCKET
S3_ACTIONS = sorted(catalogue().info(a).name for a in catalogue().by_service["s3"])


def _case(draw, text: str) -> str:
    return "".join(c.swapcase() if draw(st.booleans()) else c for c in text)


@st.composite
def valid_parts(draw) -> dict:
    """Every field of the Deny, each in one of its equivalent spellings."""
    action_kind = draw(st.sampled_from(["action", "notaction"]))
    if action_kind == "action":
        action = draw(
            st.sampled_from(
                ["s3:*", "*", "s3:*?", "s?:*", "*:*", "s3:**", ["s3:*"], ["s3:GetObject", "s3:*"], S3_ACTIONS]
            )
        )
        if isinstance(action, str):
            action = _case(draw, action)
        fields = {"Action": action}
    else:
        fields = {
            "Action": None,
            "NotAction": draw(st.sampled_from(["iam:*", ["sqs:SendMessage", "kms:*"], "nosuch:Thing"])),
        }
    fields["Resource"] = draw(
        st.sampled_from(
            [
                "*",
                f"arn:aws:s3:::{B}*",
                f"arn:*:s3:::{B}*",
                "arn:aws:s3:::*",
                [f"arn:aws:s3:::{B}", f"arn:aws:s3:::{B}/*"],
                [f"arn:aws:s3:::{B}", f"arn:aws:s3:::{B}/?*"],
                [f"arn:aws:s3:::{B}", f"arn:aws:s3:::{B}/**"],
                [f"arn:aws:s3:::{B}", f"arn:aws:s3:::{B[:3]}*/*"],
            ]
        )
    )
    fields["Principal"] = draw(
        st.sampled_from(["*", {"AWS": "*"}, {"AWS": ["*"]}, {"AWS": ["arn:aws:iam::111122223333:root", "*"]}])
    )
    op = _case(draw, draw(st.sampled_from(["Bool", "BoolIfExists"])))
    key = _case(draw, "aws:SecureTransport")
    value = draw(st.sampled_from([False, "false", "FALSE", "False", ["false"], [False], ["true", "false"]]))
    fields["Condition"] = {op: {key: value}}
    return fields


@settings(max_examples=120)
@given(fields=valid_parts())
def test_equivalent_spellings_enforce_tls(fields):
    ok, reason = s3_posture.denies_insecure_transport(iam.normalize_policy(policy(tls_deny(**fields))).statements, B)
    assert ok, (fields, reason)


@settings(max_examples=30)
@given(fields=valid_parts())
def test_equivalent_spellings_pass_the_cli(fields, monkeypatch):
    client = FakeS3(policy(tls_deny(**fields)))
    code, report = run_cli(monkeypatch, client)
    assert (code, report["status"], report["findings"]) == (0, "pass", [])
    assert not [c for c in client.calls if c.startswith(("put_", "delete_"))]


def test_bucket_and_objects_may_be_denied_by_two_statements():
    two = policy(
        tls_deny(Sid="Bucket", Resource=f"arn:aws:s3:::{B}"), tls_deny(Sid="Objects", Resource=f"arn:aws:s3:::{B}/*")
    )
    assert s3_posture.denies_insecure_transport(iam.normalize_policy(two).statements, B)[0]


@st.composite
def weakening(draw) -> tuple[str, dict]:
    kind = draw(
        st.sampled_from(
            [
                "one_action_missing",
                "notaction_excludes_s3",
                "objects_partly",
                "bucket_missing",
                "objects_missing",
                "partition",
                "variable",
                "principal",
                "notprincipal",
                "extra_condition",
                "condition_value",
                "condition_operator",
            ]
        )
    )
    if kind == "one_action_missing":
        missing = draw(st.sampled_from(S3_ACTIONS))
        return kind, {"Action": [a for a in S3_ACTIONS if a != missing]}
    if kind == "notaction_excludes_s3":
        return kind, {
            "Action": None,
            "NotAction": draw(st.sampled_from(["s3:GetObject", "s3:Put*", "S3:?etObject", "*Object"])),
        }
    if kind == "objects_partly":
        tail = draw(st.sampled_from(["a*", "*x", "?", "??*x", "data/*", "*/*", "*.bin"]))
        return kind, {"Resource": [f"arn:aws:s3:::{B}", f"arn:aws:s3:::{B}/{tail}"]}
    if kind == "bucket_missing":
        return kind, {
            "Resource": draw(st.sampled_from([f"arn:aws:s3:::{B}/*", f"arn:aws:s3:::{B}/?*", f"arn:aws:s3:::{B}?*"]))
        }
    if kind == "objects_missing":
        return kind, {
            "Resource": draw(st.sampled_from([f"arn:aws:s3:::{B}", f"arn:aws:s3:::{B}?", f"arn:aws:s3:::{B}/"]))
        }
    if kind == "partition":
        return kind, {"Resource": [f"arn:aws-cn:s3:::{B}", f"arn:aws-cn:s3:::{B}/*"]}
    if kind == "variable":
        return kind, {"Resource": [f"arn:aws:s3:::{B}", f"arn:aws:s3:::{B}/${{aws:username}}/*"]}
    if kind == "principal":
        return kind, {
            "Principal": draw(
                st.sampled_from([{"AWS": "arn:aws:iam::111122223333:root"}, {"Service": "*"}, {"AWS": "111122223333"}])
            )
        }
    if kind == "notprincipal":
        return kind, {"Principal": None, "NotPrincipal": {"AWS": "arn:aws:iam::111122223333:root"}}
    if kind == "extra_condition":
        extra = draw(
            st.sampled_from(
                [
                    {"StringLike": {"aws:PrincipalArn": "*"}},
                    {"StringEquals": {"aws:PrincipalAccount": "111122223333"}},
                    {"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}},
                    {"Null": {"aws:SecureTransport": "false"}},
                ]
            )
        )
        return kind, {"Condition": {"Bool": {"aws:SecureTransport": "false"}, **extra}}
    if kind == "condition_value":
        value = draw(st.sampled_from(["true", True, ["true"], "false ", "0", "no"]))
        return kind, {"Condition": {"Bool": {"aws:SecureTransport": value}}}
    op = draw(
        st.sampled_from(["ForAnyValue:Bool", "ForAllValues:Bool", "StringEquals", "StringNotEquals", "StringLike"])
    )
    return kind, {"Condition": {op: {"aws:SecureTransport": "false"}}}


@settings(max_examples=150)
@given(case=weakening())
def test_every_weakening_is_found(case):
    kind, fields = case
    ok, reason = s3_posture.denies_insecure_transport(iam.normalize_policy(policy(tls_deny(**fields))).statements, B)
    assert not ok, (kind, fields)
    assert reason


@settings(max_examples=40)
@given(case=weakening())
def test_every_weakening_fails_the_cli(case, monkeypatch):
    _, fields = case
    code, report = run_cli(monkeypatch, FakeS3(policy(tls_deny(**fields))))
    assert (code, report["status"]) == (1, "fail")
    assert "AISEC-S3-TLS-NOT-ENFORCED" in {f["id"] for f in report["findings"]}


def test_partition_of_the_client_is_used():
    cn = policy(tls_deny(Resource=[f"arn:aws-cn:s3:::{B}", f"arn:aws-cn:s3:::{B}/*"]))
    statements = iam.normalize_policy(cn).statements
    assert s3_posture.denies_insecure_transport(statements, B, partition="aws-cn")[0]
    assert not s3_posture.denies_insecure_transport(statements, B, partition="aws")[0]


@pytest.mark.parametrize(
    "text",
    [
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Effect":"Deny","Principal":"*","Action":"s3:*",'
        '"Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}',
        '{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"*",'
        '"Condition":{"Bool":{"aws:SecureTransport":"true","aws:SecureTransport":"false"}}}}',
        '{"Version":"2012-10-17","Statement":"Deny"}',
        "not json",
    ],
)
def test_unreadable_bucket_policy_is_an_error_never_a_pass(text, monkeypatch):
    code, report = run_cli(monkeypatch, FakeS3(text))
    assert (code, report["status"]) == (2, "error")
    assert "invalid_policy" in {e["kind"] for e in report["details"]["errors"]}
