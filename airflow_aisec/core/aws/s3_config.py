"""S3 posture: the check table, the check groups and the read-only fetch of a bucket's configuration.

:func:`fetch_bucket_config` calls the read-only S3 APIs for one bucket and returns plain data. A
configuration that is *not set* (``ServerSideEncryptionConfigurationNotFoundError`` …) is data (``None``),
not an error. ``AccessDenied`` / a missing bucket / any other client error is recorded as an error naming
the bucket and the API call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_aisec.core.aws.common import CallError, CallStats, NotConfigured, RetryPolicy, call_api
from airflow_aisec.exceptions import AisecInputError
from airflow_aisec.report import Report

# --------------------------------------------------------------------------------------- check table
#: id → severity, title, prowler / checkov equivalents, threat tags.
S3_CHECKS: dict[str, dict[str, Any]] = {
    "AISEC-S3-ENC-NONE": {
        "severity": "high",
        "title": "No default encryption at rest",
        "prowler": ["s3_bucket_default_encryption"],
        "checkov": ["CKV_AWS_19"],
        "tags": ["OWASP-ML05"],
    },
    "AISEC-S3-ENC-NOT-KMS": {
        "severity": "medium",
        "title": "Default encryption is SSE-S3, not SSE-KMS (require_kms)",
        "prowler": ["s3_bucket_kms_encryption"],
        "checkov": ["CKV_AWS_145"],
        "tags": ["OWASP-ML05"],
    },
    "AISEC-S3-ENC-AWS-MANAGED-KEY": {
        "severity": "medium",
        "title": "SSE-KMS uses the AWS-managed key, not a customer-managed key (require_kms)",
        "prowler": ["s3_bucket_kms_encryption"],
        "checkov": ["CKV_AWS_145"],
        "tags": ["OWASP-ML05"],
    },
    "AISEC-S3-ENC-UNEXPECTED-KEY": {
        "severity": "medium",
        "title": "SSE-KMS uses a different key than the expected kms_key_id",
        "prowler": [],
        "checkov": [],
        "tags": ["OWASP-ML05"],
    },
    "AISEC-S3-ENC-NO-BUCKET-KEY": {
        "severity": "low",
        "title": "SSE-KMS without an S3 Bucket Key (every object calls KMS)",
        "prowler": [],
        "checkov": [],
        "tags": [],
    },
    "AISEC-S3-PAB-MISSING": {
        "severity": "high",
        "title": "No bucket public access block",
        "prowler": ["s3_bucket_level_public_access_block"],
        "checkov": ["CKV2_AWS_6"],
        "tags": ["OWASP-ML05"],
    },
    "AISEC-S3-PAB-PARTIAL": {
        "severity": "high",
        "title": "Bucket public access block has settings turned off",
        "prowler": ["s3_bucket_level_public_access_block"],
        "checkov": ["CKV_AWS_53", "CKV_AWS_54", "CKV_AWS_55", "CKV_AWS_56"],
        "tags": ["OWASP-ML05"],
    },
    "AISEC-S3-ACCOUNT-PAB": {
        "severity": "high",
        "title": "Account-level S3 public access block missing or partial",
        "prowler": ["s3_account_level_public_access_blocks"],
        "checkov": [],
        "tags": ["OWASP-ML05"],
    },
    "AISEC-S3-POLICY-PUBLIC": {
        "severity": "critical",
        "title": "Bucket policy grants access to everyone",
        "prowler": ["s3_bucket_public_access", "s3_bucket_policy_public_write_access"],
        "checkov": ["CKV_AWS_70"],
        "tags": ["OWASP-ML05", "AML.T0024"],
    },
    "AISEC-S3-ACL-PUBLIC": {
        "severity": "critical",
        "title": "Bucket ACL grants access to AllUsers / AuthenticatedUsers",
        "prowler": ["s3_bucket_public_access"],
        "checkov": ["CKV_AWS_20", "CKV_AWS_57"],
        "tags": ["OWASP-ML05"],
    },
    "AISEC-S3-TLS-NOT-ENFORCED": {
        "severity": "medium",
        "title": "Bucket policy does not deny requests without TLS (aws:SecureTransport)",
        "prowler": ["s3_bucket_secure_transport_policy"],
        "checkov": [],
        "tags": ["OWASP-ML05"],
    },
    "AISEC-S3-VERSIONING-OFF": {
        "severity": "medium",
        "title": "Versioning is not enabled (overwrites and deletes are unrecoverable)",
        "prowler": ["s3_bucket_object_versioning"],
        "checkov": ["CKV_AWS_21"],
        "tags": ["OWASP-ML02", "AML.T0059"],
    },
    "AISEC-S3-OBJECT-LOCK-OFF": {
        "severity": "low",
        "title": "Object Lock is not enabled",
        "prowler": ["s3_bucket_object_lock"],
        "checkov": ["CKV_AWS_143"],
        "tags": ["OWASP-ML02", "AML.T0059"],
    },
    "AISEC-S3-ACLS-ENABLED": {
        "severity": "medium",
        "title": "ACLs are enabled (object ownership is not BucketOwnerEnforced)",
        "prowler": ["s3_bucket_acl_prohibited"],
        "checkov": ["CKV2_AWS_65"],
        "tags": ["OWASP-ML05"],
    },
    "AISEC-S3-LOGGING-OFF": {
        "severity": "low",
        "title": "Server access logging is not enabled",
        "prowler": ["s3_bucket_server_access_logging_enabled"],
        "checkov": ["CKV_AWS_18"],
        "tags": [],
    },
}

#: Check groups a caller can select; ``object_lock`` and ``account_public_access_block`` are opt-in.
CHECK_GROUPS = (
    "encryption",
    "public_access_block",
    "public_policy",
    "tls_policy",
    "versioning",
    "object_lock",
    "ownership",
    "logging",
)
DEFAULT_CHECK_GROUPS = tuple(g for g in CHECK_GROUPS if g != "object_lock")

#: Error codes meaning "this configuration is not set" per API call (a finding, not an error).
NOT_CONFIGURED = {
    "get_bucket_encryption": ("ServerSideEncryptionConfigurationNotFoundError",),
    "get_public_access_block": ("NoSuchPublicAccessBlockConfiguration",),
    "get_bucket_policy": ("NoSuchBucketPolicy",),
    "get_bucket_policy_status": ("NoSuchBucketPolicy",),
    "get_object_lock_configuration": ("ObjectLockConfigurationNotFoundError",),
    "get_bucket_ownership_controls": ("OwnershipControlsNotFoundError",),
}
PAB_KEYS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
PUBLIC_GROUPS = (
    "http://acs.amazonaws.com/groups/global/AllUsers",
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
)
AWS_MANAGED_S3_KEY_ALIASES = ("alias/aws/s3",)


# --------------------------------------------------------------------------------------- fetch
@dataclass
class BucketConfig:
    """What the S3 API says about one bucket; ``None`` means "not configured"."""

    bucket: str
    encryption_rules: list[dict[str, Any]] | None = None
    public_access_block: dict[str, bool] | None = None
    policy: str | None = None
    policy_is_public: bool | None = None
    acl_grants: list[dict[str, Any]] | None = None
    versioning: dict[str, Any] = field(default_factory=dict)
    object_lock: dict[str, Any] | None = None
    ownership: str | None = None
    logging: dict[str, Any] | None = None
    fetched: tuple[str, ...] = ()
    errors: list[CallError] = field(default_factory=list)
    #: The bucket's AWS partition (``aws``, ``aws-cn`` …): a TLS deny must name this partition.
    partition: str = "aws"

    def to_dict(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "encryption_rules": self.encryption_rules,
            "public_access_block": self.public_access_block,
            "policy_present": self.policy is not None,
            "policy_is_public": self.policy_is_public,
            "versioning": self.versioning.get("Status"),
            "mfa_delete": self.versioning.get("MFADelete"),
            "object_lock": (self.object_lock or {}).get("ObjectLockEnabled") if self.object_lock else None,
            "ownership": self.ownership,
            "logging_target": (self.logging or {}).get("TargetBucket") if self.logging else None,
            "errors": [e.to_dict() for e in self.errors],
        }


def fetch_bucket_config(
    client: Any,
    bucket: str,
    *,
    groups: Sequence[str] = DEFAULT_CHECK_GROUPS,
    retry: RetryPolicy | None = None,
    stats: CallStats | None = None,
) -> BucketConfig:
    """Read ``bucket``'s configuration for ``groups`` (read-only calls). Errors are collected per call."""
    retry = retry or RetryPolicy()
    stats = stats if stats is not None else CallStats()
    partition = getattr(getattr(client, "meta", None), "partition", None)
    cfg = BucketConfig(bucket=bucket, partition=partition if isinstance(partition, str) and partition else "aws")

    def get(api: str, **kw: Any) -> dict[str, Any] | None:
        try:
            return call_api(
                client, api, bucket=bucket, retry=retry, stats=stats, not_configured=NOT_CONFIGURED.get(api, ()), **kw
            )
        except NotConfigured:
            return None

    try:
        call_api(client, "head_bucket", bucket=bucket, retry=retry, stats=stats, Bucket=bucket)
    except CallError as exc:
        cfg.errors.append(exc)
        return cfg  # missing or denied at the door: nothing else can be read
    fetched = []
    for group in groups:
        try:
            if group == "encryption":
                r = get("get_bucket_encryption", Bucket=bucket)
                cfg.encryption_rules = None if r is None else list(r["ServerSideEncryptionConfiguration"]["Rules"])
            elif group == "public_access_block":
                r = get("get_public_access_block", Bucket=bucket)
                cfg.public_access_block = None if r is None else dict(r["PublicAccessBlockConfiguration"])
            elif group in ("public_policy", "tls_policy"):
                if "policy" not in fetched:
                    r = get("get_bucket_policy", Bucket=bucket)
                    cfg.policy = None if r is None else str(r["Policy"])
                    fetched.append("policy")
                if group == "public_policy":
                    if cfg.policy is not None:
                        r = get("get_bucket_policy_status", Bucket=bucket)
                        cfg.policy_is_public = None if r is None else bool(r["PolicyStatus"].get("IsPublic"))
                    r = get("get_bucket_acl", Bucket=bucket)
                    cfg.acl_grants = list((r or {}).get("Grants", []))
            elif group == "versioning":
                r = get("get_bucket_versioning", Bucket=bucket) or {}
                cfg.versioning = {k: v for k, v in r.items() if k in ("Status", "MFADelete")}
            elif group == "object_lock":
                r = get("get_object_lock_configuration", Bucket=bucket)
                cfg.object_lock = None if r is None else dict(r.get("ObjectLockConfiguration") or {})
            elif group == "ownership":
                r = get("get_bucket_ownership_controls", Bucket=bucket)
                rules = [] if r is None else r["OwnershipControls"].get("Rules", [])
                cfg.ownership = rules[0].get("ObjectOwnership") if rules else None
            elif group == "logging":
                r = get("get_bucket_logging", Bucket=bucket) or {}
                cfg.logging = r.get("LoggingEnabled") or None
            else:
                raise AisecInputError(f"unknown S3 check group {group!r}; choose from {CHECK_GROUPS}")
            fetched.append(group)
        except CallError as exc:
            cfg.errors.append(exc)
    cfg.fetched = tuple(fetched)
    return cfg


def fetch_account_public_access_block(
    s3control: Any, account_id: str, *, retry: RetryPolicy | None = None, stats: CallStats | None = None
) -> dict[str, bool] | None:
    """The account-level public access block (``None`` when not configured)."""
    try:
        r = call_api(
            s3control,
            "get_public_access_block",
            bucket=f"account {account_id}",
            retry=retry or RetryPolicy(),
            stats=stats,
            not_configured=("NoSuchPublicAccessBlockConfiguration",),
            AccountId=account_id,
        )
    except NotConfigured:
        return None
    return dict(r["PublicAccessBlockConfiguration"])


# --------------------------------------------------------------------------------------- options & findings
@dataclass
class PostureOptions:
    """What "compliant" means. ``kms_key_id`` is used by remediation (and is the expected key when set)."""

    require_kms: bool = False
    kms_key_id: str | None = None
    require_bucket_key: bool = True
    groups: tuple[str, ...] = DEFAULT_CHECK_GROUPS

    def __post_init__(self) -> None:
        unknown = [g for g in self.groups if g not in CHECK_GROUPS]
        if unknown:
            raise AisecInputError(f"unknown S3 check group(s) {unknown}; choose from {list(CHECK_GROUPS)}")


@dataclass
class S3Finding:
    id: str
    bucket: str
    details: dict[str, Any]
    severity: str | None = None
    location: str | None = None  # default ``s3://<bucket>``

    @property
    def effective_severity(self) -> str:
        return self.severity or S3_CHECKS[self.id]["severity"]

    def add_to(self, report: Report) -> None:
        check = S3_CHECKS[self.id]
        details = {
            **self.details,
            "equivalents": {"prowler": check["prowler"], "checkov": check["checkov"]},
            "tags": check["tags"],
        }
        location = self.location or f"s3://{self.bucket}"
        report.add_finding(self.id, self.effective_severity, check["title"], location, details)
        report.add_tags(*check["tags"])
