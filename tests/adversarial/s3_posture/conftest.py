"""A stand-in S3 client (the read API of one compliant-but-for-the-policy bucket) for the s3_posture
adversarial suites: the policy under test is the only thing that varies."""

from __future__ import annotations

import contextlib
import io
import json
from typing import Any

from botocore.exceptions import ClientError

BUCKET = "ml-training-data"


class FakeS3:
    """Every posture setting compliant; ``policy`` is served verbatim by GetBucketPolicy."""

    def __init__(self, policy: str | dict | None, *, is_public: bool = False, partition: str = "aws") -> None:
        self.policy = policy if policy is None or isinstance(policy, str) else json.dumps(policy)
        self.is_public = is_public
        self.calls: list[str] = []

        class _Meta:
            pass

        self.meta = _Meta()
        self.meta.partition = partition  # type: ignore[attr-defined]

    def _log(self, name: str) -> None:
        self.calls.append(name)
        if name.startswith(("put_", "delete_")):
            raise AssertionError(f"the check must not write: {name}")

    def __getattr__(self, name: str) -> Any:
        if name.startswith(("put_", "delete_")):

            def refuse(**_: Any) -> Any:
                self._log(name)

            return refuse
        raise AttributeError(name)

    def head_bucket(self, **_: Any) -> dict:
        self._log("head_bucket")
        return {}

    def get_bucket_encryption(self, **_: Any) -> dict:
        self._log("get_bucket_encryption")
        rule = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
        return {"ServerSideEncryptionConfiguration": {"Rules": [rule]}}

    def get_public_access_block(self, **_: Any) -> dict:
        self._log("get_public_access_block")
        return {
            "PublicAccessBlockConfiguration": dict.fromkeys(
                ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
            )
        }

    def get_bucket_policy(self, **_: Any) -> dict:
        self._log("get_bucket_policy")
        if self.policy is None:
            raise ClientError({"Error": {"Code": "NoSuchBucketPolicy", "Message": "none"}}, "GetBucketPolicy")
        return {"Policy": self.policy}

    def get_bucket_policy_status(self, **_: Any) -> dict:
        self._log("get_bucket_policy_status")
        return {"PolicyStatus": {"IsPublic": self.is_public}}

    def get_bucket_acl(self, **_: Any) -> dict:
        self._log("get_bucket_acl")
        return {"Grants": []}

    def get_bucket_versioning(self, **_: Any) -> dict:
        self._log("get_bucket_versioning")
        return {"Status": "Enabled"}

    def get_bucket_ownership_controls(self, **_: Any) -> dict:
        self._log("get_bucket_ownership_controls")
        return {"OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}}

    def get_bucket_logging(self, **_: Any) -> dict:
        self._log("get_bucket_logging")
        return {"LoggingEnabled": {"TargetBucket": "logs", "TargetPrefix": "x/"}}


def tls_deny(bucket: str = BUCKET, **overrides: Any) -> dict:
    st = {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    st.update(overrides)
    return {k: v for k, v in st.items() if v is not None}


def policy(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def run_cli(monkeypatch: Any, client: FakeS3, *extra: str) -> tuple[int, dict]:
    """``aisec s3-posture BUCKET --format json`` against ``client``; (exit code, report)."""
    from airflow_aisec.cli import cloud as cli_cloud
    from airflow_aisec.cli import main

    monkeypatch.setattr(cli_cloud, "_client", lambda args, service: client)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(["s3-posture", BUCKET, "--format", "json", *extra])
    return code, json.loads(out.getvalue())
