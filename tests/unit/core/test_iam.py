"""IAM policy normalisation and lint rules (pure)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_aisec.core.aws import iam
from airflow_aisec.exceptions import AisecInputError
from airflow_aisec.report import validate

REPO = Path(__file__).resolve().parents[3]


def _doc(*statements, version="2012-10-17"):
    return {"Version": version, "Statement": list(statements)}


def _ids(findings):
    return sorted(f.id for f in findings)


class TestNormalize:
    def test_string_and_list_spellings_are_equivalent(self):
        a = iam.normalize_policy(_doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}))
        b = iam.normalize_policy(
            {
                "Version": "2012-10-17",
                "Statement": {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::b/*"]},
            }
        )
        assert a.statements[0].actions == b.statements[0].actions == ("s3:GetObject",)
        assert a.statements[0].resources == b.statements[0].resources

    def test_condition_bool_and_string_values_normalise_to_lowercase_strings(self):
        p = iam.normalize_policy(
            _doc(
                {
                    "Effect": "Deny",
                    "Action": "s3:*",
                    "Resource": "*",
                    "Condition": {"Bool": {"aws:SecureTransport": False}},
                },
                {
                    "Effect": "Deny",
                    "Action": "s3:*",
                    "Resource": "*",
                    "Condition": {"bool": {"AWS:SECURETRANSPORT": ["false"]}},
                },
            )
        )
        assert p.statements[0].conditions == p.statements[1].conditions == {"bool": {"aws:securetransport": ("false",)}}

    def test_principal_star_and_aws_star_are_everyone(self):
        p = iam.normalize_policy(
            _doc(
                {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"},
                {"Effect": "Allow", "Principal": {"AWS": ["*"]}, "Action": "s3:GetObject", "Resource": "*"},
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::1:root"},
                    "Action": "s3:GetObject",
                    "Resource": "*",
                },
            )
        )
        assert [iam.principal_is_everyone(s.principal) for s in p.statements] == [True, True, False]

    def test_url_encoded_text_as_returned_by_iam_is_accepted(self):
        text = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22s3%3A*%22%2C%22Resource%22%3A%22*%22%7D%5D%7D"
        assert iam.normalize_policy(text).statements[0].actions == ("s3:*",)

    @pytest.mark.parametrize(
        ("document", "message"),
        [
            ("{not json", r"src: invalid JSON"),
            ({"Version": "2012-10-17"}, r"src: policy document has no 'Statement'"),
            (_doc({"Effect": "Maybe", "Action": "*", "Resource": "*"}), r"Effect must be 'Allow' or 'Deny'"),
            (_doc({"Effect": "Allow", "Resource": "*"}), r"needs exactly one of Action / NotAction"),
            (_doc({"Effect": "Allow", "Action": 7, "Resource": "*"}), r"Action must be a string or a non-empty list"),
        ],
    )
    def test_bad_documents_raise_naming_the_source(self, document, message):
        with pytest.raises(AisecInputError, match=message):
            iam.normalize_policy(document, source="src")


class TestMatching:
    def test_actions_match_case_insensitively_with_wildcards(self):
        assert iam.action_matches("S3:Get*", "s3:GetObject")
        assert iam.action_matches("s3:?etObject", "s3:GetObject")
        assert not iam.action_matches("s3:Get*", "s3:PutObject")

    def test_resources_match_case_sensitively_across_partitions(self):
        assert iam.resource_matches("arn:aws:s3:::data/*", "arn:aws-cn:s3:::data/x")
        assert not iam.resource_matches("arn:aws:s3:::Data/*", "arn:aws:s3:::data/x")

    def test_unconditional_deny_overrides_allow_but_conditional_deny_does_not(self):
        allow = {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}
        deny = {"Effect": "Deny", "Action": "s3:Delete*", "Resource": "*"}
        cond_deny = {**deny, "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "false"}}}
        arn = "arn:aws:s3:::b/k"
        assert iam.effective_allows(iam.normalize_policy(_doc(allow, deny)).statements, "s3:DeleteObject", arn) == []
        assert iam.effective_allows(iam.normalize_policy(_doc(allow, cond_deny)).statements, "s3:DeleteObject", arn)

    def test_not_action_covers_everything_else(self):
        st = iam.normalize_policy(_doc({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})).statements[0]
        assert iam.statement_covers_action(st, "s3:DeleteObject")
        assert not iam.statement_covers_action(st, "iam:PassRole")


class TestLintRules:
    def test_action_star_and_resource_star(self):
        found = iam.lint_policy(_doc({"Effect": "Allow", "Action": "*", "Resource": "*"}))
        assert _ids(found) == ["AISEC-IAM-ACTION-STAR", "AISEC-IAM-PASSROLE-UNCONDITIONED", "AISEC-IAM-RESOURCE-STAR"]

    def test_service_star_as_string_or_list(self):
        for action in ("s3:*", ["s3:*"], ["s3:GetObject", "kms:*"]):
            found = iam.lint_policy(_doc({"Effect": "Allow", "Action": action, "Resource": "arn:aws:s3:::b/*"}))
            assert _ids(found) == ["AISEC-IAM-SERVICE-STAR"], action

    def test_read_only_resource_star_is_medium_write_is_high_no_resource_level_is_skipped(self):
        read = iam.lint_policy(_doc({"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"}))
        write = iam.lint_policy(_doc({"Effect": "Allow", "Action": "s3:PutObject", "Resource": "*"}))
        skip = iam.lint_policy(_doc({"Effect": "Allow", "Action": ["sts:GetCallerIdentity"], "Resource": "*"}))
        assert [(f.id, f.severity) for f in read] == [("AISEC-IAM-RESOURCE-STAR", "medium")]
        assert [(f.id, f.severity) for f in write] == [("AISEC-IAM-RESOURCE-STAR", "high")]
        assert skip == []

    def test_not_action_and_not_resource_allow_are_flagged_but_deny_is_not(self):
        found = iam.lint_policy(
            _doc(
                {"Effect": "Allow", "NotAction": "iam:*", "NotResource": "arn:aws:s3:::secret/*"},
                {"Effect": "Deny", "NotAction": "s3:GetObject", "Resource": "*"},
            )
        )
        assert _ids(found) == ["AISEC-IAM-NOT-ACTION", "AISEC-IAM-NOT-RESOURCE"]

    def test_passrole_needs_a_condition(self):
        bare = {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "arn:aws:iam::1:role/x"}
        cond = {**bare, "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}}
        assert _ids(iam.lint_policy(_doc(bare))) == ["AISEC-IAM-PASSROLE-UNCONDITIONED"]
        assert iam.lint_policy(_doc(cond)) == []
        assert _ids(iam.lint_policy(_doc({**bare, "Action": "iam:Pass*"}))) == ["AISEC-IAM-PASSROLE-UNCONDITIONED"]

    def test_old_or_missing_version(self):
        st = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}
        assert _ids(iam.lint_policy({"Statement": [st]})) == ["AISEC-IAM-OLD-VERSION"]
        assert _ids(iam.lint_policy(_doc(st, version="2008-10-17"))) == ["AISEC-IAM-OLD-VERSION"]


class TestPurposeRules:
    WRITE = {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "arn:aws:s3:::train-data/*"}

    @pytest.mark.parametrize(
        ("name", "tags", "expected"),
        [
            ("fraud-inference-role", {}, "inference"),
            ("model-serving", {}, "inference"),
            ("anything", {"aisec:purpose": "training"}, "training"),
            ("ml-train-job", {}, "training"),
            ("etl-role", {}, None),
        ],
    )
    def test_purpose_from_tags_then_name(self, name, tags, expected):
        assert iam.role_purpose(name, tags) == expected

    def test_explicit_purpose_must_be_known(self):
        with pytest.raises(AisecInputError, match="purpose must be 'inference' or 'training'"):
            iam.role_purpose("x", explicit="batch")

    def test_inference_role_writing_training_bucket(self):
        found = iam.lint_policy(_doc(self.WRITE), role_name="inference-role", training_data_buckets=["s3://train-data"])
        assert _ids(found) == ["AISEC-IAM-INFERENCE-WRITES-DATA"]
        assert found[0].details["actions"] == ["s3:PutObject"]
        assert found[0].details["bucket"] == "train-data"

    def test_inference_role_writing_another_bucket_is_fine(self):
        found = iam.lint_policy(_doc(self.WRITE), role_name="inference-role", training_data_buckets=["other-bucket"])
        assert found == []

    def test_inference_role_without_bucket_list_is_checked_against_any_bucket(self):
        wide = {"Effect": "Allow", "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::*"}
        assert "AISEC-IAM-INFERENCE-WRITES-DATA" in _ids(iam.lint_policy(_doc(wide), purpose="inference"))

    def test_deny_neutralises_inference_write(self):
        deny = {"Effect": "Deny", "Action": "s3:Put*", "Resource": "arn:aws:s3:::train-data/*"}
        found = iam.lint_policy(_doc(self.WRITE, deny), purpose="inference", training_data_buckets=["train-data"])
        assert found == []

    def test_training_role_must_not_delete(self):
        delete = {
            "Effect": "Allow",
            "Action": ["s3:DeleteObject", "sagemaker:DeleteModel"],
            "Resource": ["arn:aws:s3:::m/*", "arn:aws:sagemaker:eu-west-1:111122223333:model/*"],
        }
        found = iam.lint_policy(_doc(delete), purpose="training")
        assert _ids(found) == ["AISEC-IAM-TRAINING-CAN-DELETE"]
        assert found[0].details["delete_actions"] == ["s3:DeleteObject", "sagemaker:DeleteModel"]

    def test_training_delete_denied_is_fine(self):
        allow = {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::m/*"}
        deny = {"Effect": "Deny", "Action": ["s3:Delete*", "s3:PutLifecycleConfiguration"], "Resource": "*"}
        found = iam.lint_policy(_doc(allow, deny), purpose="training")
        assert _ids(found) == ["AISEC-IAM-SERVICE-STAR"]


class TestBundledPolicies:
    @pytest.mark.parametrize(
        ("name", "status", "ids"),
        [
            ("inference-role-least-privilege.json", "pass", []),
            ("training-role-least-privilege.json", "pass", []),
            (
                "inference-role-overprivileged.json",
                "fail",
                ["AISEC-IAM-INFERENCE-WRITES-DATA", "AISEC-IAM-RESOURCE-STAR", "AISEC-IAM-SERVICE-STAR"],
            ),
            (
                "training-role-overprivileged.json",
                "fail",
                [
                    "AISEC-IAM-ACTION-STAR",
                    "AISEC-IAM-PASSROLE-UNCONDITIONED",
                    "AISEC-IAM-PASSROLE-UNCONDITIONED",
                    "AISEC-IAM-RESOURCE-STAR",
                    "AISEC-IAM-TRAINING-CAN-DELETE",
                ],
            ),
        ],
    )
    def test_bundled_policy_files(self, name, status, ids):
        report = iam.lint_policy_files([REPO / "data" / "iam" / name], training_data_buckets=["acme-ml-training-data"])
        data = validate(report.to_dict())
        assert data["status"] == status
        assert sorted(f["id"] for f in data["findings"]) == ids
        for f in data["findings"]:
            assert set(f["details"]["equivalents"]) == {"prowler", "checkov"}

    def test_fail_on_threshold_turns_low_findings_into_warn(self, tmp_path):
        p = tmp_path / "old.json"
        p.write_text(
            json.dumps({"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]})
        )
        assert iam.lint_policy_files([p]).status == "fail"
        assert iam.lint_policy_files([p], fail_on="medium").status == "warn"

    def test_missing_file_is_an_input_error(self, tmp_path):
        with pytest.raises(AisecInputError, match="policy file not found: .*nope.json"):
            iam.lint_policy_files([tmp_path / "nope.json"])
