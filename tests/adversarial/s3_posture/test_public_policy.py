"""S3 public policy: every principal form meaning "everyone" (and every principal the check does not
understand) is public, also behind always-true conditions; fixed restricting conditions are not."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_aisec.core.aws import iam
from airflow_aisec.core.aws import s3 as s3_posture
from tests.adversarial.iam_policy.test_conditions_and_json import always_true_condition
from tests.adversarial.s3_posture.conftest import BUCKET, FakeS3, policy, run_cli, tls_deny

B = BUCKET
EVERYONE = [
    {"Principal": "*"},
    {"Principal": {"AWS": "*"}},
    {"Principal": {"AWS": ["*"]}},
    {"Principal": {"AWS": ["arn:aws:iam::111122223333:root", "*"]}},
    {"Principal": {"CanonicalUser": "*"}},
    {"Principal": {"Service": "*"}},
    {"NotPrincipal": {"AWS": "arn:aws:iam::111122223333:root"}},
    {"NotPrincipal": {"AWS": ["arn:aws:iam::111122223333:role/a", "arn:aws:iam::111122223333:root"]}},
]
NOT_UNDERSTOOD = [
    {"Principal": {"AWS": "arn:aws:iam::*:root"}},
    {"Principal": {"AWS": "1111222233*"}},
    {"Principal": {"AWS": "arn:aws:iam::111122223333:role/${aws:username}"}},
    {"Principal": {"AWS": "not-an-arn"}},
    {"Principal": {"Everyone": "x"}},
    {"Principal": {"aws": "arn:aws:iam::111122223333:root"}},
    {"Principal": {"Service": "*.amazonaws.com"}},
    {"Principal": {"CanonicalUser": "deadbeef"}},
    {"Principal": {"Federated": "accounts.google.com"}},
    {"Principal": {"Federated": "cognito-identity.amazonaws.com"}},
]
WEAK_RESTRICTIONS = [
    {"StringLike": {"aws:SourceVpc": "vpc-*"}},
    {"StringLike": {"aws:userid": "AROAEXAMPLE:*"}},
    {"StringEquals": {"aws:userid": "AROAEXAMPLE:*"}},
    {"IpAddress": {"aws:SourceIp": "0.0.0.0/4"}},
    {"StringEquals": {"aws:RequestedRegion": "eu-west-1"}},  # not a key that pins who
    {"Bool": {"aws:SecureTransport": "true"}},
    {"StringEqualsIfExists": {"aws:SourceVpce": "vpce-1a2b3c4d"}},
    {"ForAllValues:StringEquals": {"aws:PrincipalOrgID": "o-abc123"}},
    {"StringNotEquals": {"aws:PrincipalAccount": "999999999999"}},
]


def _public_statement(principal: dict, condition: dict | None, action) -> dict:
    st_ = {"Sid": "Open", "Effect": "Allow", "Action": action, "Resource": f"arn:aws:s3:::{B}/*", **principal}
    if condition:
        st_["Condition"] = condition
    return st_


actions = st.sampled_from(["s3:GetObject", "S3:get*", ["s3:PutObject"], "s3:*", "*"])


@st.composite
def public_cases(draw) -> dict:
    principal = draw(st.sampled_from(EVERYONE + NOT_UNDERSTOOD))
    kind = draw(st.sampled_from(["none", "always_true", "weak"]))
    condition = None
    if kind == "always_true":
        condition = draw(always_true_condition())
    elif kind == "weak":
        condition = draw(st.sampled_from(WEAK_RESTRICTIONS))
    return _public_statement(principal, condition, draw(actions))


@settings(max_examples=150)
@given(statement=public_cases())
def test_public_forms_are_public(statement):
    cfg = s3_posture.BucketConfig(bucket=B, policy=iam_json(policy(tls_deny(), statement)), fetched=("public_policy",))
    found = [f for f in s3_posture.evaluate_bucket(cfg) if f.id == "AISEC-S3-POLICY-PUBLIC"]
    assert found and found[0].details["statements"] == ["Open"], statement
    assert found[0].effective_severity == "critical"


@settings(max_examples=40)
@given(statement=public_cases())
def test_public_forms_fail_the_cli(statement, monkeypatch):
    code, report = run_cli(monkeypatch, FakeS3(policy(tls_deny(), statement)))
    assert (code, report["status"]) == (1, "fail")
    (public,) = [f for f in report["findings"] if f["id"] == "AISEC-S3-POLICY-PUBLIC"]
    principal = statement.get("Principal")
    if principal in [p.get("Principal") for p in NOT_UNDERSTOOD]:
        assert public["details"]["principals_not_understood"], "not-understood principals are counted"
        assert report["metrics"]["principals_not_understood"] >= 1


RESTRICTING = [
    {"StringEquals": {"aws:SourceVpce": "vpce-1a2b3c4d"}},
    {"StringEquals": {"aws:SourceVpc": ["vpc-111", "vpc-222"]}},
    {"StringEquals": {"aws:PrincipalOrgID": "o-abc123"}},
    {"StringEquals": {"AWS:PrincipalAccount": "111122223333"}},
    {"ArnEquals": {"aws:SourceArn": "arn:aws:cloudfront::111122223333:distribution/E1"}},
    {"StringEquals": {"aws:SourceAccount": "111122223333"}},
    {"IpAddress": {"aws:SourceIp": ["203.0.113.0/24", "2001:db8::/48"]}},
]


@settings(max_examples=40)
@given(condition=st.sampled_from(RESTRICTING), action=actions, principal=st.sampled_from(EVERYONE[:6]))
def test_fixed_restricting_conditions_are_not_public(condition, action, principal, monkeypatch):
    statement = _public_statement(principal, condition, action)
    code, report = run_cli(monkeypatch, FakeS3(policy(tls_deny(), statement)))
    assert (code, report["status"], report["findings"]) == (0, "pass", [])


def test_specific_principal_without_condition_is_not_public(monkeypatch):
    statement = _public_statement({"Principal": {"AWS": "arn:aws:iam::111122223333:role/reader"}}, None, "s3:GetObject")
    code, report = run_cli(monkeypatch, FakeS3(policy(tls_deny(), statement)))
    assert (code, report["findings"]) == (0, [])


def test_policy_status_public_is_public_even_when_the_policy_looks_private(monkeypatch):
    code, report = run_cli(monkeypatch, FakeS3(policy(tls_deny()), is_public=True))
    assert code == 1 and "AISEC-S3-POLICY-PUBLIC" in {f["id"] for f in report["findings"]}


def iam_json(doc: dict) -> str:
    import json

    iam.normalize_policy(doc)  # the generated document is itself valid
    return json.dumps(doc)
