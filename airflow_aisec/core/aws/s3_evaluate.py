"""S3 posture: a fetched bucket configuration → findings, one registered check per check group.

Each check of :data:`GROUP_CHECKS` takes the fetched configuration, the options and the bucket policy's
normalised statements, and returns its findings; :func:`evaluate_bucket` runs those of the groups that
were fetched, in :data:`~airflow_aisec.core.aws.s3_config.CHECK_GROUPS` order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from airflow_aisec.core.aws.common import CallError
from airflow_aisec.core.aws.iam.match import (
    condition_makes_non_public,
    deny_covers_prefix,
    granted_actions,
    principal_is_everyone,
    principals_not_understood,
    resource_certainly_matches,
    resource_matches,
    vacuous_conditions,
)
from airflow_aisec.core.aws.iam.policy import Statement, normalize_policy
from airflow_aisec.core.aws.s3_config import (
    AWS_MANAGED_S3_KEY_ALIASES,
    CHECK_GROUPS,
    PAB_KEYS,
    PUBLIC_GROUPS,
    BucketConfig,
    PostureOptions,
    S3Finding,
)
from airflow_aisec.exceptions import AisecInputError

GroupCheck = Callable[[BucketConfig, PostureOptions, Sequence[Statement]], list[S3Finding]]
#: Check group → its check; filled by :func:`group_check` below, run in ``CHECK_GROUPS`` order.
GROUP_CHECKS: dict[str, GroupCheck] = {}


def group_check(group: str) -> Callable[[GroupCheck], GroupCheck]:
    """Register the check of one check group."""

    def register(fn: GroupCheck) -> GroupCheck:
        GROUP_CHECKS[group] = fn
        return fn

    return register


def evaluate_bucket(cfg: BucketConfig, options: PostureOptions | None = None) -> list[S3Finding]:
    """Findings for one fetched bucket configuration (groups not fetched are not evaluated)."""
    options = options or PostureOptions()
    done = set(cfg.fetched)
    try:
        statements = _policy_statements(cfg)
    except AisecInputError as exc:  # an unreadable policy decides nothing: error for this bucket
        cfg.errors.append(CallError("invalid_policy", cfg.bucket, "get_bucket_policy", "InvalidPolicy", str(exc)))
        done -= {"public_policy", "tls_policy"}
        statements = []
    out: list[S3Finding] = []
    for group in CHECK_GROUPS:
        if group in done:
            out += GROUP_CHECKS[group](cfg, options, statements)
    return out


@group_check("public_access_block")
def _public_access_block(
    cfg: BucketConfig, options: PostureOptions, statements: Sequence[Statement]
) -> list[S3Finding]:
    pab = cfg.public_access_block
    if pab is None:
        return [S3Finding("AISEC-S3-PAB-MISSING", cfg.bucket, {})]
    off = [k for k in PAB_KEYS if not pab.get(k)]
    return [S3Finding("AISEC-S3-PAB-PARTIAL", cfg.bucket, {"disabled": off})] if off else []


@group_check("tls_policy")
def _tls_policy(cfg: BucketConfig, options: PostureOptions, statements: Sequence[Statement]) -> list[S3Finding]:
    ok, reason = denies_insecure_transport(statements, cfg.bucket, partition=cfg.partition)
    return [] if ok else [S3Finding("AISEC-S3-TLS-NOT-ENFORCED", cfg.bucket, {"reason": reason})]


@group_check("versioning")
def _versioning(cfg: BucketConfig, options: PostureOptions, statements: Sequence[Statement]) -> list[S3Finding]:
    status = cfg.versioning.get("Status")
    if status == "Enabled":
        return []
    return [S3Finding("AISEC-S3-VERSIONING-OFF", cfg.bucket, {"status": status or "never enabled"})]


@group_check("object_lock")
def _object_lock(cfg: BucketConfig, options: PostureOptions, statements: Sequence[Statement]) -> list[S3Finding]:
    if (cfg.object_lock or {}).get("ObjectLockEnabled") == "Enabled":
        return []
    return [S3Finding("AISEC-S3-OBJECT-LOCK-OFF", cfg.bucket, {})]


@group_check("ownership")
def _ownership(cfg: BucketConfig, options: PostureOptions, statements: Sequence[Statement]) -> list[S3Finding]:
    if cfg.ownership == "BucketOwnerEnforced":
        return []
    return [S3Finding("AISEC-S3-ACLS-ENABLED", cfg.bucket, {"object_ownership": cfg.ownership or "not configured"})]


@group_check("logging")
def _logging(cfg: BucketConfig, options: PostureOptions, statements: Sequence[Statement]) -> list[S3Finding]:
    return [] if cfg.logging else [S3Finding("AISEC-S3-LOGGING-OFF", cfg.bucket, {})]


@group_check("encryption")
def _encryption(cfg: BucketConfig, options: PostureOptions, statements: Sequence[Statement]) -> list[S3Finding]:
    return _encryption_findings(cfg, options)


@group_check("public_policy")
def _public_policy(cfg: BucketConfig, options: PostureOptions, statements: Sequence[Statement]) -> list[S3Finding]:
    return _public_findings(cfg, list(statements))


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
    one of :data:`~airflow_aisec.core.aws.iam.match.RESTRICTING_KEYS` to fixed values. Always-true conditions
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
        from airflow_aisec.core.aws.catalogue import catalogue

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
    from airflow_aisec.core.aws.catalogue import catalogue

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
    """Every ``bucket_arn/<key>`` (see :func:`~airflow_aisec.core.aws.iam.match.certainly_covers_prefix`)."""

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
