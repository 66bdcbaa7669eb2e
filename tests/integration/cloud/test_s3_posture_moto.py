"""S3 posture core against a real S3 API (moto server on loopback, started by the session fixture).

moto quirks (design.md §6): a new bucket has no encryption / public access block until set (the pre-2023
AWS defaults, exactly the "default configuration" this check exists to catch); a logging target needs a
log-delivery grant or bucket policy; moto's IAM authorisation maps GetBucketEncryption /
GetPublicAccessBlock / GetBucketOwnershipControls to ``s3:ListBucket`` (so the denied-path test denies
``s3:GetBucketPolicy``, which moto maps faithfully).
"""

from __future__ import annotations

import json
import uuid

import pytest

from airflow_aisec.core.aws import s3 as s3_posture

pytestmark = pytest.mark.integration


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def tls_policy(bucket: str) -> str:
    # Deliberately the spellings scanners trip on: Action as a string, the condition value as a JSON bool.
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": {"AWS": "*"},
                    "Action": "s3:*",
                    "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": False}},
                }
            ],
        }
    )


def make_compliant_bucket(server, bucket: str, kms_key_id: str) -> None:
    s3 = server.client("s3")
    log_bucket = _name("access-logs")
    s3.create_bucket(Bucket=log_bucket)
    s3.put_bucket_policy(
        Bucket=log_bucket,
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "logging.s3.amazonaws.com"},
                        "Action": "s3:PutObject",
                        "Resource": f"arn:aws:s3:::{log_bucket}/*",
                    }
                ],
            }
        ),
    )
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": kms_key_id},
                    "BucketKeyEnabled": True,
                }
            ]
        },
    )
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=dict.fromkeys(s3_posture.PAB_KEYS, True))
    s3.put_bucket_policy(Bucket=bucket, Policy=tls_policy(bucket))
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_ownership_controls(
        Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    )
    s3.put_bucket_logging(
        Bucket=bucket, BucketLoggingStatus={"LoggingEnabled": {"TargetBucket": log_bucket, "TargetPrefix": "l/"}}
    )


def make_public_bucket(server, bucket: str) -> None:
    s3 = server.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
    s3.put_bucket_policy(
        Bucket=bucket,
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "PublicWrite",
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": ["s3:GetObject", "s3:PutObject"],
                        "Resource": f"arn:aws:s3:::{bucket}/*",
                    }
                ],
            }
        ),
    )


@pytest.fixture(scope="module")
def kms_key(moto_server) -> str:
    return moto_server.client("kms").create_key(Description="ml data")["KeyMetadata"]["Arn"]


def _ids(data):
    return sorted(f["id"] for f in data["findings"])


def test_compliant_bucket_passes_every_check(moto_server, kms_key):
    bucket = _name("compliant")
    make_compliant_bucket(moto_server, bucket, kms_key)
    report = s3_posture.check_s3_posture(
        moto_server.client("s3"), [bucket], require_kms=True, kms_key_id=kms_key, check_object_lock=True
    ).to_dict()
    assert report["status"] == "pass", report["findings"]
    assert report["findings"] == []
    (b,) = report["details"]["buckets"]
    assert b["versioning"] == "Enabled"
    assert b["ownership"] == "BucketOwnerEnforced"
    assert b["object_lock"] == "Enabled"
    assert report["metrics"]["buckets_compliant"] == 1


def test_default_bucket_has_every_finding_and_nothing_is_changed(moto_server):
    bucket = _name("defaults")
    s3 = moto_server.client("s3")
    s3.create_bucket(Bucket=bucket)
    report = s3_posture.check_s3_posture(s3, [bucket], require_kms=True, check_object_lock=True).to_dict()
    assert report["status"] == "fail"
    assert _ids(report) == [
        "AISEC-S3-ACLS-ENABLED",
        "AISEC-S3-ENC-NONE",
        "AISEC-S3-LOGGING-OFF",
        "AISEC-S3-OBJECT-LOCK-OFF",
        "AISEC-S3-PAB-MISSING",
        "AISEC-S3-TLS-NOT-ENFORCED",
        "AISEC-S3-VERSIONING-OFF",
    ]
    plan = report["details"]["remediation_plan"]
    assert [p["action"] for p in plan] == ["put_bucket_encryption", "put_public_access_block", "put_bucket_versioning"]
    assert "skipped" in plan[0]  # require_kms without a key: nothing to encrypt with
    # without enforce nothing was modified
    with pytest.raises(s3.exceptions.ClientError, match="ServerSideEncryptionConfigurationNotFoundError"):
        s3.get_bucket_encryption(Bucket=bucket)
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)


def test_public_bucket(moto_server):
    bucket = _name("public")
    make_public_bucket(moto_server, bucket)
    report = s3_posture.check_s3_posture(moto_server.client("s3"), [bucket], checks=["public_policy"]).to_dict()
    by_id = {f["id"]: f for f in report["findings"]}
    assert set(by_id) == {"AISEC-S3-POLICY-PUBLIC", "AISEC-S3-ACL-PUBLIC"}
    assert by_id["AISEC-S3-POLICY-PUBLIC"]["severity"] == "critical"
    assert by_id["AISEC-S3-POLICY-PUBLIC"]["details"]["public_write"] is True
    assert by_id["AISEC-S3-POLICY-PUBLIC"]["details"]["policy_status_is_public"] is True
    assert by_id["AISEC-S3-ACL-PUBLIC"]["details"]["grants"][0]["permission"] == "READ"


def test_sse_s3_with_require_kms(moto_server):
    bucket = _name("sse-s3")
    s3 = moto_server.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    assert s3_posture.check_s3_posture(s3, [bucket], checks=["encryption"]).status == "pass"
    report = s3_posture.check_s3_posture(s3, [bucket], checks=["encryption"], require_kms=True).to_dict()
    assert _ids(report) == ["AISEC-S3-ENC-NOT-KMS"]
    assert report["findings"][0]["details"]["equivalents"]["checkov"] == ["CKV_AWS_145"]


def test_enforce_remediates_the_safe_subset_and_reports_exactly_what_changed(moto_server, kms_key):
    bucket = _name("enforce")
    s3 = moto_server.client("s3")
    s3.create_bucket(Bucket=bucket)
    report = s3_posture.check_s3_posture(s3, [bucket], enforce=True, require_kms=True, kms_key_id=kms_key).to_dict()
    applied = report["details"]["remediation_applied"]
    assert [(a["action"], a["status"]) for a in applied] == [
        ("put_bucket_encryption", "applied"),
        ("put_public_access_block", "applied"),
        ("put_bucket_versioning", "applied"),
    ]
    assert report["metrics"]["remediations_applied"] == 3
    # the report shows the state after the change: only the unsafe-to-automate findings remain
    assert _ids(report) == ["AISEC-S3-ACLS-ENABLED", "AISEC-S3-LOGGING-OFF", "AISEC-S3-TLS-NOT-ENFORCED"]
    # and the bucket really changed
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": kms_key}
    assert rule["BucketKeyEnabled"] is True
    assert all(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values())
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    # a second run has nothing left to do
    again = s3_posture.check_s3_posture(s3, [bucket], enforce=True, require_kms=True, kms_key_id=kms_key).to_dict()
    assert again["details"]["remediation_applied"] == []


def test_missing_bucket_is_an_error_naming_it_and_keeps_other_findings(moto_server):
    present = _name("present")
    moto_server.client("s3").create_bucket(Bucket=present)
    report = s3_posture.check_s3_posture(moto_server.client("s3"), ["no-such-bucket-aisec", present]).to_dict()
    assert report["status"] == "error"
    assert "bucket 'no-such-bucket-aisec' does not exist (head_bucket" in report["summary"]
    assert report["details"]["errors"][0]["kind"] == "missing"
    assert {f["location"] for f in report["findings"]} == {f"s3://{present}"}


def test_access_denied_is_an_error_naming_bucket_and_call(moto_server):
    bucket = _name("denied")
    admin_s3 = moto_server.client("s3")
    admin_s3.create_bucket(Bucket=bucket)
    iam = moto_server.client("iam")
    user = _name("auditor")
    iam.create_user(UserName=user)
    iam.put_user_policy(
        UserName=user,
        PolicyName="read-some",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": ["s3:HeadBucket", "s3:ListBucket"], "Resource": "*"}],
            }
        ),
    )
    key = iam.create_access_key(UserName=user)["AccessKey"]
    limited = moto_server.client(
        "s3", aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"]
    )
    with moto_server.iam_auth():
        report = s3_posture.check_s3_posture(limited, [bucket], checks=["encryption", "tls_policy"]).to_dict()
    assert report["status"] == "error"
    assert f"access denied to bucket '{bucket}' on get_bucket_policy (AccessDenied)" in report["summary"]
    (err,) = report["details"]["errors"]
    assert (err["kind"], err["api_call"], err["code"]) == ("denied", "get_bucket_policy", "AccessDenied")
    # what could be read is still reported; what could not is not guessed
    assert _ids(report) == ["AISEC-S3-ENC-NONE"]


def test_account_level_public_access_block(moto_server):
    account = moto_server.client("sts").get_caller_identity()["Account"]
    s3control = s3_posture.use_path_style_s3control(moto_server.client("s3control"))
    bucket = _name("acct")
    moto_server.client("s3").create_bucket(Bucket=bucket)
    report = s3_posture.check_s3_posture(
        moto_server.client("s3"), [bucket], checks=["versioning"], account=(s3control, account)
    ).to_dict()
    acct = [f for f in report["findings"] if f["id"] == "AISEC-S3-ACCOUNT-PAB"]
    assert acct[0]["details"]["configured"] is False
    assert acct[0]["location"] == f"aws-account/{account}"
    s3control.put_public_access_block(
        AccountId=account, PublicAccessBlockConfiguration=dict.fromkeys(s3_posture.PAB_KEYS, True)
    )
    try:
        report = s3_posture.check_s3_posture(
            moto_server.client("s3"), [bucket], checks=["versioning"], account=(s3control, account)
        ).to_dict()
        assert _ids(report) == ["AISEC-S3-VERSIONING-OFF"]
    finally:
        s3control.delete_public_access_block(AccountId=account)
