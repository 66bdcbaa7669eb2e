"""S3 posture evaluation (pure: fetched configurations in, findings out) and the retry policy.

The boto3-against-a-server behaviour is in ``tests/integration/cloud``; here the transient paths use
real boto3 clients against loopback sockets (a closed port; a tiny HTTP server answering 503).
"""

from __future__ import annotations

import http.server
import json
import threading

import pytest

from airflow_aisec.core.aws import s3 as s3_posture
from airflow_aisec.core.aws import sagemaker
from airflow_aisec.core.aws.iam import normalize_policy
from airflow_aisec.exceptions import AisecInputError, AisecTransientError

B = "models-bucket"
FULL_PAB = dict.fromkeys(s3_posture.PAB_KEYS, True)


def _tls_statement(**overrides):
    st = {
        "Sid": "DenyHttp",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{B}", f"arn:aws:s3:::{B}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    st.update(overrides)
    return st


def _statements(*sts):
    return list(normalize_policy({"Version": "2012-10-17", "Statement": list(sts)}).statements)


def _compliant(**overrides):
    cfg = s3_posture.BucketConfig(
        bucket=B,
        encryption_rules=[
            {
                "ApplyServerSideEncryptionByDefault": {
                    "SSEAlgorithm": "aws:kms",
                    "KMSMasterKeyID": "arn:aws:kms:eu-west-1:1:key/k1",
                },
                "BucketKeyEnabled": True,
            }
        ],
        public_access_block=dict(FULL_PAB),
        policy=json.dumps({"Version": "2012-10-17", "Statement": [_tls_statement()]}),
        policy_is_public=False,
        acl_grants=[],
        versioning={"Status": "Enabled"},
        object_lock={"ObjectLockEnabled": "Enabled"},
        ownership="BucketOwnerEnforced",
        logging={"TargetBucket": "logs", "TargetPrefix": "x/"},
        fetched=s3_posture.CHECK_GROUPS,
    )
    for k, v in overrides.items():
        setattr(cfg, k, v)
    return cfg


def _ids(findings):
    return sorted(f.id for f in findings)


class TestEvaluate:
    def test_compliant_bucket_has_no_findings(self):
        assert s3_posture.evaluate_bucket(_compliant(), s3_posture.PostureOptions(require_kms=True)) == []

    def test_nothing_configured(self):
        cfg = s3_posture.BucketConfig(bucket=B, fetched=s3_posture.CHECK_GROUPS)
        assert _ids(s3_posture.evaluate_bucket(cfg)) == [
            "AISEC-S3-ACLS-ENABLED",
            "AISEC-S3-ENC-NONE",
            "AISEC-S3-LOGGING-OFF",
            "AISEC-S3-OBJECT-LOCK-OFF",
            "AISEC-S3-PAB-MISSING",
            "AISEC-S3-TLS-NOT-ENFORCED",
            "AISEC-S3-VERSIONING-OFF",
        ]

    def test_groups_not_fetched_are_not_evaluated(self):
        cfg = s3_posture.BucketConfig(bucket=B, fetched=("versioning",))
        assert _ids(s3_posture.evaluate_bucket(cfg)) == ["AISEC-S3-VERSIONING-OFF"]

    def test_sse_s3_is_fine_unless_kms_required(self):
        cfg = _compliant(encryption_rules=[{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}])
        assert s3_posture.evaluate_bucket(cfg) == []
        assert _ids(s3_posture.evaluate_bucket(cfg, s3_posture.PostureOptions(require_kms=True))) == [
            "AISEC-S3-ENC-NOT-KMS"
        ]

    def test_aws_managed_key_and_missing_bucket_key(self):
        rules = [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}, "BucketKeyEnabled": False}]
        found = s3_posture.evaluate_bucket(
            _compliant(encryption_rules=rules), s3_posture.PostureOptions(require_kms=True)
        )
        assert _ids(found) == ["AISEC-S3-ENC-AWS-MANAGED-KEY", "AISEC-S3-ENC-NO-BUCKET-KEY"]

    def test_partial_public_access_block_names_the_disabled_settings(self):
        pab = {**FULL_PAB, "RestrictPublicBuckets": False, "BlockPublicPolicy": False}
        (f,) = s3_posture.evaluate_bucket(_compliant(public_access_block=pab))
        assert f.id == "AISEC-S3-PAB-PARTIAL"
        assert f.details["disabled"] == ["BlockPublicPolicy", "RestrictPublicBuckets"]

    def test_public_policy_is_critical_and_detects_public_write(self):
        public = {
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": ["s3:GetObject", "s3:PutObject"],
            "Resource": f"arn:aws:s3:::{B}/*",
        }
        policy = json.dumps({"Version": "2012-10-17", "Statement": [_tls_statement(), public]})
        pab = {**FULL_PAB, "RestrictPublicBuckets": False}
        found = [
            f
            for f in s3_posture.evaluate_bucket(_compliant(policy=policy, public_access_block=pab))
            if f.id == "AISEC-S3-POLICY-PUBLIC"
        ]
        assert found[0].effective_severity == "critical"
        assert found[0].details["public_write"] is True

    def test_public_policy_restricted_by_pab_is_high(self):
        public = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{B}/*"}
        policy = json.dumps({"Version": "2012-10-17", "Statement": [_tls_statement(), public]})
        (f,) = s3_posture.evaluate_bucket(_compliant(policy=policy))
        assert (f.id, f.effective_severity) == ("AISEC-S3-POLICY-PUBLIC", "high")

    def test_public_acl_grant(self):
        grants = [{"Grantee": {"Type": "Group", "URI": s3_posture.PUBLIC_GROUPS[0]}, "Permission": "READ"}]
        (f,) = s3_posture.evaluate_bucket(
            _compliant(acl_grants=grants, public_access_block=None, fetched=("public_policy",))
        )
        assert f.id == "AISEC-S3-ACL-PUBLIC"
        assert f.details["grants"] == [{"grantee": s3_posture.PUBLIC_GROUPS[0], "permission": "READ"}]

    def test_findings_carry_prowler_and_checkov_equivalents(self):
        from airflow_aisec.report import Report

        report = Report.start("s3_posture", B)
        for f in s3_posture.evaluate_bucket(s3_posture.BucketConfig(bucket=B, fetched=("encryption",))):
            f.add_to(report)
        (data,) = report.to_dict()["findings"]
        assert data["details"]["equivalents"] == {
            "prowler": ["s3_bucket_default_encryption"],
            "checkov": ["CKV_AWS_19"],
        }
        assert data["location"] == f"s3://{B}"

    def test_unknown_check_group_is_an_input_error(self):
        with pytest.raises(AisecInputError, match=r"unknown S3 check group\(s\) \['tls'\]"):
            s3_posture.PostureOptions(groups=("tls",))


class TestSecureTransport:
    @pytest.mark.parametrize(
        "overrides",
        [
            {},
            {"Action": ["s3:*"]},
            {"Action": "*"},
            {"Principal": {"AWS": "*"}},
            {"Principal": {"AWS": ["*"]}},
            {"Condition": {"Bool": {"aws:SecureTransport": False}}},
            {"Condition": {"Bool": {"aws:securetransport": ["false"]}}},
            {"Condition": {"BoolIfExists": {"aws:SecureTransport": "False"}}},
            {"Resource": "*"},
            {"Resource": f"arn:aws:s3:::{B}*"},
        ],
    )
    def test_equivalent_spellings_pass(self, overrides):
        ok, reason = s3_posture.denies_insecure_transport(_statements(_tls_statement(**overrides)), B)
        assert ok, reason

    @pytest.mark.parametrize(
        ("overrides", "reason"),
        [
            ({"Effect": "Allow"}, "no Deny statement"),
            ({"Condition": {"Bool": {"aws:SecureTransport": "true"}}}, "no Deny statement"),
            ({"Action": "s3:GetObject"}, "167 s3 action(s) not denied on arn:aws:s3:::models-bucket ("),
            ({"Principal": {"AWS": "arn:aws:iam::1:root"}}, "every principal"),
            ({"Resource": f"arn:aws:s3:::{B}"}, f"not denied on every object arn:aws:s3:::{B}/*"),
            ({"Resource": f"arn:aws:s3:::{B}/*"}, f"not denied on arn:aws:s3:::{B} ("),
            (
                {
                    "Condition": {
                        "Bool": {"aws:SecureTransport": "false"},
                        "StringEquals": {"aws:PrincipalAccount": "1"},
                    }
                },
                "no Deny statement",
            ),
        ],
    )
    def test_incomplete_denies_fail_with_a_reason(self, overrides, reason):
        ok, why = s3_posture.denies_insecure_transport(_statements(_tls_statement(**overrides)), B)
        assert not ok
        assert reason in why

    def test_no_policy(self):
        assert s3_posture.denies_insecure_transport([], B) == (False, "no bucket policy")


class TestRemediationPlan:
    def test_plan_covers_only_the_safe_subset(self):
        cfg = s3_posture.BucketConfig(bucket=B, fetched=s3_posture.DEFAULT_CHECK_GROUPS)
        options = s3_posture.PostureOptions()
        plan = s3_posture.plan_remediation(B, s3_posture.evaluate_bucket(cfg, options), options)
        assert [p["action"] for p in plan] == [
            "put_bucket_encryption",
            "put_public_access_block",
            "put_bucket_versioning",
        ]
        assert plan[0]["params"] == {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}

    def test_kms_key_is_used_with_bucket_key(self):
        cfg = s3_posture.BucketConfig(bucket=B, fetched=("encryption",))
        options = s3_posture.PostureOptions(require_kms=True, kms_key_id="alias/ml-data")
        (item,) = s3_posture.plan_remediation(B, s3_posture.evaluate_bucket(cfg, options), options)
        assert item["params"]["Rules"][0] == {
            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "alias/ml-data"},
            "BucketKeyEnabled": True,
        }

    def test_require_kms_without_key_is_skipped_with_reason(self):
        cfg = s3_posture.BucketConfig(bucket=B, fetched=("encryption",))
        options = s3_posture.PostureOptions(require_kms=True)
        (item,) = s3_posture.plan_remediation(B, s3_posture.evaluate_bucket(cfg, options), options)
        assert "no kms_key_id" in item["skipped"]


class _Always503(http.server.BaseHTTPRequestHandler):
    hits = 0

    def _answer(self):
        type(self).hits += 1
        body = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
        self.send_response(503)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_PUT = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def slowdown_server():
    """A loopback HTTP server that answers every S3 request with 503 SlowDown (stopped at the end)."""
    _Always503.hits = 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Always503)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _client(endpoint):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=5),
    )


class TestTransient:
    def test_retry_delays_are_bounded_exponential(self):
        policy = s3_posture.RetryPolicy(max_attempts=6, base_delay=0.5, max_delay=3)
        assert [policy.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3, 3]

    def test_throttling_is_retried_then_transient(self, slowdown_server):
        sleeps = []
        policy = s3_posture.RetryPolicy(max_attempts=3, base_delay=0.01, sleep=sleeps.append)
        with pytest.raises(
            AisecTransientError, match=r"head_bucket on bucket 'b-one' still failing after 3 attempt\(s\)"
        ):
            s3_posture.check_s3_posture(_client(slowdown_server), ["b-one"], retry=policy)
        assert _Always503.hits == 3
        assert sleeps == [0.01, 0.02]

    def test_network_failure_is_retried_then_transient(self):
        from tests.fixtures.moto_server import free_port

        policy = s3_posture.RetryPolicy(max_attempts=2, base_delay=0, sleep=lambda s: None)
        with pytest.raises(AisecTransientError, match=r"EndpointConnectionError"):
            s3_posture.check_s3_posture(_client(f"http://127.0.0.1:{free_port()}"), ["b-one"], retry=policy)

    def test_bad_arguments(self):
        with pytest.raises(AisecInputError, match="buckets: give at least one bucket name"):
            s3_posture.check_s3_posture(object(), [" "])
        with pytest.raises(AisecInputError, match="max_attempts must be at least 1"):
            s3_posture.RetryPolicy(max_attempts=0)


class TestSageMakerSettings:
    def test_notebook_defaults_are_findings(self):
        ids = [i for i, _ in sagemaker.evaluate_notebook_instance("nb", {})]
        assert ids == [
            "AISEC-SM-NOTEBOOK-DIRECT-INTERNET",
            "AISEC-SM-NOTEBOOK-ROOT-ACCESS",
            "AISEC-SM-NOTEBOOK-NO-KMS",
            "AISEC-SM-NOTEBOOK-NO-VPC",
        ]

    def test_hardened_notebook_has_none(self):
        desc = {"DirectInternetAccess": "Disabled", "RootAccess": "Disabled", "KmsKeyId": "k", "SubnetId": "subnet-1"}
        assert sagemaker.evaluate_notebook_instance("nb", desc) == []

    def test_training_job_settings(self):
        hardened = {
            "EnableInterContainerTrafficEncryption": True,
            "EnableNetworkIsolation": True,
            "ResourceConfig": {"VolumeKmsKeyId": "k"},
            "OutputDataConfig": {"KmsKeyId": "k"},
        }
        assert sagemaker.evaluate_training_job("tj", hardened) == []
        (only,) = sagemaker.evaluate_training_job("tj", {**hardened, "OutputDataConfig": {}})
        assert only == ("AISEC-SM-TRAINING-NO-VOLUME-KMS", {"volume_kms_key": "k", "output_kms_key": None})


def test_unexpected_kms_key_is_its_own_finding():
    rules = [
        {
            "ApplyServerSideEncryptionByDefault": {
                "SSEAlgorithm": "aws:kms",
                "KMSMasterKeyID": "arn:aws:kms:eu-west-1:1:key/other",
            },
            "BucketKeyEnabled": True,
        }
    ]
    options = s3_posture.PostureOptions(require_kms=True, kms_key_id="arn:aws:kms:eu-west-1:1:key/k1")
    found = s3_posture.evaluate_bucket(_compliant(encryption_rules=rules), options)
    assert [(f.id, f.details["expected_kms_key"]) for f in found] == [
        ("AISEC-S3-ENC-UNEXPECTED-KEY", options.kms_key_id)
    ]
    # enforce never replaces an existing key: the plan item is skipped with the reason
    (item,) = s3_posture.plan_remediation(B, found, options)
    assert "params" not in item
    assert "never changes an existing one" in item["skipped"]
