"""S3 bucket posture: fetch each bucket's configuration through a boto3 S3 client, evaluate it, and
optionally remediate the safe subset (pure: no Airflow import; the client is passed in).

Three layers, each usable alone:

* :func:`fetch_bucket_config` calls the read-only S3 APIs for one bucket and returns plain data. A
  configuration that is *not set* (``ServerSideEncryptionConfigurationNotFoundError`` …) is data
  (``None``), not an error. ``AccessDenied`` / a missing bucket / any other client error is recorded as an
  error naming the bucket and the API call (fail closed: the report is ``error``). Throttling, 5xx and
  network failures are retried with bounded exponential backoff, then raise
  :class:`~airflow_aisec.exceptions.AisecTransientError` (the task retries).
* :func:`evaluate_bucket` turns a fetched configuration into findings (ids below, each with the
  equivalent prowler and checkov ids), and :func:`plan_remediation` lists what ``enforce`` would change.
* :func:`check_s3_posture` runs both for every bucket, applies the plan when ``enforce=True`` (then
  re-reads the bucket, so the report shows the state after the change) and returns one report.

Only three changes are ever made, all additive and safe for running pipelines: default encryption (the
article's ``put-bucket-encryption``), the bucket public access block, versioning. Bucket policies,
ownership and logging are reported, never changed.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_aisec.core.iam import (
    Statement,
    condition_makes_non_public,
    finish_report,
    granted_actions,
    normalize_policy,
    principal_is_everyone,
    principals_not_understood,
    resource_certainly_matches,
    resource_matches,
    vacuous_conditions,
)
from airflow_aisec.exceptions import AisecInputError, AisecTransientError
from airflow_aisec.report import SEVERITIES, Report, parse_fail_on

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
TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "503",
        "500",
        "502",
        "504",
    }
)
DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "AllAccessDisabled",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "UnrecognizedClientException",
        "403",
    }
)
MISSING_CODES = frozenset({"NoSuchBucket", "NoSuchEntity", "404"})
PAB_KEYS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
PUBLIC_GROUPS = (
    "http://acs.amazonaws.com/groups/global/AllUsers",
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
)
AWS_MANAGED_S3_KEY_ALIASES = ("alias/aws/s3",)


# --------------------------------------------------------------------------------------- calls & errors
@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries for transient failures: ``max_attempts`` calls, delays ``base_delay·2^n`` ≤ ``max_delay``."""

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise AisecInputError(f"max_attempts must be at least 1, not {self.max_attempts}")
        if self.base_delay < 0 or self.max_delay < 0:
            raise AisecInputError("retry delays must not be negative")

    def delay(self, attempt: int) -> float:
        return min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))


class CallError(Exception):
    """A non-transient client error for one API call on one bucket (reported, never retried)."""

    def __init__(self, kind: str, bucket: str, api: str, code: str, message: str) -> None:
        self.kind, self.bucket, self.api, self.code = kind, bucket, api, code
        super().__init__(message)

    def to_dict(self) -> dict[str, str]:
        return {"bucket": self.bucket, "api_call": self.api, "kind": self.kind, "code": self.code, "message": str(self)}


class NotConfigured(Exception):
    """The configuration read by an API call is not set (``code`` says which)."""

    def __init__(self, code: str) -> None:
        self.code = code
        super().__init__(code)


def error_code(exc: BaseException) -> tuple[str, int | None]:
    """``(code, http_status)`` of a botocore ``ClientError`` (``("", None)`` for anything else)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, Mapping):
        return "", None
    code = str((response.get("Error") or {}).get("Code") or "")
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    return code, status


def _is_network_error(exc: BaseException) -> bool:
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import HTTPClientError

    return isinstance(exc, (BotoConnectionError, HTTPClientError))


@dataclass
class CallStats:
    calls: int = 0
    retries: int = 0


def call_api(
    client: Any,
    api: str,
    *,
    bucket: str,
    retry: RetryPolicy,
    stats: CallStats | None = None,
    not_configured: Sequence[str] = (),
    **kwargs: Any,
) -> dict[str, Any]:
    """Call ``client.<api>(**kwargs)`` with bounded retries; classify every failure.

    :raises NotConfigured: the error code is one of ``not_configured``.
    :raises CallError: access denied, missing bucket or another client error (not retried).
    :raises AisecTransientError: throttling / 5xx / network still failing after ``retry.max_attempts``.
    """
    return retry_call(
        lambda: dict(getattr(client, api)(**kwargs) or {}),
        target=f"bucket {bucket!r}",
        name=bucket,
        api=api,
        retry=retry,
        stats=stats,
        not_configured=not_configured,
    )


def retry_call(
    fn: Callable[[], Any],
    *,
    target: str,
    name: str,
    api: str,
    retry: RetryPolicy,
    stats: CallStats | None = None,
    not_configured: Sequence[str] = (),
) -> Any:
    """Run ``fn`` (one or more AWS calls on ``target``) with :func:`call_api`'s retry and error rules."""
    from botocore.exceptions import ClientError

    stats = stats if stats is not None else CallStats()
    last: BaseException | None = None
    for attempt in range(1, retry.max_attempts + 1):
        stats.calls += 1
        try:
            return fn()
        except ClientError as exc:
            code, status = error_code(exc)
            op = _snake(getattr(exc, "operation_name", "") or "") or api
            if code in not_configured:
                raise NotConfigured(code) from None
            if code in TRANSIENT_CODES or (status is not None and status >= 500) or status == 429:
                last = exc
            elif code in MISSING_CODES or (op == "head_bucket" and status == 404):
                raise CallError(
                    "missing", name, op, code or "404", f"{target} does not exist ({op}: {code or 404})"
                ) from None
            elif code in DENIED_CODES or status == 403:
                raise CallError(
                    "denied",
                    name,
                    op,
                    code or "403",
                    f"access denied to {target} on {op} ({code or 403}); grant the caller this read permission",
                ) from None
            else:
                message = (exc.response.get("Error") or {}).get("Message", "")
                raise CallError(
                    "client_error", name, op, code, f"{op} on {target} failed: {code} {message}".strip()
                ) from None
        except Exception as exc:
            if not _is_network_error(exc):
                raise
            last = exc
        if attempt < retry.max_attempts:
            stats.retries += 1
            retry.sleep(retry.delay(attempt))
    raise AisecTransientError(
        f"{api} on {target} still failing after {retry.max_attempts} attempt(s): {_describe(last)}"
    )


def _snake(operation: str) -> str:
    """``GetBucketPolicy`` → ``get_bucket_policy`` (botocore operation name to client method)."""
    import re

    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", operation).lower()


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown error"
    code, status = error_code(exc)
    if code or status:
        return f"{code or 'HTTP'} ({status})"
    return f"{type(exc).__name__}: {exc}"


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


# --------------------------------------------------------------------------------------- evaluate
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


def evaluate_bucket(cfg: BucketConfig, options: PostureOptions | None = None) -> list[S3Finding]:
    """Findings for one fetched bucket configuration (groups not fetched are not evaluated)."""
    options = options or PostureOptions()
    b = cfg.bucket
    out: list[S3Finding] = []
    done = set(cfg.fetched)
    if "encryption" in done:
        out += _encryption_findings(cfg, options)
    if "public_access_block" in done:
        pab = cfg.public_access_block
        if pab is None:
            out.append(S3Finding("AISEC-S3-PAB-MISSING", b, {}))
        else:
            off = [k for k in PAB_KEYS if not pab.get(k)]
            if off:
                out.append(S3Finding("AISEC-S3-PAB-PARTIAL", b, {"disabled": off}))
    try:
        statements = _policy_statements(cfg)
    except AisecInputError as exc:  # an unreadable policy decides nothing: error for this bucket
        cfg.errors.append(CallError("invalid_policy", b, "get_bucket_policy", "InvalidPolicy", str(exc)))
        done -= {"public_policy", "tls_policy"}
        statements = []
    if "public_policy" in done:
        out += _public_findings(cfg, statements)
    if "tls_policy" in done:
        ok, reason = denies_insecure_transport(statements, b, partition=cfg.partition)
        if not ok:
            out.append(S3Finding("AISEC-S3-TLS-NOT-ENFORCED", b, {"reason": reason}))
    if "versioning" in done and cfg.versioning.get("Status") != "Enabled":
        out.append(S3Finding("AISEC-S3-VERSIONING-OFF", b, {"status": cfg.versioning.get("Status") or "never enabled"}))
    if "object_lock" in done and (cfg.object_lock or {}).get("ObjectLockEnabled") != "Enabled":
        out.append(S3Finding("AISEC-S3-OBJECT-LOCK-OFF", b, {}))
    if "ownership" in done and cfg.ownership != "BucketOwnerEnforced":
        out.append(S3Finding("AISEC-S3-ACLS-ENABLED", b, {"object_ownership": cfg.ownership or "not configured"}))
    if "logging" in done and not cfg.logging:
        out.append(S3Finding("AISEC-S3-LOGGING-OFF", b, {}))
    return out


def _encryption_findings(cfg: BucketConfig, options: PostureOptions) -> list[S3Finding]:
    b = cfg.bucket
    if not cfg.encryption_rules:
        return [S3Finding("AISEC-S3-ENC-NONE", b, {})]
    default = cfg.encryption_rules[0].get("ApplyServerSideEncryptionByDefault") or {}
    algorithm = default.get("SSEAlgorithm")
    key = default.get("KMSMasterKeyID")
    bucket_key = bool(cfg.encryption_rules[0].get("BucketKeyEnabled"))
    info = {"algorithm": algorithm, "kms_key": key, "bucket_key": bucket_key}
    out = []
    if algorithm not in ("AES256", "aws:kms", "aws:kms:dsse"):
        return [
            S3Finding(
                "AISEC-S3-ENC-NONE", b, {**info, "configured": True, "reason": f"unknown algorithm {algorithm!r}"}
            )
        ]
    kms = algorithm.startswith("aws:kms")
    if options.require_kms and not kms:
        out.append(S3Finding("AISEC-S3-ENC-NOT-KMS", b, info))
    if options.require_kms and kms and (not key or any(key.endswith(a) for a in AWS_MANAGED_S3_KEY_ALIASES)):
        out.append(S3Finding("AISEC-S3-ENC-AWS-MANAGED-KEY", b, info))
    if options.require_kms and kms and key and options.kms_key_id and not _same_key(key, options.kms_key_id):
        out.append(S3Finding("AISEC-S3-ENC-UNEXPECTED-KEY", b, {**info, "expected_kms_key": options.kms_key_id}))
    if kms and options.require_bucket_key and not bucket_key:
        out.append(S3Finding("AISEC-S3-ENC-NO-BUCKET-KEY", b, info))
    return out


def _same_key(actual: str, expected: str) -> bool:
    return actual == expected or actual.endswith(f"/{expected}") or expected.endswith(f"/{actual}")


def _policy_statements(cfg: BucketConfig) -> list[Statement]:
    if cfg.policy is None:
        return []
    return list(normalize_policy(cfg.policy, f"s3://{cfg.bucket} bucket policy").statements)


def public_statements(statements: Sequence[Statement]) -> list[tuple[Statement, str, list[str]]]:
    """``Allow`` statements open to everyone: ``(statement, reason, principals not understood)``.

    Public: a ``"*"`` principal (any spelling), ``NotPrincipal`` (everyone except the listed), a missing
    principal, or a principal this check does not understand (fail closed) -- unless a condition pins
    one of :data:`~airflow_aisec.core.iam.RESTRICTING_KEYS` to fixed values. Always-true conditions
    (``…IfExists``, ``ForAllValues``, negated operators, ``Null``, ``Bool`` true+false, ``"*"``,
    ``0.0.0.0/0``) restrict nothing.
    """
    out = []
    for st in statements:
        if st.effect != "Allow":
            continue
        unknown: list[str] = []
        if st.not_principal is not None:
            reason = "NotPrincipal with Allow grants everyone except the listed principals"
        elif st.principal is None:
            reason = "no Principal (not understood: treated as everyone)"
        elif principal_is_everyone(st.principal):
            reason = 'Principal "*"'
        else:
            unknown = principals_not_understood(st.principal)
            if not unknown:
                continue
            reason = "principal(s) not understood (treated as everyone)"
        if condition_makes_non_public(st.conditions):
            continue
        out.append((st, reason, unknown))
    return out


def _public_findings(cfg: BucketConfig, statements: list[Statement]) -> list[S3Finding]:
    out = []
    public = public_statements(statements)
    if cfg.policy_is_public or public:
        granted: set[str] = set()
        for st, _, _ in public:
            granted |= granted_actions(st)
        from airflow_aisec.core.aws_catalogue import catalogue

        cat = catalogue()
        write = any(cat.actions[a].writes for a in granted)
        blocked = bool(cfg.public_access_block and cfg.public_access_block.get("RestrictPublicBuckets"))
        out.append(
            S3Finding(
                "AISEC-S3-POLICY-PUBLIC",
                cfg.bucket,
                {
                    "statements": [st.label for st, _, _ in public],
                    "reasons": {st.label: reason for st, reason, _ in public},
                    "actions": sorted({a for st, _, _ in public for a in (st.actions or ("NotAction",))}),
                    "conditions_ignored": {
                        st.label: vacuous_conditions(st.conditions) for st, _, _ in public if st.conditions
                    },
                    "principals_not_understood": sorted({p for _, _, u in public for p in u}),
                    "public_write": write,
                    "policy_status_is_public": cfg.policy_is_public,
                    "restricted_by_public_access_block": blocked,
                },
                severity="high" if blocked else "critical",
            )
        )
    grants = [
        {"grantee": g.get("Grantee", {}).get("URI"), "permission": g.get("Permission")}
        for g in cfg.acl_grants or []
        if g.get("Grantee", {}).get("URI") in PUBLIC_GROUPS
    ]
    if grants:
        ignored = bool(cfg.public_access_block and cfg.public_access_block.get("IgnorePublicAcls"))
        out.append(
            S3Finding(
                "AISEC-S3-ACL-PUBLIC",
                cfg.bucket,
                {"grants": grants, "ignored_by_public_access_block": ignored},
                severity="high" if ignored else "critical",
            )
        )
    return out


def denies_insecure_transport(
    statements: Sequence[Statement], bucket: str, *, partition: str = "aws"
) -> tuple[bool, str]:
    """Whether a bucket policy denies every S3 action over plain HTTP, on the bucket and on every object.

    The ``Deny`` statements that count: ``Principal`` ``"*"`` or ``{"AWS": "*"}`` (not ``NotPrincipal``),
    exactly one condition ``Bool`` / ``BoolIfExists`` ``aws:SecureTransport`` with a value ``false`` (any
    case; JSON ``false`` or ``"false"``). Any other condition could be false on a plain-HTTP request and is
    refused. Together they must cover every S3 action of the catalogue (``Action`` patterns expanded,
    ``NotAction`` complemented) on the bucket ARN ``arn:<partition>:s3:::<bucket>`` and on every object
    ARN under it (a ``Resource`` pattern matching ``<bucket>/`` + any key; policy variables match nothing
    arbitrary). Returns ``(ok, reason)``; ``reason`` says what is missing.
    """
    if not statements:
        return False, "no bucket policy"
    from airflow_aisec.core.aws_catalogue import catalogue

    s3_all = catalogue().by_service["s3"]
    bucket_arn = f"arn:{partition}:s3:::{bucket}"
    on_bucket: set[str] = set()
    on_objects: set[str] = set()
    rejected: list[str] = []
    for st in statements:
        if st.effect != "Deny":
            continue
        if not _is_insecure_transport_condition(st.conditions):
            if any("aws:securetransport" in keys for keys in st.conditions.values()):
                rejected.append(f"{st.label}: its condition can be false or absent on a plain-HTTP request")
            continue
        if st.not_principal is not None or not _principal_all(st.principal):
            rejected.append(f"{st.label}: the deny does not apply to every principal")
            continue
        actions = granted_actions(st) & s3_all
        if _deny_covers_bucket(st, bucket_arn):
            on_bucket |= actions
        if _deny_covers_all_objects(st, bucket_arn):
            on_objects |= actions
    missing_b = sorted(s3_all - on_bucket)
    missing_o = sorted(s3_all - on_objects)
    if not missing_b and not missing_o:
        return True, "a Deny of every s3 action on the bucket and its objects applies when aws:SecureTransport is false"
    if not on_bucket and not on_objects:
        why = "no Deny statement of every principal conditioned only on aws:SecureTransport = false"
        return False, f"{why}: {rejected[0]}" if rejected else why
    parts = []
    if missing_b:
        parts.append(f"{len(missing_b)} s3 action(s) not denied on {bucket_arn} (e.g. {missing_b[0]})")
    if missing_o:
        parts.append(f"{len(missing_o)} s3 action(s) not denied on every object {bucket_arn}/* (e.g. {missing_o[0]})")
    return False, "; ".join(parts)


def _principal_all(principal: Mapping[str, Sequence[str]] | None) -> bool:
    return bool(principal) and "*" in (principal or {}).get("AWS", ())


def _deny_covers_bucket(st: Statement, bucket_arn: str) -> bool:
    if st.resources is not None:
        return any(resource_certainly_matches(r, bucket_arn) for r in st.resources)
    if st.not_resources is not None:
        return not any(resource_matches(r, bucket_arn) for r in st.not_resources)
    return False


def _deny_covers_all_objects(st: Statement, bucket_arn: str) -> bool:
    """Every ``bucket_arn/<key>`` (see :func:`~airflow_aisec.core.iam.certainly_covers_prefix`)."""
    from airflow_aisec.core.iam import deny_covers_prefix

    return deny_covers_prefix(st, f"{bucket_arn}/")


def _is_insecure_transport_condition(conditions: Mapping[str, Mapping[str, Sequence[str]]]) -> bool:
    """Exactly one condition: ``Bool``/``BoolIfExists`` ``aws:securetransport`` with a value ``false``."""
    if len(conditions) != 1:
        return False
    ((op, keys),) = conditions.items()
    if op not in ("bool", "boolifexists") or len(keys) != 1:
        return False
    ((key, values),) = keys.items()
    return key == "aws:securetransport" and any(v.lower() == "false" for v in values)


def evaluate_account_pab(pab: Mapping[str, bool] | None, account_id: str) -> list[S3Finding]:
    where = f"aws-account/{account_id}"
    if pab is None:
        return [S3Finding("AISEC-S3-ACCOUNT-PAB", "", {"configured": False}, location=where)]
    off = [k for k in PAB_KEYS if not pab.get(k)]
    return [S3Finding("AISEC-S3-ACCOUNT-PAB", "", {"disabled": off}, location=where)] if off else []


# --------------------------------------------------------------------------------------- remediation
def plan_remediation(bucket: str, findings: Sequence[S3Finding], options: PostureOptions) -> list[dict[str, Any]]:
    """The safe changes that would fix ``findings`` (encryption, public access block, versioning).

    Each item: ``{"bucket", "action" (S3 API), "fixes" (finding ids), "params" | "skipped"}``.
    """
    ids = {f.id for f in findings if f.bucket == bucket}
    plan: list[dict[str, Any]] = []
    enc_ids = sorted(ids & {i for i in S3_CHECKS if i.startswith("AISEC-S3-ENC-")})
    # Only a bucket with no encryption configuration at all gets one: an existing configuration (its
    # KMS key, algorithm or Bucket Key setting) is never changed, whatever the findings say.
    unset = any(
        f.id == "AISEC-S3-ENC-NONE" and f.bucket == bucket and not f.details.get("configured") for f in findings
    )
    if enc_ids and not unset:
        plan.append(
            {
                "bucket": bucket,
                "action": "put_bucket_encryption",
                "fixes": enc_ids,
                "skipped": "the bucket already has an encryption configuration; enforce never changes an existing "
                "one (its KMS key, algorithm or Bucket Key): change it deliberately",
            }
        )
    elif enc_ids:
        if options.kms_key_id:
            default = {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": options.kms_key_id}
            rule: dict[str, Any] = {"ApplyServerSideEncryptionByDefault": default, "BucketKeyEnabled": True}
            plan.append(_item(bucket, "put_bucket_encryption", enc_ids, {"Rules": [rule]}))
        elif options.require_kms:
            plan.append(
                {
                    "bucket": bucket,
                    "action": "put_bucket_encryption",
                    "fixes": enc_ids,
                    "skipped": "require_kms is set but no kms_key_id was given to encrypt with",
                }
            )
        else:
            rule = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
            plan.append(_item(bucket, "put_bucket_encryption", ["AISEC-S3-ENC-NONE"], {"Rules": [rule]}))
    pab_ids = sorted(ids & {"AISEC-S3-PAB-MISSING", "AISEC-S3-PAB-PARTIAL"})
    if pab_ids:
        plan.append(_item(bucket, "put_public_access_block", pab_ids, dict.fromkeys(PAB_KEYS, True)))
    if "AISEC-S3-VERSIONING-OFF" in ids:
        plan.append(_item(bucket, "put_bucket_versioning", ["AISEC-S3-VERSIONING-OFF"], {"Status": "Enabled"}))
    return plan


def _item(bucket: str, action: str, fixes: list[str], params: dict[str, Any]) -> dict[str, Any]:
    return {"bucket": bucket, "action": action, "fixes": list(fixes), "params": params}


def apply_remediation(
    client: Any, plan: Sequence[Mapping[str, Any]], *, retry: RetryPolicy, stats: CallStats | None = None
) -> list[dict[str, Any]]:
    """Apply every non-skipped plan item; returns the items with ``status`` ``applied`` / ``failed`` / ``skipped``."""
    results = []
    for item in plan:
        result = dict(item)
        if "skipped" in item:
            result["status"] = "skipped"
            results.append(result)
            continue
        bucket, action, params = item["bucket"], item["action"], item["params"]
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if action == "put_bucket_encryption":
            kwargs["ServerSideEncryptionConfiguration"] = params
        elif action == "put_public_access_block":
            kwargs["PublicAccessBlockConfiguration"] = params
        elif action == "put_bucket_versioning":
            kwargs["VersioningConfiguration"] = params
        else:  # pragma: no cover - the plan only contains the three above
            raise AisecInputError(f"unsupported remediation {action!r}")
        try:
            call_api(client, action, bucket=bucket, retry=retry, stats=stats, **kwargs)
            result["status"] = "applied"
        except CallError as exc:
            result["status"] = "failed"
            result["error"] = exc.to_dict()
        results.append(result)
    return results


# --------------------------------------------------------------------------------------- orchestration
def check_s3_posture(
    client: Any,
    buckets: Sequence[str],
    *,
    require_kms: bool = False,
    kms_key_id: str | None = None,
    require_bucket_key: bool = True,
    check_object_lock: bool = False,
    checks: Sequence[str] | None = None,
    enforce: bool = False,
    account: tuple[Any, str] | None = None,
    fail_on: str = "low",
    retry: RetryPolicy | None = None,
) -> Report:
    """Check (and with ``enforce=True`` remediate) ``buckets``; one ``s3_posture`` report.

    :param client: a boto3 S3 client (or anything with the same methods).
    :param checks: check groups (default :data:`DEFAULT_CHECK_GROUPS`); ``check_object_lock`` adds one.
    :param account: ``(s3control_client, account_id)`` to also check the account-level public access block.
    :param fail_on: lowest severity that fails the report; lower findings give ``warn``.
    :returns: the report; ``error`` (with every other bucket's findings kept) when a bucket is missing or a
        read is denied, naming the bucket and API call.
    :raises AisecTransientError: throttling / 5xx / network errors outlasting the retries.
    """
    names = [b.strip() for b in buckets if b and b.strip()]
    names = [b[5:].split("/", 1)[0] if b.startswith("s3://") else b for b in names]
    if not names:
        raise AisecInputError("buckets: give at least one bucket name")
    parse_fail_on(fail_on, choices=SEVERITIES)
    groups = tuple(checks) if checks is not None else DEFAULT_CHECK_GROUPS
    if not groups:  # nothing selected would check nothing and pass
        raise AisecInputError(f"checks: give at least one check group ({', '.join(CHECK_GROUPS)})")
    if check_object_lock and "object_lock" not in groups:
        groups += ("object_lock",)
    options = PostureOptions(
        require_kms=require_kms, kms_key_id=kms_key_id, require_bucket_key=require_bucket_key, groups=groups
    )
    retry = retry or RetryPolicy()
    stats = CallStats()
    subject = f"s3://{names[0]}" if len(names) == 1 else ", ".join(f"s3://{n}" for n in names)
    report = Report.start("s3_posture", subject, tags=["OWASP-ML05"])
    errors: list[CallError] = []
    plans: list[dict[str, Any]] = []
    applied: list[dict[str, Any]] = []
    per_bucket = []
    all_findings: list[S3Finding] = []
    for name in names:
        cfg = fetch_bucket_config(client, name, groups=groups, retry=retry, stats=stats)
        findings = evaluate_bucket(cfg, options)
        plan = plan_remediation(name, findings, options)
        if enforce and plan and not any(e.kind in ("missing", "denied") and e.api == "head_bucket" for e in cfg.errors):
            results = apply_remediation(client, plan, retry=retry, stats=stats)
            applied += results
            if any(r["status"] == "applied" for r in results):  # re-read: report the state after the change
                cfg = fetch_bucket_config(client, name, groups=groups, retry=retry, stats=stats)
                findings = evaluate_bucket(cfg, options)
        else:
            plans += plan
        errors += cfg.errors
        all_findings += findings
        per_bucket.append({**cfg.to_dict(), "findings": [f.id for f in findings]})
    if account is not None:
        s3control, account_id = account
        try:
            all_findings += evaluate_account_pab(
                fetch_account_public_access_block(s3control, account_id, retry=retry, stats=stats), account_id
            )
        except CallError as exc:
            errors.append(exc)
    for f in all_findings:
        f.add_to(report)
    report.details["buckets"] = per_bucket
    if enforce:
        report.details["remediation_applied"] = applied
    else:
        report.details["remediation_plan"] = plans
    report.metrics.update(
        {
            "buckets": len(names),
            "buckets_compliant": sum(1 for b in per_bucket if not b["findings"] and not b["errors"]),
            "api_calls": stats.calls,
            "api_retries": stats.retries,
            "remediations_applied": sum(1 for r in applied if r["status"] == "applied"),
            "remediations_planned": len(plans),
            "errors": len(errors),
            "principals_not_understood": sum(len(f.details.get("principals_not_understood", ())) for f in all_findings),
        }
    )
    failed_fixes = [r for r in applied if r["status"] == "failed"]
    errors += [CallError(**_call_error_args(r)) for r in failed_fixes]
    if errors:
        report.details["errors"] = [e.to_dict() for e in errors]
        first = errors[0]
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        finish_report(report, fail_on)  # fills severity metrics; status overridden below
        return report.error(f"cannot decide: {first}{more}")
    changed = f"; changed {report.metrics['remediations_applied']} setting(s)" if enforce else ""
    report.summary = f"{len(names)} bucket(s), {len(all_findings)} finding(s){changed}"
    return finish_report(report, fail_on)


def _call_error_args(result: Mapping[str, Any]) -> dict[str, str]:
    err = result["error"]
    return {
        "kind": err["kind"],
        "bucket": err["bucket"],
        "api": err["api_call"],
        "code": err["code"],
        "message": f"remediation {err['api_call']} failed: {err['message']}",
    }


def use_path_style_s3control(client: Any) -> Any:
    """Make an ``s3control`` client work against a custom endpoint (S3-compatible servers, loopback).

    botocore puts the account id in front of the host (``123456789012.s3-control…``), which only real AWS
    resolves; against an ``endpoint_url`` such as ``http://127.0.0.1:9000`` this strips it again. Returns
    ``client``.
    """
    from urllib.parse import urlsplit, urlunsplit

    def _strip_account_host_prefix(request: Any, **_: Any) -> None:
        account = request.headers.get("x-amz-account-id")
        if isinstance(account, bytes):
            account = account.decode()
        parts = urlsplit(request.url)
        if account and parts.netloc.startswith(f"{account}."):
            request.url = urlunsplit(parts._replace(netloc=parts.netloc[len(account) + 1 :]))

    client.meta.events.register("before-sign.s3-control", _strip_account_host_prefix)
    return client


# --------------------------------------------------------------------------------------- IAM lint sources
def lint_iam_policies(
    *,
    policy_files: Sequence[str] = (),
    role_names: Sequence[str] = (),
    iam_client: Any = None,
    purpose: str | None = None,
    training_data_buckets: Sequence[str] = (),
    fail_on: str = "low",
    retry: RetryPolicy | None = None,
    sagemaker_client: Any = None,
    notebook_instances: Sequence[str] = (),
    training_jobs: Sequence[str] = (),
) -> Report:
    """Lint local policy files and the policies attached to IAM roles (fetched through ``iam_client``),
    and optionally the SageMaker settings of notebook instances and training jobs.

    A role that does not exist is an input error; a denied read is undecidable (both name the role and the
    API call); throttling / network errors are retried, then :class:`AisecTransientError`.
    """
    from airflow_aisec.core.iam import lint_documents, load_policy_file, split_wrapped
    from airflow_aisec.exceptions import AisecUndecidableError

    if not policy_files and not role_names and not notebook_instances and not training_jobs:
        raise AisecInputError("give at least one policy file, role name or SageMaker resource to lint")
    if role_names and iam_client is None:
        raise AisecInputError("role_names need an IAM client (an AWS connection or credentials)")
    documents: list[tuple[str, Any, str | None, Mapping[str, str]]] = []
    for path in policy_files:
        source, doc = load_policy_file(path)
        documents.append((source, *split_wrapped(source, doc)))
    retry = retry or RetryPolicy()
    for role in role_names:
        from airflow_aisec.core.iam import fetch_role_documents

        try:
            fetched = retry_call(
                functools.partial(fetch_role_documents, iam_client, role),
                target=f"IAM role {role!r}",
                name=role,
                api="get_role",
                retry=retry,
            )
        except CallError as exc:
            if exc.kind == "missing":
                raise AisecInputError(str(exc)) from None
            raise AisecUndecidableError(str(exc)) from None
        if not fetched:
            raise AisecUndecidableError(f"IAM role {role!r} has no inline or attached policies to lint")
        documents += fetched
    sm_findings: list[dict[str, Any]] = []
    if notebook_instances or training_jobs:
        if sagemaker_client is None:
            raise AisecInputError("SageMaker resources need a SageMaker client (an AWS connection or credentials)")
        sm_findings = audit_sagemaker(
            sagemaker_client, notebook_instances=notebook_instances, training_jobs=training_jobs, retry=retry
        )

    def add_sagemaker(report: Report) -> None:
        for f in sm_findings:
            report.add_finding(**f)
            report.add_tags(*f["details"]["tags"])
        if notebook_instances or training_jobs:
            report.metrics["sagemaker_resources"] = len(notebook_instances) + len(training_jobs)

    names = [
        *map(str, policy_files),
        *(f"role/{r}" for r in role_names),
        *(f"sagemaker/notebook-instance/{n}" for n in notebook_instances),
        *(f"sagemaker/training-job/{j}" for j in training_jobs),
    ]
    subject = names[0] if len(names) == 1 else f"{len(names)} IAM policy sources"
    return lint_documents(
        documents,
        subject=subject,
        purpose=purpose,
        training_data_buckets=training_data_buckets,
        fail_on=fail_on,
        before_finish=add_sagemaker,
    )


# --------------------------------------------------------------------------------------- SageMaker
#: id → severity, title, prowler / checkov equivalents, threat tags.
SAGEMAKER_CHECKS: dict[str, dict[str, Any]] = {
    "AISEC-SM-NOTEBOOK-DIRECT-INTERNET": {
        "severity": "high",
        "title": "Notebook instance has direct internet access",
        "prowler": ["sagemaker_notebook_instance_without_direct_internet_access_configured"],
        "checkov": ["CKV_AWS_122"],
        "tags": ["OWASP-ML05", "AML.T0024"],
    },
    "AISEC-SM-NOTEBOOK-ROOT-ACCESS": {
        "severity": "medium",
        "title": "Notebook instance allows root access",
        "prowler": ["sagemaker_notebook_instance_root_access_disabled"],
        "checkov": ["CKV_AWS_307"],
        "tags": ["AML.T0055"],
    },
    "AISEC-SM-NOTEBOOK-NO-KMS": {
        "severity": "medium",
        "title": "Notebook instance storage is not encrypted with a customer-managed KMS key",
        "prowler": ["sagemaker_notebook_instance_encryption_enabled"],
        "checkov": ["CKV_AWS_22"],
        "tags": ["OWASP-ML05"],
    },
    "AISEC-SM-NOTEBOOK-NO-VPC": {
        "severity": "medium",
        "title": "Notebook instance is not in a VPC subnet",
        "prowler": ["sagemaker_notebook_instance_vpc_settings_configured"],
        "checkov": [],
        "tags": ["OWASP-ML05"],
    },
    "AISEC-SM-TRAINING-NO-ICT-ENCRYPTION": {
        "severity": "medium",
        "title": "Training job does not encrypt inter-container traffic",
        "prowler": ["sagemaker_training_jobs_intercontainer_encryption_enabled"],
        "checkov": [],
        "tags": ["OWASP-ML05"],
    },
    "AISEC-SM-TRAINING-NO-VOLUME-KMS": {
        "severity": "medium",
        "title": "Training job volume/output not encrypted with a KMS key",
        "prowler": ["sagemaker_training_jobs_volume_and_output_encryption_enabled"],
        "checkov": [],
        "tags": ["OWASP-ML05"],
    },
    "AISEC-SM-TRAINING-NO-NETWORK-ISOLATION": {
        "severity": "low",
        "title": "Training job containers are not network-isolated",
        "prowler": ["sagemaker_training_jobs_network_isolation_enabled"],
        "checkov": [],
        "tags": ["OWASP-ML02", "AML.T0010"],
    },
}


def evaluate_notebook_instance(name: str, desc: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Findings ``(id, details)`` for a ``DescribeNotebookInstance`` response (AWS defaults when absent)."""
    out: list[tuple[str, dict[str, Any]]] = []
    if desc.get("DirectInternetAccess", "Enabled") == "Enabled":
        out.append(("AISEC-SM-NOTEBOOK-DIRECT-INTERNET", {"DirectInternetAccess": desc.get("DirectInternetAccess")}))
    if desc.get("RootAccess", "Enabled") == "Enabled":
        out.append(("AISEC-SM-NOTEBOOK-ROOT-ACCESS", {"RootAccess": desc.get("RootAccess", "Enabled (default)")}))
    if not desc.get("KmsKeyId"):
        out.append(("AISEC-SM-NOTEBOOK-NO-KMS", {}))
    if not desc.get("SubnetId"):
        out.append(("AISEC-SM-NOTEBOOK-NO-VPC", {}))
    return out


def evaluate_training_job(name: str, desc: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Findings ``(id, details)`` for a ``DescribeTrainingJob`` response."""
    out: list[tuple[str, dict[str, Any]]] = []
    if not desc.get("EnableInterContainerTrafficEncryption"):
        out.append(("AISEC-SM-TRAINING-NO-ICT-ENCRYPTION", {}))
    volume_key = (desc.get("ResourceConfig") or {}).get("VolumeKmsKeyId")
    output_key = (desc.get("OutputDataConfig") or {}).get("KmsKeyId")
    if not volume_key or not output_key:
        out.append(("AISEC-SM-TRAINING-NO-VOLUME-KMS", {"volume_kms_key": volume_key, "output_kms_key": output_key}))
    if not desc.get("EnableNetworkIsolation"):
        out.append(("AISEC-SM-TRAINING-NO-NETWORK-ISOLATION", {"vpc": bool(desc.get("VpcConfig"))}))
    return out


def audit_sagemaker(
    client: Any,
    *,
    notebook_instances: Sequence[str] = (),
    training_jobs: Sequence[str] = (),
    retry: RetryPolicy | None = None,
) -> list[dict[str, Any]]:
    """The article's SageMaker settings, as ``Report.add_finding`` keyword dicts.

    A resource that does not exist is an input error; a denied read is undecidable.
    """
    from airflow_aisec.exceptions import AisecUndecidableError

    retry = retry or RetryPolicy()
    out: list[dict[str, Any]] = []
    targets = [
        ("notebook-instance", n, "describe_notebook_instance", "NotebookInstanceName") for n in notebook_instances
    ]
    targets += [("training-job", j, "describe_training_job", "TrainingJobName") for j in training_jobs]
    for kind, name, api, param in targets:
        try:
            desc = retry_call(
                functools.partial(getattr(client, api), **{param: name}),
                target=f"SageMaker {kind} {name!r}",
                name=name,
                api=api,
                retry=retry,
            )
        except CallError as exc:
            if exc.kind == "missing" or "RecordNotFound" in str(exc) or "not found" in str(exc).lower():
                raise AisecInputError(f"SageMaker {kind} {name!r} not found ({exc.api})") from None
            raise AisecUndecidableError(str(exc)) from None
        evaluate = evaluate_notebook_instance if kind == "notebook-instance" else evaluate_training_job
        for check_id, details in evaluate(name, desc):
            check = SAGEMAKER_CHECKS[check_id]
            out.append(
                {
                    "id": check_id,
                    "severity": check["severity"],
                    "title": check["title"],
                    "location": f"sagemaker/{kind}/{name}",
                    "details": {
                        **details,
                        "equivalents": {"prowler": check["prowler"], "checkov": check["checkov"]},
                        "tags": check["tags"],
                    },
                }
            )
    return out
