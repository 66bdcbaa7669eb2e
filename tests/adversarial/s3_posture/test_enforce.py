"""``enforce``: never writes an existing encryption configuration (whatever the findings and options),
and writes nothing its report does not list."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_aisec.core.aws import s3 as s3_posture
from tests.adversarial.s3_posture.conftest import BUCKET, FakeS3, policy, run_cli, tls_deny

keys = st.sampled_from(
    [
        None,
        "alias/aws/s3",
        "arn:aws:kms:eu-west-1:111122223333:key/existing",
        "arn:aws:kms:eu-west-1:111122223333:alias/aws/s3",
        "existing",
    ]
)


@st.composite
def existing_rules(draw) -> list[dict[str, Any]]:
    algorithm = draw(st.sampled_from(["AES256", "aws:kms", "aws:kms:dsse", "SHA1", None, ""]))
    default: dict[str, Any] = {}
    if algorithm is not None:
        default["SSEAlgorithm"] = algorithm
    key = draw(keys)
    if key is not None:
        default["KMSMasterKeyID"] = key
    rule: dict[str, Any] = {"ApplyServerSideEncryptionByDefault": default} if draw(st.booleans()) or default else {}
    bucket_key = draw(st.sampled_from([None, True, False]))
    if bucket_key is not None:
        rule["BucketKeyEnabled"] = bucket_key
    return [rule]


options = st.builds(
    s3_posture.PostureOptions,
    require_kms=st.booleans(),
    kms_key_id=st.sampled_from([None, "arn:aws:kms:eu-west-1:111122223333:key/wanted", "alias/wanted"]),
    require_bucket_key=st.booleans(),
)


@settings(max_examples=200)
@given(rules=existing_rules(), opts=options)
def test_an_existing_encryption_configuration_is_never_planned_for_writing(rules, opts):
    cfg = s3_posture.BucketConfig(bucket=BUCKET, encryption_rules=rules, fetched=("encryption",))
    plan = s3_posture.plan_remediation(BUCKET, s3_posture.evaluate_bucket(cfg, opts), opts)
    for item in plan:
        if item["action"] == "put_bucket_encryption":
            assert "params" not in item and "never changes an existing one" in item["skipped"], (rules, item)


class RecordingS3(FakeS3):
    """Bucket with an existing SSE-KMS key, no public access block, versioning off; records writes."""

    def __init__(self, rules: list[dict[str, Any]]) -> None:
        super().__init__(policy(tls_deny()))
        self.rules = rules
        self.writes: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        if name.startswith(("put_", "delete_")):

            def record(**kwargs: Any) -> dict:
                self.writes.append((name, kwargs))
                return {}

            return record
        raise AttributeError(name)

    def get_bucket_encryption(self, **_: Any) -> dict:
        return {"ServerSideEncryptionConfiguration": {"Rules": self.rules}}

    def get_public_access_block(self, **_: Any) -> dict:
        from botocore.exceptions import ClientError

        raise ClientError({"Error": {"Code": "NoSuchPublicAccessBlockConfiguration"}}, "GetPublicAccessBlock")

    def get_bucket_versioning(self, **_: Any) -> dict:
        return {}


@settings(max_examples=40)
@given(rules=existing_rules(), require_kms=st.booleans())
def test_cli_enforce_writes_exactly_what_the_report_lists(rules, require_kms, monkeypatch):
    client = RecordingS3(rules)
    extra = ["--enforce", "--kms-key-id", "arn:aws:kms:eu-west-1:111122223333:key/wanted"]
    code, report = run_cli(monkeypatch, client, *extra, *(["--require-kms"] if require_kms else []))
    written = [name for name, _ in client.writes]
    listed = [a["action"] for a in report["details"]["remediation_applied"] if a["status"] == "applied"]
    assert written == listed
    assert "put_bucket_encryption" not in written
    assert set(written) == {"put_public_access_block", "put_bucket_versioning"}
    assert code in (0, 1)
