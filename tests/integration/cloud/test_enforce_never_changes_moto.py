"""``enforce`` against a real S3 API (moto on loopback): it changes exactly what its report lists, and
never an existing encryption configuration (KMS key, algorithm, Bucket Key) or anything else."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from airflow_aisec.core.aws import s3 as s3_posture

pytestmark = pytest.mark.integration

READS = {
    "get_bucket_encryption": "encryption",
    "get_public_access_block": "public_access_block",
    "get_bucket_policy": "policy",
    "get_bucket_versioning": "versioning",
    "get_bucket_ownership_controls": "ownership",
    "get_bucket_logging": "logging",
    "get_bucket_acl": "acl",
    "get_bucket_tagging": "tagging",
    "get_bucket_lifecycle_configuration": "lifecycle",
    "get_bucket_cors": "cors",
}
#: The remediation API → the configuration it writes.
WRITES = {
    "put_bucket_encryption": "get_bucket_encryption",
    "put_public_access_block": "get_public_access_block",
    "put_bucket_versioning": "get_bucket_versioning",
}


def snapshot(s3: Any, bucket: str) -> dict[str, Any]:
    out = {}
    for api in READS:
        try:
            r = getattr(s3, api)(Bucket=bucket)
            r.pop("ResponseMetadata", None)
            out[api] = r
        except ClientError as exc:
            out[api] = exc.response["Error"]["Code"]
    return out


@pytest.fixture(scope="module")
def keys(moto_server) -> tuple[str, str]:
    kms = moto_server.client("kms")
    return (
        kms.create_key(Description="existing")["KeyMetadata"]["Arn"],
        kms.create_key(Description="wanted")["KeyMetadata"]["Arn"],
    )


def _existing_configs(existing_key: str) -> list[dict[str, Any]]:
    return [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": existing_key}},
        {
            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": existing_key},
            "BucketKeyEnabled": False,
        },
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}, "BucketKeyEnabled": True},
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}},
    ]


@pytest.mark.parametrize("which", range(4))
@pytest.mark.parametrize("require_kms", [True, False])
def test_existing_encryption_is_never_changed_and_only_listed_changes_are_made(moto_server, keys, which, require_kms):
    existing_key, wanted_key = keys
    s3 = moto_server.client("s3")
    bucket = f"enforce-keep-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_encryption(
        Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [_existing_configs(existing_key)[which]]}
    )
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "team", "Value": "ml"}]})
    s3.put_bucket_policy(
        Bucket=bucket,
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                        "Action": "s3:GetObject",
                        "Resource": f"arn:aws:s3:::{bucket}/*",
                    }
                ],
            }
        ),
    )
    before = snapshot(s3, bucket)
    report = s3_posture.check_s3_posture(
        s3, [bucket], enforce=True, require_kms=require_kms, kms_key_id=wanted_key
    ).to_dict()
    after = snapshot(s3, bucket)

    applied = report["details"]["remediation_applied"]
    changed_apis = {WRITES[a["action"]] for a in applied if a["status"] == "applied"}
    # the encryption configuration is exactly as before, whatever the findings
    assert after["get_bucket_encryption"] == before["get_bucket_encryption"]
    assert "get_bucket_encryption" not in changed_apis
    enc_items = [a for a in applied if a["action"] == "put_bucket_encryption"]
    assert all(a["status"] == "skipped" and "never changes an existing one" in a["skipped"] for a in enc_items)
    # everything not listed as applied is byte-for-byte unchanged
    for api in READS:
        if api not in changed_apis:
            assert after[api] == before[api], api
    # and what was listed really changed
    for api in changed_apis:
        assert after[api] != before[api], api


def test_a_bucket_without_encryption_gets_the_listed_key_and_nothing_else(moto_server, keys):
    _, wanted_key = keys
    s3 = moto_server.client("s3")
    bucket = f"enforce-new-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=dict.fromkeys(s3_posture.PAB_KEYS, True))
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    before = snapshot(s3, bucket)
    report = s3_posture.check_s3_posture(s3, [bucket], enforce=True, require_kms=True, kms_key_id=wanted_key).to_dict()
    after = snapshot(s3, bucket)
    assert [(a["action"], a["status"]) for a in report["details"]["remediation_applied"]] == [
        ("put_bucket_encryption", "applied")
    ]
    rule = after["get_bucket_encryption"]["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == wanted_key
    assert {k for k in READS if after[k] != before[k]} == {"get_bucket_encryption"}
