"""IAM lint, class "wildcards": every spelling of a dangerous action is evaluated against the AWS
action catalogue (case, ``*`` / ``?`` anywhere, NotAction), and benign policies stay clean."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_aisec.cli import main
from airflow_aisec.core.aws import iam
from airflow_aisec.core.aws.catalogue import catalogue

ROLE_ARN = "arn:aws:iam::111122223333:role/ml/*"


def _doc(*statements, version="2012-10-17"):
    return {"Version": version, "Statement": list(statements)}


def _ids(findings):
    return sorted({f.id for f in findings})


def run_cli(document, *extra: str) -> tuple[int, dict]:
    """``aisec iam-lint`` on ``document`` written to a fresh file; returns (exit code, JSON report)."""
    import contextlib
    import io

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "policy.json"
        path.write_text(document if isinstance(document, str) else json.dumps(document), encoding="utf-8")
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            code = main(["iam-lint", str(path), "--format", "json", *extra])
    return code, json.loads(out.getvalue())


@st.composite
def spelling_of(draw, action: str) -> str:
    """An IAM pattern that matches ``action``: random case, characters replaced by ``?``, runs (possibly
    empty) replaced by ``*``, and stray ``*`` inserted anywhere."""
    out: list[str] = []
    i = 0
    while i < len(action):
        move = draw(st.sampled_from(["keep", "keep", "case", "one", "star", "insert"]))
        ch = action[i]
        if move == "keep":
            out.append(ch)
            i += 1
        elif move == "case":
            out.append(ch.swapcase())
            i += 1
        elif move == "one":
            out.append("?")
            i += 1
        elif move == "star":
            n = draw(st.integers(min_value=0, max_value=len(action) - i))
            out.append("*")
            i += n
        else:
            out.append("*")
    if draw(st.booleans()):
        out.append("*")
    return "".join(out)


@settings(max_examples=150)
@given(pattern=spelling_of("iam:PassRole"))
def test_every_spelling_of_passrole_is_found(pattern):
    assert "iam:passrole" in catalogue().expand(pattern)  # the generator's own contract
    found = iam.lint_policy(_doc({"Effect": "Allow", "Action": pattern, "Resource": ROLE_ARN}))
    assert "AISEC-IAM-PASSROLE-UNCONDITIONED" in _ids(found), pattern


@settings(max_examples=60)
@given(pattern=spelling_of("iam:PassRole"))
def test_every_spelling_of_passrole_fails_the_cli(pattern):
    code, report = run_cli(_doc({"Effect": "Allow", "Action": [pattern], "Resource": ROLE_ARN}))
    assert (code, report["status"]) == (1, "fail")
    assert "AISEC-IAM-PASSROLE-UNCONDITIONED" in {f["id"] for f in report["findings"]}


MIN_ACTION_LENGTH = min(len(a) for a in catalogue().all)
everything = st.one_of(
    st.lists(st.sampled_from(["*", "?", "**", "*?", "?*"]), min_size=1, max_size=6)
    .map("".join)
    .filter(lambda p: "*" in p and p.count("?") <= MIN_ACTION_LENGTH),
    st.sampled_from(["*:*", "*:**", "**:*", "*:?*", "*?:*", "*:*?", "*?:?*"]),
)


@settings(max_examples=80)
@given(pattern=everything)
def test_patterns_that_match_every_action_are_action_star(pattern):
    assert catalogue().expand(pattern) == catalogue().all
    found = iam.lint_policy(_doc({"Effect": "Allow", "Action": pattern, "Resource": "*"}))
    assert {"AISEC-IAM-ACTION-STAR", "AISEC-IAM-PASSROLE-UNCONDITIONED", "AISEC-IAM-RESOURCE-STAR"} <= set(
        _ids(found)
    ), pattern


services = st.sampled_from(["s3", "iam", "kms", "sagemaker", "ec2", "sts"])


@settings(max_examples=80)
@given(service=services, data=st.data())
def test_service_wildcard_spellings_are_service_star(service, data):
    pattern = data.draw(st.sampled_from([f"{service}:*", f"{service}:*?", f"{service}*:*", f"{service}:**"]))
    pattern = "".join(c.swapcase() if data.draw(st.booleans()) else c for c in pattern)
    found = iam.lint_policy(_doc({"Effect": "Allow", "Action": pattern, "Resource": "arn:aws:s3:::b/*"}))
    star = [f for f in found if f.id == "AISEC-IAM-SERVICE-STAR"]
    assert star and f"{service}:*" in star[0].details["service_wildcards"], pattern


@settings(max_examples=60)
@given(excluded=st.lists(st.sampled_from(["s3:GetObject", "ec2:*", "kms:Decrypt", "sts:*", "logs:*"]), max_size=3))
def test_not_action_is_expanded_and_grants_passrole(excluded):
    found = iam.lint_policy(_doc({"Effect": "Allow", "NotAction": excluded or ["s3:GetObject"], "Resource": "*"}))
    assert {"AISEC-IAM-NOT-ACTION", "AISEC-IAM-PASSROLE-UNCONDITIONED", "AISEC-IAM-RESOURCE-STAR"} <= set(_ids(found))


def test_not_action_of_nothing_known_is_action_star():
    found = iam.lint_policy(_doc({"Effect": "Allow", "NotAction": "nosuchservice:Thing", "Resource": "*"}))
    assert {"AISEC-IAM-ACTION-STAR", "AISEC-IAM-UNKNOWN-ACTION", "AISEC-IAM-NOT-ACTION"} <= set(_ids(found))


@settings(max_examples=60)
@given(
    name=st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=3, max_size=12),
    service=st.sampled_from(["s3", "iam", "nosuchsvc"]),
)
def test_unknown_actions_are_reported_not_ignored(name, service):
    action = f"{service}:Zz{name}"
    found = iam.lint_policy(_doc({"Effect": "Allow", "Action": action, "Resource": "arn:aws:s3:::b/*"}))
    unknown = [f for f in found if f.id == "AISEC-IAM-UNKNOWN-ACTION"]
    assert unknown and unknown[0].details["unknown"] == [action]
    assert unknown[0].severity == "medium"


@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("s3:GetObject", "arn:aws:s3:::data-bucket"),
        ("s3:ListBucket", "arn:aws:iam::111122223333:role/x"),
        ("kms:Decrypt", "arn:aws:s3:::data-bucket/*"),
        ("s3:ListAllMyBuckets", "arn:aws:s3:::data-bucket"),
        ("iam:PassRole", "arn:aws:s3:::data-bucket/*"),
    ],
)
def test_action_resource_type_mismatch_is_reported(action, resource):
    found = iam.lint_policy(
        _doc(
            {
                "Effect": "Allow",
                "Action": action,
                "Resource": resource,
                "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            }
        )
    )
    (mismatch,) = [f for f in found if f.id == "AISEC-IAM-RESOURCE-MISMATCH"]
    assert mismatch.details["mismatched"][0]["action"].lower() == action.lower()


# ------------------------------------------------------------------------------------------ benign
bucket_names = st.from_regex(r"[a-z][a-z0-9-]{2,20}[a-z0-9]", fullmatch=True)
prefixes = st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True)


@st.composite
def least_privilege_statement(draw):
    bucket = draw(bucket_names)
    kind = draw(st.sampled_from(["get", "list", "kms", "pass", "logs"]))
    if kind == "get":
        return {
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:GetObjectVersion"],
            "Resource": f"arn:aws:s3:::{bucket}/{draw(prefixes)}/*",
        }
    if kind == "list":
        return {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}"}
    if kind == "kms":
        return {
            "Effect": "Allow",
            "Action": ["kms:Decrypt"],
            "Resource": "arn:aws:kms:eu-west-1:111122223333:key/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b",
        }
    if kind == "pass":
        return {
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": f"arn:aws:iam::111122223333:role/{bucket}",
            "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        }
    return {
        "Effect": "Allow",
        "Action": ["logs:PutLogEvents", "logs:CreateLogStream"],
        "Resource": f"arn:aws:logs:eu-west-1:111122223333:log-group:/aws/sagemaker/{bucket}:log-stream:*",
    }


@settings(max_examples=60)
@given(statements=st.lists(least_privilege_statement(), min_size=1, max_size=5))
def test_least_privilege_policies_have_no_finding(statements):
    code, report = run_cli(_doc(*statements))
    assert (code, report["status"], report["findings"]) == (0, "pass", [])
