"""IAM least-privilege lint rules (pure; no Airflow, no network), each a small registered check.

A rule is a function returning :class:`LintFinding` s, registered in one of three tables that
:func:`~airflow_aisec.core.aws.iam.lint.lint_policy` runs in order: :data:`POLICY_CHECKS` (the whole
document), :data:`STATEMENT_CHECKS` (each statement; most only for ``Allow``) and :data:`PURPOSE_CHECKS`
(the role's purpose: inference or training).

Rules (check ids, with the equivalent prowler / checkov ids where one exists):

=================================  ========  ==================================================
id                                 severity  what
=================================  ========  ==================================================
AISEC-IAM-ACTION-STAR              critical  ``Allow`` granting every catalogue action (``*``, ``?*``, ``*:*`` …)
AISEC-IAM-SERVICE-STAR             high      ``Allow`` whose wildcards grant every action of a service
AISEC-IAM-RESOURCE-STAR            high/med  ``Allow`` on every resource of a type (high when it can write)
AISEC-IAM-NOT-ACTION               high      ``Allow`` with ``NotAction`` (grants everything else)
AISEC-IAM-NOT-RESOURCE             medium    ``Allow`` with ``NotResource``
AISEC-IAM-PASSROLE-UNCONDITIONED   high      ``iam:PassRole`` granted without a restricting condition
AISEC-IAM-INFERENCE-WRITES-DATA    high      an inference role can write/delete training data
AISEC-IAM-TRAINING-CAN-DELETE      high      a training role can delete
AISEC-IAM-UNKNOWN-ACTION           med/low   an action pattern matching no catalogue action
AISEC-IAM-RESOURCE-MISMATCH        low/med   a literal action that cannot apply to any listed resource
AISEC-IAM-OLD-VERSION              low       ``Version`` missing or ``2008-10-17``
=================================  ========  ==================================================

Every ``Action`` / ``NotAction`` pattern is expanded against the AWS action catalogue
(:mod:`airflow_aisec.core.aws.catalogue`, loaded lazily) and the rules apply to the expanded set;
always-true condition blocks (:func:`vacuous_block`) count as no condition.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_aisec.core.aws.catalogue import arn_service, resource_could_match_format
from airflow_aisec.core.aws.iam.match import (
    _catalogue,
    _could_apply,
    _deny_covers,
    certain_deny,
    deny_covers_pattern,
    deny_covers_prefix,
    granted_actions,
    is_star_resource,
    passrole_restricted,
    resource_covers_all_of_type,
    unknown_action_patterns,
)
from airflow_aisec.core.aws.iam.policy import Policy, Statement
from airflow_aisec.exceptions import AisecInputError
from airflow_aisec.report import Report

# --------------------------------------------------------------------------------------- rule table
#: id → severity, title, prowler equivalents, checkov equivalents, threat tags.
RULES: dict[str, dict[str, Any]] = {
    "AISEC-IAM-ACTION-STAR": {
        "severity": "critical",
        "title": 'Policy allows every action ("Action": "*")',
        "prowler": [
            "iam_customer_attached_policy_no_administrative_privileges",
            "iam_inline_policy_no_administrative_privileges",
        ],
        "checkov": ["CKV_AWS_63", "CKV_AWS_49", "CKV_AWS_62", "CKV_AWS_1"],
        "tags": ["AML.T0055", "OWASP-ML06"],
    },
    "AISEC-IAM-SERVICE-STAR": {
        "severity": "high",
        "title": "Policy allows every action of a service (service:*)",
        "prowler": ["iam_policy_no_full_access_to_kms", "iam_policy_no_full_access_to_cloudtrail"],
        "checkov": ["CKV_AWS_290"],
        "tags": ["AML.T0055", "OWASP-ML06"],
    },
    "AISEC-IAM-RESOURCE-STAR": {
        "severity": "high",
        "title": 'Policy allows actions on every resource ("Resource": "*")',
        "prowler": [],
        "checkov": ["CKV_AWS_355", "CKV_AWS_290"],
        "tags": ["AML.T0055"],
    },
    "AISEC-IAM-NOT-ACTION": {
        "severity": "high",
        "title": "Allow with NotAction grants every action not listed",
        "prowler": [],
        "checkov": [],
        "tags": ["AML.T0055"],
    },
    "AISEC-IAM-NOT-RESOURCE": {
        "severity": "medium",
        "title": "Allow with NotResource grants every resource not listed",
        "prowler": [],
        "checkov": [],
        "tags": ["AML.T0055"],
    },
    "AISEC-IAM-PASSROLE-UNCONDITIONED": {
        "severity": "high",
        "title": "iam:PassRole allowed without a condition restricting where it passes roles (privilege escalation)",
        "prowler": ["iam_policy_allows_privilege_escalation", "iam_inline_policy_allows_privilege_escalation"],
        "checkov": ["CKV_AWS_286"],
        "tags": ["AML.T0055"],
    },
    "AISEC-IAM-INFERENCE-WRITES-DATA": {
        "severity": "high",
        "title": "Inference role can write or delete training data",
        "prowler": [],
        "checkov": [],
        "tags": ["OWASP-ML02", "AML.T0020"],
    },
    "AISEC-IAM-TRAINING-CAN-DELETE": {
        "severity": "high",
        "title": "Training role can delete",
        "prowler": [],
        "checkov": [],
        "tags": ["OWASP-ML02", "AML.T0059"],
    },
    "AISEC-IAM-UNKNOWN-ACTION": {
        "severity": "medium",
        "title": "Action pattern matches no known AWS action (typo, or newer than the catalogue: not evaluated)",
        "prowler": [],
        "checkov": [],
        "tags": ["AML.T0055"],
    },
    "AISEC-IAM-RESOURCE-MISMATCH": {
        "severity": "low",
        "title": "Action cannot apply to any listed resource (resource type mismatch)",
        "prowler": [],
        "checkov": [],
        "tags": [],
    },
    "AISEC-IAM-OLD-VERSION": {
        "severity": "low",
        "title": "Policy language version missing or 2008-10-17 (policy variables are not supported)",
        "prowler": [],
        "checkov": [],
        "tags": [],
    },
}

#: Bucket-level S3 actions that change or destroy training data (object-level writes come from the catalogue).
S3_BUCKET_WRITE_ACTIONS = (
    "s3:DeleteBucket",
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
    "s3:PutLifecycleConfiguration",
    "s3:PutBucketVersioning",
    "s3:PutBucketAcl",
    "s3:PutEncryptionConfiguration",
    "s3:PutReplicationConfiguration",
    "s3:PutBucketObjectLockConfiguration",
)
#: S3 actions that destroy data; a lifecycle rule can expire (delete) every object.
S3_DELETE_ACTIONS = (
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:DeleteBucket",
    "s3:DeleteBucketPolicy",
    "s3:PutLifecycleConfiguration",
)

_S3_DELETE_LOWER = frozenset(a.lower() for a in S3_DELETE_ACTIONS)

INFERENCE_WORDS = ("inference", "serving", "endpoint", "predict")
TRAINING_WORDS = ("training", "train", "trainer", "finetune", "fine-tune")
PURPOSE_TAG_KEYS = ("purpose", "aisec:purpose", "aisec-purpose", "ml:purpose", "ml-purpose", "workload", "role")


def role_purpose(
    role_name: str | None, tags: Mapping[str, str] | None = None, explicit: str | None = None
) -> str | None:
    """``"inference"``, ``"training"`` or ``None``: from ``explicit``, a purpose tag, else the role name."""
    if explicit:
        value = explicit.strip().lower()
        if value not in ("inference", "training"):
            raise AisecInputError(f"purpose must be 'inference' or 'training', not {explicit!r}")
        return value
    for key, value in (tags or {}).items():
        if key.lower() in PURPOSE_TAG_KEYS:
            found = _purpose_from_text(str(value))
            if found:
                return found
    return _purpose_from_text(role_name or "")


def _purpose_from_text(text: str) -> str | None:
    tokens = [t for t in re.split(r"[^a-z0-9]+", text.lower()) if t]
    joined = "-".join(tokens)
    if any(t in INFERENCE_WORDS for t in tokens) or "inference" in joined:
        return "inference"
    if any(t in TRAINING_WORDS for t in tokens) or "training" in joined:
        return "training"
    return None


def _bucket_name(value: str) -> str:
    value = value.strip()
    if value.startswith("s3://"):
        value = value[5:]
    m = re.match(r"^arn:aws[a-z-]*:s3:::(.+)$", value)
    if m:
        value = m.group(1)
    name = value.split("/", 1)[0]
    if not name:
        raise AisecInputError(f"training_data_buckets: {value!r} is not a bucket name, s3:// URI or bucket ARN")
    return name


# --------------------------------------------------------------------------------------- lint
@dataclass
class LintFinding:
    id: str
    location: str
    details: dict[str, Any]
    severity: str | None = None

    def add_to(self, report: Report) -> None:
        rule = RULES[self.id]
        details = {
            **self.details,
            "equivalents": {"prowler": rule["prowler"], "checkov": rule["checkov"]},
            "tags": rule["tags"],
        }
        report.add_finding(self.id, self.severity or rule["severity"], rule["title"], self.location, details)
        report.add_tags(*rule["tags"])


# --------------------------------------------------------------------------------------- registries
@dataclass
class StatementContext:
    """What every statement rule reads: the statement, where it is, and the actions it really grants."""

    st: Statement
    where: str
    #: ``statement`` / ``actions`` / ``resources`` details every finding of the statement carries.
    base: dict[str, Any]
    cat: Any
    granted: frozenset[str] = frozenset()


@dataclass
class PurposeContext:
    """What the role-purpose rules read."""

    policy: Policy
    source: str
    training_data_buckets: Sequence[str]


StatementCheck = Callable[[StatementContext], list[LintFinding]]
#: Statement rules, in the order their findings are reported: ``(rule, applies to Allow only)``.
STATEMENT_CHECKS: list[tuple[StatementCheck, bool]] = []
#: Whole-document rules (run before the statement rules).
POLICY_CHECKS: list[Callable[[Policy], list[LintFinding]]] = []
#: Role-purpose rules: ``purpose`` (``inference`` / ``training``) → rule.
PURPOSE_CHECKS: dict[str, Callable[[PurposeContext], list[LintFinding]]] = {}


def statement_check(*, allow_only: bool) -> Callable[[StatementCheck], StatementCheck]:
    """Register a statement rule (``allow_only``: it reads what an ``Allow`` grants; ``Deny`` is skipped)."""

    def register(fn: StatementCheck) -> StatementCheck:
        STATEMENT_CHECKS.append((fn, allow_only))
        return fn

    return register


def _old_version(policy: Policy) -> list[LintFinding]:
    if policy.version != "2012-10-17":
        return [LintFinding("AISEC-IAM-OLD-VERSION", policy.source, {"version": policy.version})]
    return []


POLICY_CHECKS.append(_old_version)


@statement_check(allow_only=False)
def _unknown_actions(ctx: StatementContext) -> list[LintFinding]:
    unknown = unknown_action_patterns(ctx.st)
    if not unknown:
        return []
    return [
        LintFinding(
            "AISEC-IAM-UNKNOWN-ACTION",
            ctx.where,
            {**ctx.base, "effect": ctx.st.effect, "unknown": unknown},
            severity="medium" if ctx.st.effect == "Allow" else "low",
        )
    ]


@statement_check(allow_only=False)
def _resource_mismatch(ctx: StatementContext) -> list[LintFinding]:
    return _mismatch_findings(ctx.st, ctx.where, ctx.base, ctx.cat)


@statement_check(allow_only=True)
def _action_wildcards(ctx: StatementContext) -> list[LintFinding]:
    """Every catalogue action (any spelling of ``*``), else every action of some service."""
    st, cat = ctx.st, ctx.cat
    if ctx.granted == cat.all:
        return [LintFinding("AISEC-IAM-ACTION-STAR", ctx.where, dict(ctx.base))]
    if st.actions is None:
        return []
    wild = cat.expand_all(p for p in st.actions if "*" in p or "?" in p)
    services = sorted(svc for svc, acts in cat.by_service.items() if acts <= ctx.granted and acts & wild)
    if not services:
        return []
    details = {**ctx.base, "service_wildcards": [f"{s}:*" for s in services]}
    return [LintFinding("AISEC-IAM-SERVICE-STAR", ctx.where, details)]


@statement_check(allow_only=True)
def _not_action(ctx: StatementContext) -> list[LintFinding]:
    if ctx.st.not_actions is None:
        return []
    return [LintFinding("AISEC-IAM-NOT-ACTION", ctx.where, {**ctx.base, "not_actions": list(ctx.st.not_actions)})]


@statement_check(allow_only=True)
def _not_resource(ctx: StatementContext) -> list[LintFinding]:
    if ctx.st.not_resources is None:
        return []
    return [LintFinding("AISEC-IAM-NOT-RESOURCE", ctx.where, dict(ctx.base))]


@statement_check(allow_only=True)
def _resource_star(ctx: StatementContext) -> list[LintFinding]:
    """``*`` (any spelling), or patterns such as ``arn:aws:s3:::*`` covering every resource of their types."""
    st, cat = ctx.st, ctx.cat
    if st.resources is None:
        return []
    scoped = ctx.granted & cat.scoped
    star = [r for r in st.resources if is_star_resource(r)]
    if not star and scoped:
        covering: dict[str, set[str]] = {}
        for r in set(st.resources):
            svc = arn_service(r)
            formats = cat.formats_by_service.get(svc, ()) if svc is not None else cat.by_format
            for fmt in formats:
                acts = cat.by_format[fmt] & scoped
                if acts and resource_covers_all_of_type(r, fmt):
                    covering.setdefault(r, set()).update(acts)
        star = sorted(covering)
        scoped = frozenset().union(*covering.values()) if covering else frozenset()
    if not (star and scoped):
        return []
    writes = not scoped.isdisjoint(cat.writes)
    return [
        LintFinding(
            "AISEC-IAM-RESOURCE-STAR",
            ctx.where,
            {**ctx.base, "can_write": writes, "star_resources": star},
            severity="high" if writes else "medium",
        )
    ]


@statement_check(allow_only=True)
def _passrole(ctx: StatementContext) -> list[LintFinding]:
    if "iam:passrole" in ctx.granted and not passrole_restricted(ctx.st.conditions):
        return [LintFinding("AISEC-IAM-PASSROLE-UNCONDITIONED", ctx.where, dict(ctx.base))]
    return []


MAX_EXPANSION_COST = 1_000_000
#: Most distinct resource patterns in one document, and of those whose service field is a wildcard
#: (each is compared with every ARN format of the catalogue).
MAX_RESOURCE_PATTERNS = 1000
MAX_WILDCARD_SERVICE_RESOURCES = 32


def check_cost(policy: Policy, cat: Any) -> None:
    """Refuse (input error) a document too broad to evaluate within the limits above."""
    patterns = {p.lower() for st in policy.statements for p in (st.actions or st.not_actions or ())}
    cost = sum(cat.expand_cost(p) for p in patterns)
    if cost > MAX_EXPANSION_COST:
        raise AisecInputError(
            f"{policy.source}: {len(patterns)} action patterns would examine {cost} catalogue names "
            f"(limit {MAX_EXPANSION_COST}); too many broad wildcards to evaluate"
        )
    resources = {r for st in policy.statements for r in (st.resources or st.not_resources or ())}
    if len(resources) > MAX_RESOURCE_PATTERNS:
        raise AisecInputError(
            f"{policy.source}: {len(resources)} distinct resource patterns (limit {MAX_RESOURCE_PATTERNS})"
        )
    wild = [r for r in resources if arn_service(r) is None and not is_star_resource(r)]
    if len(wild) > MAX_WILDCARD_SERVICE_RESOURCES:
        raise AisecInputError(
            f"{policy.source}: {len(wild)} resource patterns without a literal service "
            f"(limit {MAX_WILDCARD_SERVICE_RESOURCES}); too broad to evaluate"
        )


def _mismatch_findings(st: Statement, where: str, base: dict[str, Any], cat: Any) -> list[LintFinding]:
    """Literal actions none of whose resource types can match any listed resource (the statement grants
    or denies nothing for them, e.g. ``s3:GetObject`` on a bucket ARN)."""
    if st.actions is None or st.resources is None:
        return []
    if any(is_star_resource(r) for r in st.resources):
        return []
    mismatched = []
    for pattern in st.actions:
        if "*" in pattern or "?" in pattern:
            continue
        info = cat.actions.get(pattern.lower())
        if info is None:
            continue  # reported as unknown
        formats = info.arn_formats
        if not formats or not any(resource_could_match_format(r, f) for r in st.resources for f in formats):
            mismatched.append({"action": info.name, "resource_types": list(formats) or ["*"]})
    if not mismatched:
        return []
    return [
        LintFinding(
            "AISEC-IAM-RESOURCE-MISMATCH",
            where,
            {**base, "effect": st.effect, "mismatched": mismatched},
            severity="medium" if st.effect == "Deny" else "low",
        )
    ]


#: The catalogue's ARN format of an S3 object and of a bucket.
S3_OBJECT_FORMAT = "arn:${Partition}:s3:::${BucketName}/${ObjectName}"
S3_BUCKET_FORMAT = "arn:${Partition}:s3:::${BucketName}"


def _inference_findings(policy: Policy, source: str, buckets: Sequence[str]) -> list[LintFinding]:
    """An inference role must not write, delete or reconfigure training data: every S3 action that
    writes an object (catalogue access level Write / Permissions management / Tagging on the object
    resource type) or on the bucket (the same access levels on the bucket type, and
    :data:`S3_BUCKET_WRITE_ACTIONS`), granted on ANY object (or the bucket) in any partition, unless an
    unconditional ``Deny`` certainly covers that action on every object (or the bucket) in every
    partition the ``Allow`` statements name."""
    cat = _catalogue()
    object_writes = frozenset(a for a in cat.by_format.get(S3_OBJECT_FORMAT, ()) if a in cat.writes)
    # every S3 write on the bucket resource type (policy, ACLs, public access block, tags, CORS …)
    bucket_writes = frozenset(a.lower() for a in S3_BUCKET_WRITE_ACTIONS) | frozenset(
        a for a in cat.by_format.get(S3_BUCKET_FORMAT, ()) if a in cat.writes and a.startswith("s3:")
    )
    names: list[str | None] = [_bucket_name(b) for b in buckets] or [None]
    denies = [st for st in policy.statements if certain_deny(st)]
    # a Deny cancels only when it covers every partition the Allows may name (the role's is not known)
    partitions: set[str] = set()
    for st in policy.statements:
        if st.effect == "Allow":
            for r in st.resources if st.resources is not None else ("*",):
                m = re.match(r"arn:(aws[a-z-]*):", r)
                partitions.add(m.group(1) if m else "aws")  # a wildcard partition: at least aws
    out = []
    for bucket in names:
        obj_target = S3_OBJECT_FORMAT if bucket is None else f"arn:aws:s3:::{bucket}/${{ObjectName}}"
        bucket_target = S3_BUCKET_FORMAT if bucket is None else f"arn:aws:s3:::{bucket}"
        denied_objects: set[str] | None = None
        denied_bucket: set[str] | None = None
        for part in sorted(partitions):
            obj_prefix = f"arn:{part}:s3:::" if bucket is None else f"arn:{part}:s3:::{bucket}/"
            on_objects: set[str] = set()
            on_bucket: set[str] = set()
            for d in denies:
                if deny_covers_prefix(d, obj_prefix):
                    on_objects |= granted_actions(d)
                if bucket is None:
                    if deny_covers_prefix(d, f"arn:{part}:s3:::"):
                        on_bucket |= granted_actions(d)
                elif _deny_covers(d, f"arn:{part}:s3:::{bucket}"):
                    on_bucket |= granted_actions(d)
            denied_objects = on_objects if denied_objects is None else denied_objects & on_objects
            denied_bucket = on_bucket if denied_bucket is None else denied_bucket & on_bucket
        denied_objects = denied_objects or set()
        denied_bucket = denied_bucket or set()
        granted: dict[str, set[str]] = {}
        for st in policy.statements:
            if st.effect != "Allow":
                continue
            acts = granted_actions(st)
            writes = (acts & object_writes) - denied_objects if _could_apply(st, obj_target) else frozenset()
            writes |= (acts & bucket_writes) - denied_bucket if _could_apply(st, bucket_target) else frozenset()
            for action in writes:
                granted.setdefault(cat.actions[action].name, set()).add(st.label)
        if granted:
            labels = sorted({s for v in granted.values() for s in v})
            out.append(
                LintFinding(
                    "AISEC-IAM-INFERENCE-WRITES-DATA",
                    f"{source}#{','.join(labels)}",
                    {
                        "bucket": "*" if bucket is None else bucket,
                        "actions": sorted(granted)[:50],
                        "actions_total": len(granted),
                        "statements": labels,
                    },
                )
            )
    return out


def _training_findings(policy: Policy, source: str) -> list[LintFinding]:
    out = []
    cat = _catalogue()
    denies = [d for d in policy.statements if certain_deny(d)]
    for st in policy.statements:
        if st.effect != "Allow":
            continue
        granted = granted_actions(st)
        candidates = granted & (cat.deletes | _S3_DELETE_LOWER)
        deleting_lower: set[str] = set()
        for pattern in st.resources or ("*",):
            denied: set[str] = set()
            for d in denies:
                if deny_covers_pattern(d, pattern):
                    denied |= granted_actions(d)
            deleting_lower |= candidates - denied
        if deleting_lower:
            shown = [cat.actions[a].name for a in sorted(deleting_lower)[:50]]
            out.append(
                LintFinding(
                    "AISEC-IAM-TRAINING-CAN-DELETE",
                    f"{source}#{st.label}",
                    {
                        "statement": st.label,
                        "delete_actions": shown,
                        "delete_actions_total": len(deleting_lower),
                        "resources": list(st.resources or ()),
                    },
                )
            )
    return out


PURPOSE_CHECKS["inference"] = lambda ctx: _inference_findings(ctx.policy, ctx.source, ctx.training_data_buckets)
PURPOSE_CHECKS["training"] = lambda ctx: _training_findings(ctx.policy, ctx.source)

_check_cost = check_cost  # the former private name (airflow_aisec.core.iam kept every name resolvable)
