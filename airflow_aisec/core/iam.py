"""IAM policy documents: normalisation, matching and least-privilege lint (pure; no Airflow, no network).

Policy JSON comes in many equivalent spellings: ``Statement`` as an object or a list, ``Action`` /
``Resource`` as a string or a list, condition values as JSON booleans or strings (``false`` vs
``"false"``), condition operators and keys in any case. :func:`normalize_policy` turns every spelling into
one shape (:class:`Statement`), so the rules below, and the S3 TLS-only check in
:mod:`airflow_aisec.core.cloud`, never miss a statement because of how it was written.

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
(:mod:`airflow_aisec.core.aws_catalogue`, loaded lazily) and the rules apply to the expanded set;
always-true condition blocks (:func:`vacuous_block`) count as no condition.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from airflow_aisec.exceptions import AisecInputError
from airflow_aisec.report import SEVERITIES, Report, parse_fail_on

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
#: Probe names contain a character no policy can spell, so only a wildcard can match them.
PROBE_OBJECT = "\x02aisec-probe-object"
ANY_BUCKET = "\x02aisec-any-bucket"


# --------------------------------------------------------------------------------------- shapes
@dataclass(frozen=True)
class Statement:
    """One policy statement in normalised form (every list a tuple, operators and keys lower-case)."""

    index: int
    sid: str
    effect: str  # "Allow" | "Deny"
    actions: tuple[str, ...] | None
    not_actions: tuple[str, ...] | None
    resources: tuple[str, ...] | None
    not_resources: tuple[str, ...] | None
    principal: dict[str, tuple[str, ...]] | None
    not_principal: dict[str, tuple[str, ...]] | None
    #: ``{operator_lower: {key_lower: (value, …)}}``; values are strings (``True`` → ``"true"``).
    conditions: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.sid or f"Statement[{self.index}]"


@dataclass(frozen=True)
class Policy:
    version: str | None
    statements: tuple[Statement, ...]
    source: str = "policy"


# --------------------------------------------------------------------------------------- normalisation
#: Largest policy document accepted (IAM's own limits are 6 KB managed, 10 KB inline, 20 KB bucket).
MAX_POLICY_BYTES = 256 * 1024
#: Most statements accepted in one document.
MAX_STATEMENTS = 500
VERSIONS = ("2012-10-17", "2008-10-17")
DOCUMENT_KEYS = frozenset({"Version", "Id", "Statement"})
STATEMENT_KEYS = frozenset(
    {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition"}
)
_BASE_OPERATORS = (
    "stringequals",
    "stringnotequals",
    "stringequalsignorecase",
    "stringnotequalsignorecase",
    "stringlike",
    "stringnotlike",
    "numericequals",
    "numericnotequals",
    "numericlessthan",
    "numericlessthanequals",
    "numericgreaterthan",
    "numericgreaterthanequals",
    "dateequals",
    "datenotequals",
    "datelessthan",
    "datelessthanequals",
    "dategreaterthan",
    "dategreaterthanequals",
    "bool",
    "binaryequals",
    "ipaddress",
    "notipaddress",
    "arnequals",
    "arnlike",
    "arnnotequals",
    "arnnotlike",
)
#: Every condition operator IAM knows (lower case): the base ones, ``…IfExists``, ``Null``, and the
#: ``ForAllValues:`` / ``ForAnyValue:`` set qualifiers. Anything else is an input error.
KNOWN_OPERATORS = frozenset(
    [*_BASE_OPERATORS, *(f"{o}ifexists" for o in _BASE_OPERATORS), "null"]
    + [
        f"{q}:{o}"
        for q in ("forallvalues", "foranyvalue")
        for o in (*_BASE_OPERATORS, *(f"{o}ifexists" for o in _BASE_OPERATORS))
    ]
)
NEGATED_OPERATORS = frozenset(o for o in _BASE_OPERATORS if "not" in o)


def _strings(value: Any, what: str, source: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    shown = type(value).__name__ if not isinstance(value, list) else "an empty list or a list with non-strings"
    raise AisecInputError(f"{source}: {what} must be a string or a non-empty list of strings, not {shown}")


def _condition_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return value
    raise ValueError(type(value).__name__)


def _principal(value: Any, what: str, source: str) -> dict[str, tuple[str, ...]] | None:
    if value is None:
        return None
    if value == "*":
        return {"AWS": ("*",)}
    if isinstance(value, Mapping) and value:
        return {str(k): _strings(v, f"{what}.{k}", source) for k, v in value.items()}
    raise AisecInputError(f'{source}: {what} must be "*" or a non-empty object, not {type(value).__name__}')


def _conditions(value: Any, source: str, label: str) -> dict[str, dict[str, tuple[str, ...]]]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise AisecInputError(f"{source}: {label} Condition must be an object, not {type(value).__name__}")
    out: dict[str, dict[str, tuple[str, ...]]] = {}
    for op, block in value.items():
        op_l = str(op).lower()
        if op_l not in KNOWN_OPERATORS:
            raise AisecInputError(f"{source}: {label} Condition operator {str(op)[:60]!r} is not an IAM operator")
        if op_l in out:
            raise AisecInputError(f"{source}: {label} Condition operator {op!r} given twice (in different case)")
        if not isinstance(block, Mapping) or not block:
            raise AisecInputError(f"{source}: {label} Condition.{op} must be a non-empty object")
        keys: dict[str, tuple[str, ...]] = {}
        for key, raw in block.items():
            values = raw if isinstance(raw, list) else [raw]
            if not values:
                raise AisecInputError(f"{source}: {label} Condition.{op}.{key} has no values")
            if str(key).lower() in keys:
                raise AisecInputError(f"{source}: {label} Condition.{op} key {key!r} given twice (in different case)")
            try:
                keys[str(key).lower()] = tuple(_condition_value(v) for v in values)
            except ValueError as exc:
                raise AisecInputError(
                    f"{source}: {label} Condition.{op}.{key} has a value of type {exc.args[0]} (string, number or "
                    "boolean expected)"
                ) from None
        out[op_l] = keys
    return out


def parse_policy_text(text: str | bytes, source: str = "policy") -> Any:
    """Parse policy JSON text (also URL-encoded, as IAM's API returns it) strictly, or raise naming ``source``.

    Duplicate keys, NaN, huge numbers, deep nesting, invalid UTF-8 and documents over
    :data:`MAX_POLICY_BYTES` are :class:`AisecInputError`.
    """
    from airflow_aisec.utils import strictjson

    if len(text) > MAX_POLICY_BYTES:
        raise AisecInputError(f"{source}: policy of {len(text)} bytes exceeds the limit of {MAX_POLICY_BYTES}")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise AisecInputError(f"{source}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    stripped = text.strip()
    if stripped[:3].lower() == "%7b":
        try:
            stripped = unquote(stripped, errors="strict")
        except UnicodeDecodeError as exc:
            raise AisecInputError(f"{source}: URL-encoded policy is not valid UTF-8 ({exc.reason})") from None
    return strictjson.loads(stripped, source=source, max_bytes=MAX_POLICY_BYTES)


def normalize_policy(document: Any, source: str = "policy") -> Policy:
    """Normalise a policy document (dict, JSON text) into a :class:`Policy`; raise naming ``source``.

    Strict: unknown top-level or statement elements, a ``Version`` other than ``2012-10-17`` /
    ``2008-10-17``, an ``Effect`` other than ``Allow`` / ``Deny``, wrong types (numbers where strings
    belong, empty lists), unknown condition operators and more than :data:`MAX_STATEMENTS` statements are
    :class:`AisecInputError`: a statement is never skipped.
    """
    if isinstance(document, (str, bytes)):
        document = parse_policy_text(document, source)
    if not isinstance(document, Mapping):
        raise AisecInputError(f"{source}: a policy document must be a JSON object, not {type(document).__name__}")
    unknown = sorted(str(k)[:40] for k in document if k not in DOCUMENT_KEYS)
    if unknown:
        raise AisecInputError(f"{source}: unknown policy element(s) {unknown} (expected Version, Id, Statement)")
    if "Statement" not in document:
        raise AisecInputError(f"{source}: policy document has no 'Statement'")
    version = document.get("Version")
    if version is not None and version not in VERSIONS:
        shown = version[:40] if isinstance(version, str) else type(version).__name__
        raise AisecInputError(f"{source}: Version must be one of {list(VERSIONS)}, not {shown!r}")
    if "Id" in document and not isinstance(document["Id"], str):
        raise AisecInputError(f"{source}: Id must be a string")
    raw = document["Statement"]
    raw_list = [raw] if isinstance(raw, Mapping) else raw
    if not isinstance(raw_list, list) or not raw_list:
        raise AisecInputError(f"{source}: 'Statement' must be an object or a non-empty list of objects")
    if len(raw_list) > MAX_STATEMENTS:
        raise AisecInputError(f"{source}: {len(raw_list)} statements (limit {MAX_STATEMENTS})")
    statements = []
    for i, st in enumerate(raw_list):
        if not isinstance(st, Mapping):
            raise AisecInputError(f"{source}: Statement[{i}] must be an object, not {type(st).__name__}")
        sid = st.get("Sid", "")
        if not isinstance(sid, str):
            raise AisecInputError(f"{source}: Statement[{i}] Sid must be a string, not {type(sid).__name__}")
        label = sid or f"Statement[{i}]"
        extra = sorted(str(k)[:40] for k in st if k not in STATEMENT_KEYS)
        if extra:
            raise AisecInputError(f"{source}: {label} has unknown element(s) {extra}")
        effect = st.get("Effect")
        if effect not in ("Allow", "Deny"):
            shown = effect[:40] if isinstance(effect, str) else type(effect).__name__
            raise AisecInputError(f"{source}: {label} Effect must be 'Allow' or 'Deny', not {shown!r}")
        if ("Action" in st) == ("NotAction" in st):
            raise AisecInputError(f"{source}: {label} needs exactly one of Action / NotAction")
        if ("Resource" in st) == ("NotResource" in st):
            raise AisecInputError(f"{source}: {label} needs exactly one of Resource / NotResource")
        if "Principal" in st and "NotPrincipal" in st:
            raise AisecInputError(f"{source}: {label} has both Principal and NotPrincipal")
        statements.append(
            Statement(
                index=i,
                sid=sid,
                effect=effect,
                actions=_strings(st["Action"], f"{label} Action", source) if "Action" in st else None,
                not_actions=_strings(st["NotAction"], f"{label} NotAction", source) if "NotAction" in st else None,
                resources=_strings(st["Resource"], f"{label} Resource", source) if "Resource" in st else None,
                not_resources=(
                    _strings(st["NotResource"], f"{label} NotResource", source) if "NotResource" in st else None
                ),
                principal=_principal(st.get("Principal"), f"{label} Principal", source),
                not_principal=_principal(st.get("NotPrincipal"), f"{label} NotPrincipal", source),
                conditions=_conditions(st.get("Condition"), source, label),
            )
        )
    return Policy(version=version, statements=tuple(statements), source=source)


# --------------------------------------------------------------------------------------- matching
def _catalogue() -> Any:
    from airflow_aisec.core.aws_catalogue import catalogue

    return catalogue()


def action_matches(pattern: str, action: str) -> bool:
    """IAM action match: wildcards ``*`` / ``?``, case-insensitive."""
    from airflow_aisec.core.aws_catalogue import glob_match

    return glob_match(pattern, action, ignore_case=True)


def granted_actions(st: Statement) -> frozenset[str]:
    """Lower-case names of every catalogue action ``st`` applies to (``NotAction``: all the others)."""
    return _granted(st.actions, st.not_actions)


@functools.lru_cache(maxsize=4096)
def _granted(actions: tuple[str, ...] | None, not_actions: tuple[str, ...] | None) -> frozenset[str]:
    cat = _catalogue()
    if actions is not None:
        return cat.expand_all(actions)
    return cat.all - cat.expand_all(not_actions or ())


def unknown_action_patterns(st: Statement) -> list[str]:
    """The ``Action`` / ``NotAction`` patterns that match no action in the catalogue."""
    cat = _catalogue()
    return [p for p in (st.actions or st.not_actions or ()) if not cat.expand(p)]


def resource_matches(pattern: str, arn: str) -> bool:
    """Could ``pattern`` apply to ``arn``? Wildcards ``*`` / ``?``, case-sensitive, policy variables read as
    wildcards, partitions (aws, aws-cn …) equivalent: the generous reading, for "could this grant …"."""
    from airflow_aisec.core.aws_catalogue import glob_match

    if pattern == "*":
        return True
    return glob_match(_any_partition(pattern), _any_partition(arn), ignore_case=False, variables="wildcard")


def resource_certainly_matches(pattern: str, arn: str) -> bool:
    """Does ``pattern`` apply to ``arn`` whatever the request? Policy variables match nothing arbitrary and
    the partition must be the same: the strict reading, for "does this Deny cover …"."""
    from airflow_aisec.core.aws_catalogue import glob_match

    return glob_match(pattern, arn, ignore_case=False, variables="literal")


def _any_partition(arn: str) -> str:
    return re.sub(r"^arn:aws(-[a-z-]+)?:", "arn:aws:", arn)


def statement_covers_action(st: Statement, action: str) -> bool:
    """Whether ``st`` applies to ``action`` (a concrete action name; catalogue-expanded patterns)."""
    if st.actions is not None:
        return any(action_matches(p, action) for p in st.actions)
    return not any(action_matches(p, action) for p in st.not_actions or ())


def statement_covers_resource(st: Statement, arn: str) -> bool:
    if st.resources is not None:
        return any(resource_matches(p, arn) for p in st.resources)
    if st.not_resources is not None:
        return not any(resource_certainly_matches(p, arn) for p in st.not_resources)
    return True  # resource policies (bucket policies) may omit Resource only when invalid; be conservative


def is_star_resource(pattern: str) -> bool:
    """``*`` and every spelling that matches any string (``**``, ``?*``, ``*?`` …)."""
    return bool(pattern) and set(pattern) <= {"*", "?"} and "*" in pattern


_FOREIGN = "\x02"


@functools.lru_cache(maxsize=8192)
def _format_probe(arn_format: str) -> str:
    probe = re.sub(r"\$\{Partition\}", "aws", arn_format)
    parts = re.split(r"(\$\{[^}]*\})", probe)
    last = max((i for i, p in enumerate(parts) if p.startswith("${")), default=-1)
    return "".join(
        (f"{_FOREIGN}/{_FOREIGN}" if i == last else _FOREIGN) if p.startswith("${") else p for i, p in enumerate(parts)
    )


@functools.lru_cache(maxsize=65536)
def resource_covers_all_of_type(pattern: str, arn_format: str) -> bool:
    """Whether ``pattern`` matches every ARN of ``arn_format`` (in the ``aws`` partition): probed with
    variable values made of a character ``pattern`` cannot spell, so only wildcards can match them."""
    return is_star_resource(pattern) or resource_matches(pattern, _format_probe(arn_format))


# --------------------------------------------------------------------------------------- principals & conditions
#: Condition keys whose fixed values make a public-principal statement non-public (AWS's own rule for
#: bucket policies; see the S3 "meaning of public"): anything else leaves the statement public.
RESTRICTING_KEYS = frozenset(
    {
        "aws:sourcearn",
        "aws:sourcevpc",
        "aws:sourcevpce",
        "aws:sourceowner",
        "aws:sourceaccount",
        "aws:principalaccount",
        "aws:principalarn",
        "aws:principalorgid",
        "aws:userid",
        "aws:sourceip",
        "s3:x-amz-server-side-encryption-aws-kms-key-id",
        "s3:dataaccesspointarn",
        "s3:dataaccesspointaccount",
    }
)
#: IPv4 / IPv6 ranges wider than these prefix lengths restrict nothing that matters.
MIN_IPV4_PREFIX = 8
MIN_IPV6_PREFIX = 32


def _base_operator(op: str) -> tuple[str, str, bool]:
    """``(qualifier, base, if_exists)`` of a lower-case operator (``forallvalues:stringlikeifexists`` …)."""
    qualifier, _, base = op.rpartition(":")
    if_exists = base.endswith("ifexists")
    return qualifier, base[: -len("ifexists")] if if_exists else base, if_exists


#: Keys naming who calls (or on whose behalf): a wildcard account in their ARN admits any account.
_WHO_ARN_KEYS = frozenset({"aws:principalarn", "aws:sourcearn"})


#: Operators whose values are patterns: IAM's ``ArnEquals`` matches ``*`` / ``?`` exactly as ``ArnLike``.
WILDCARD_OPERATORS = ("stringlike", "arnlike", "arnequals")
#: Service principals a role can be passed to; a ``iam:PassedToService`` pattern matching two of them
#: names no one service (``*.*``, ``*com``, ``*a*`` …).
_PASS_SERVICES = (
    "ec2.amazonaws.com",
    "lambda.amazonaws.com",
    "sagemaker.amazonaws.com",
    "glue.amazonaws.com",
    "ecs-tasks.amazonaws.com",
    "cloudformation.amazonaws.com",
    "codebuild.amazonaws.com",
    "states.amazonaws.com",
    "batch.amazonaws.com",
    "datapipeline.amazonaws.com",
    "elasticmapreduce.amazonaws.com",
    "bedrock.amazonaws.com",
)
_POLICY_VARIABLE = re.compile(r"\$\{(?![*?$]\})[^}]*\}")


def has_policy_variable(value: str) -> bool:
    """``${…}`` other than the escapes ``${*}``, ``${?}``, ``${$}``: a value IAM fills in per request."""
    return _POLICY_VARIABLE.search(value) is not None


#: Policy variables whose value the administrator sets (the calling principal and the resource's owner):
#: any other (``aws:RequestTag/…``, ``aws:UserAgent``, a service's request keys …) the caller chooses.
_ADMIN_SET_VARIABLES = (
    "aws:principal",
    "aws:username",
    "aws:userid",
    "aws:resourceaccount",
    "aws:resourceorg",
)


def _tag_key(key: str) -> str:
    return "aws:resourcetag/" + key[len("iam:resourcetag/") :] if key.startswith("iam:resourcetag/") else key


def _self_reference(value: str, key: str) -> bool:
    """A value that is the key itself (``${key}``, with or without a default: the key compared with
    itself) or holds a policy variable the caller chooses (``${aws:RequestTag/x}``): true for any value."""
    m = re.fullmatch(r"\$\{\s*([^,}]+?)\s*(,[^}]*)?\}", value.strip())
    if m is not None and _tag_key(m.group(1).lower()) == _tag_key(key):
        return True
    for var in _POLICY_VARIABLE.findall(value):
        name = var[2:-1].split(",", 1)[0].strip().lower()
        if not name.startswith(_ADMIN_SET_VARIABLES):
            return True
    return False


def _everything_value(base: str, value: str, key: str = "") -> bool:
    """A value that matches every value of its key under operator ``base`` (or every value an attacker
    can arrange: any service principal, any account)."""
    v = value.strip()
    if _self_reference(v, key):
        return True
    if base in WILDCARD_OPERATORS:
        if is_star_resource(v) or re.fullmatch(r"arn(:[*?]*)*:?\*[*?]*", v, re.IGNORECASE):
            return True
        if v[:4].lower() == "arn:":  # a wildcard in the service field (arn:aws:*, arn:aws:*:*:*:*): every ARN
            fields = v.split(":", 5)
            if any(c in fields[2] if len(fields) > 2 else c in v for c in "*?"):
                return True
        if key == "iam:passedtoservice" and any(c in v for c in "*?"):
            from airflow_aisec.core.aws_catalogue import glob_match

            if sum(glob_match(v, s, ignore_case=True) for s in _PASS_SERVICES) > 1:
                return True
        if key == "iam:passedtoservice" and re.fullmatch(r"[*?]+(\.amazonaws\.com(\.cn)?)?", v, re.IGNORECASE):
            return True
        if key in _WHO_ARN_KEYS:
            fields = v.split(":", 5)
            if len(fields) < 5:
                return any(c in v for c in "*?")
            if any(c in f for f in fields[2:5] for c in "*?"):  # service, region or account wildcarded
                return True
            # no account field (S3 buckets): a wildcard in the name admits anyone's bucket
            return fields[4] == "" and any(c in "".join(fields[5:]) for c in "*?")
        return False
    if base == "ipaddress":
        return _cidr_prefix(v) is not None and _cidr_too_wide(v)
    return False


def _cidr_prefix(value: str) -> int | None:
    import ipaddress

    try:
        return ipaddress.ip_network(value.strip(), strict=False).prefixlen
    except ValueError:
        return None


def _cidr_too_wide(value: str) -> bool:
    import ipaddress

    try:
        net = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        return False
    return net.prefixlen < (MIN_IPV4_PREFIX if net.version == 4 else MIN_IPV6_PREFIX)


def vacuous_block(op: str, key: str, values: Sequence[str]) -> str | None:
    """Why the condition block ``op: {key: values}`` restricts nothing an attacker cannot satisfy, or
    ``None`` when it is a real restriction. (For ``Allow`` statements: a generous reading.)"""
    qualifier, base, if_exists = _base_operator(op)
    if op == "null":
        return "Null only tests whether a key is present"
    if if_exists:
        return f"{op}: true whenever the key is absent"
    if qualifier == "forallvalues":
        return f"{op}: true when the key's set of values is empty or absent"
    if base in NEGATED_OPERATORS:
        return f"{op}: true for every value not listed (and when the key is absent)"
    if base == "bool" and {v.strip().lower() for v in values} >= {"true", "false"}:
        return "Bool with both true and false"
    if base == "bool" and key == "aws:securetransport":
        return "aws:SecureTransport is chosen by the caller (any client can use TLS)"
    if base.startswith("date") and key in ("aws:currenttime", "aws:epochtime"):
        if _true_now(base, values):
            return f"{op}: true at the time of the check (a time window is no restriction while it is open)"
    if base in ("numericgreaterthanequals", "numericgreaterthan") and _all_numbers_at_most(values, 0, base):
        return f"{op}: every value of a non-negative key satisfies it"
    if any(_everything_value(base, v, key) for v in values):
        return f"{op}: a value that matches everything"
    return None


def _true_now(base: str, values: Sequence[str]) -> bool:
    from datetime import datetime, timezone

    now = datetime.now(timezone.utc)
    for v in values:
        text = v.strip()
        try:
            when = (
                datetime.fromtimestamp(float(text), timezone.utc)
                if re.fullmatch(r"\d+(\.\d+)?", text)
                else datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
            )
        except (ValueError, OverflowError, OSError):
            continue
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        ok = {
            "dategreaterthan": now > when,
            "dategreaterthanequals": now >= when,
            "datelessthan": now < when,
            "datelessthanequals": now <= when,
            "datenotequals": now != when,
        }.get(base, False)
        if ok:
            return True
    return False


def _all_numbers_at_most(values: Sequence[str], bound: float, base: str) -> bool:
    try:
        numbers = [float(v) for v in values]
    except ValueError:
        return False
    if base == "numericgreaterthan":
        return any(n < bound for n in numbers)
    return any(n <= bound for n in numbers)


def condition_restricts(conditions: Mapping[str, Mapping[str, Sequence[str]]]) -> bool:
    """True when at least one condition block is a real restriction (see :func:`vacuous_block`)."""
    return any(
        vacuous_block(op, key, values) is None for op, keys in conditions.items() for key, values in keys.items()
    )


#: Condition keys that restrict where or which role ``iam:PassRole`` passes; a condition on any other key
#: (the region, TLS, MFA …) leaves the caller free to pass any role to any service.
PASSROLE_KEYS = ("iam:passedtoservice", "iam:associatedresourcearn")
PASSROLE_KEY_PREFIXES = ("aws:resourcetag/", "iam:resourcetag/")


def passrole_restricted(conditions: Mapping[str, Mapping[str, Sequence[str]]]) -> bool:
    """True when a real (non-vacuous) condition block restricts ``iam:PassedToService``,
    ``iam:AssociatedResourceArn`` or the passed role's tags."""
    return any(
        (key in PASSROLE_KEYS or key.startswith(PASSROLE_KEY_PREFIXES)) and vacuous_block(op, key, values) is None
        for op, keys in conditions.items()
        for key, values in keys.items()
    )


def vacuous_conditions(conditions: Mapping[str, Mapping[str, Sequence[str]]]) -> list[str]:
    return [
        f"{op}.{key}: {why}"
        for op, keys in conditions.items()
        for key, values in keys.items()
        if (why := vacuous_block(op, key, values)) is not None
    ]


def condition_makes_non_public(conditions: Mapping[str, Mapping[str, Sequence[str]]]) -> bool:
    """AWS's rule: a public-principal ``Allow`` is non-public only when a condition pins one of
    :data:`RESTRICTING_KEYS` to fixed values (no wildcards; IP ranges no wider than /8 or /32)."""
    for op, keys in conditions.items():
        for key, values in keys.items():
            if key not in RESTRICTING_KEYS or vacuous_block(op, key, values) is not None:
                continue
            _, base, _ = _base_operator(op)
            if key == "aws:sourceip":
                if base == "ipaddress" and all(_cidr_prefix(v) is not None and not _cidr_too_wide(v) for v in values):
                    return True
                continue
            if any(has_policy_variable(v) for v in values):
                continue  # filled in per request: not a fixed value
            if base in ("stringequals", "stringequalsignorecase") or (
                base in WILDCARD_OPERATORS and not any(c in v for v in values for c in "*?")
            ):
                if key == "aws:userid" and any(v.endswith(":*") for v in values):
                    continue
                return True
    return False


#: Principal element types IAM knows.
PRINCIPAL_TYPES = ("AWS", "Service", "Federated", "CanonicalUser")
_AWS_PRINCIPAL = re.compile(
    r"(\d{12}|arn:aws[a-z-]*:(iam::\d{12}:(root|user/\S+|role/\S+|federated-user/\S+)|sts::\d{12}:(assumed-role|federated-user)/\S+))"
)


def principal_is_everyone(principal: Mapping[str, Sequence[str]] | None) -> bool:
    """``"*"`` or ``{"AWS": "*"}`` (or ``"*"`` under any principal type)."""
    return bool(principal) and any(v == "*" for values in principal.values() for v in values)  # type: ignore[union-attr]


def principals_not_understood(principal: Mapping[str, Sequence[str]] | None) -> list[str]:
    """Principal entries this check cannot attribute to a fixed identity (unknown type, wildcard inside a
    name, malformed account or ARN). Callers treat them as everyone (fail closed)."""
    out = []
    for kind, values in (principal or {}).items():
        for v in values:
            if v == "*":
                continue
            if kind not in PRINCIPAL_TYPES or "*" in v or "?" in v or "${" in v:
                out.append(f"{kind}:{v}"[:120])
            elif kind == "AWS" and not _AWS_PRINCIPAL.fullmatch(v):
                out.append(f"{kind}:{v}"[:120])
            elif kind == "CanonicalUser" and not re.fullmatch(r"[0-9a-f]{64}", v):
                out.append(f"{kind}:{v}"[:120])
            elif kind == "Federated":  # anyone an identity provider vouches for: not a fixed identity
                out.append(f"{kind}:{v}"[:120])
            elif not v.strip():
                out.append(f"{kind}:{v}"[:120])
    return out


def effective_allows(statements: Iterable[Statement], action: str, arn: str) -> list[Statement]:
    """The ``Allow`` statements that grant ``action`` on ``arn``, or ``[]`` when none does or an
    unconditional ``Deny`` certainly overrides them (a conditional ``Deny`` is not counted: fail closed)."""
    statements = list(statements)
    for st in statements:
        if certain_deny(st) and statement_covers_action(st, action) and _deny_covers(st, arn):
            return []
    return [
        st
        for st in statements
        if st.effect == "Allow" and statement_covers_action(st, action) and statement_covers_resource(st, arn)
    ]


def certain_deny(st: Statement) -> bool:
    """A ``Deny`` that applies to whoever holds the policy, whatever the request: no condition, and no
    ``NotPrincipal`` nor a ``Principal`` other than everyone (it may name someone else)."""
    return (
        st.effect == "Deny"
        and not st.conditions
        and st.not_principal is None
        and (st.principal is None or "*" in st.principal.get("AWS", ()))
    )


def _deny_covers(st: Statement, arn: str) -> bool:
    if st.resources is not None:
        return any(resource_certainly_matches(p, arn) for p in st.resources)
    if st.not_resources is not None:
        return not any(resource_matches(p, arn) for p in st.not_resources)
    return False


def is_read_only_action(action: str) -> bool:
    """Whether every catalogue action ``action`` (a pattern) matches is Read or List."""
    cat = _catalogue()
    matched = cat.expand(action)
    if not matched:
        return False
    return not any(cat.actions[a].writes for a in matched)


def _sample_arn(pattern: str) -> str:
    """A concrete ARN matched by ``pattern`` (wildcards replaced), to test Deny overrides against."""
    if pattern == "*":
        return f"arn:aws:s3:::{ANY_BUCKET}/{PROBE_OBJECT}"
    return re.sub(r"\$\{[^}]*\}", "\x02", pattern).replace("*", "\x02").replace("?", "\x02")


# --------------------------------------------------------------------------------------- purpose
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


def lint_policy(
    document: Any,
    *,
    source: str = "policy",
    role_name: str | None = None,
    role_tags: Mapping[str, str] | None = None,
    purpose: str | None = None,
    training_data_buckets: Sequence[str] = (),
) -> list[LintFinding]:
    """Lint one policy document; returns findings (see the module docstring for the rules).

    Every ``Action`` / ``NotAction`` pattern is expanded against the AWS action catalogue (IAM glob, any
    case), and each rule applies to the set of actions a statement really grants.

    :param role_name: the role the policy is attached to (purpose from its name when not tagged).
    :param purpose: ``"inference"`` / ``"training"`` overrides tags and name.
    :param training_data_buckets: bucket names (or ``s3://`` / ARNs) holding training data; when empty, an
        inference role is checked for writes to *any* bucket.
    """
    policy = normalize_policy(document, source)
    cat = _catalogue()
    _check_cost(policy, cat)
    findings: list[LintFinding] = []
    if policy.version != "2012-10-17":
        findings.append(LintFinding("AISEC-IAM-OLD-VERSION", source, {"version": policy.version}))

    for st in policy.statements:
        where = f"{source}#{st.label}"
        base = {
            "statement": st.label,
            "actions": list(st.actions or st.not_actions or ()),
            "resources": list(st.resources or st.not_resources or ()),
        }
        unknown = unknown_action_patterns(st)
        if unknown:
            findings.append(
                LintFinding(
                    "AISEC-IAM-UNKNOWN-ACTION",
                    where,
                    {**base, "effect": st.effect, "unknown": unknown},
                    severity="medium" if st.effect == "Allow" else "low",
                )
            )
        findings += _mismatch_findings(st, where, base, cat)
        if st.effect != "Allow":
            continue
        granted = granted_actions(st)
        vacuous = vacuous_conditions(st.conditions)
        if vacuous:
            base["conditions_ignored"] = vacuous
        if granted == cat.all:
            findings.append(LintFinding("AISEC-IAM-ACTION-STAR", where, dict(base)))
        elif st.actions is not None:
            wild = cat.expand_all(p for p in st.actions if "*" in p or "?" in p)
            services = sorted(svc for svc, acts in cat.by_service.items() if acts <= granted and acts & wild)
            if services:
                findings.append(
                    LintFinding(
                        "AISEC-IAM-SERVICE-STAR", where, {**base, "service_wildcards": [f"{s}:*" for s in services]}
                    )
                )
        if st.not_actions is not None:
            findings.append(LintFinding("AISEC-IAM-NOT-ACTION", where, {**base, "not_actions": list(st.not_actions)}))
        if st.not_resources is not None:
            findings.append(LintFinding("AISEC-IAM-NOT-RESOURCE", where, dict(base)))
        if st.resources is not None:
            scoped = granted & cat.scoped
            star = [r for r in st.resources if is_star_resource(r)]
            if not star and scoped:  # resources such as arn:aws:s3:::* cover every resource of their types
                from airflow_aisec.core.aws_catalogue import arn_service

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
            if star and scoped:
                writes = not scoped.isdisjoint(cat.writes)
                findings.append(
                    LintFinding(
                        "AISEC-IAM-RESOURCE-STAR",
                        where,
                        {**base, "can_write": writes, "star_resources": star},
                        severity="high" if writes else "medium",
                    )
                )
        if "iam:passrole" in granted and not passrole_restricted(st.conditions):
            findings.append(LintFinding("AISEC-IAM-PASSROLE-UNCONDITIONED", where, dict(base)))

    which = role_purpose(role_name, role_tags, purpose)
    if which == "inference":
        findings += _inference_findings(policy, source, training_data_buckets)
    elif which == "training":
        findings += _training_findings(policy, source)
    for f in findings:
        f.details.setdefault("purpose", which)
    return findings


#: Most catalogue names a document's action patterns may make the lint examine (a pattern that starts
#: with a wildcard examines all ~20,000); beyond it the document is refused, not partly evaluated.
MAX_EXPANSION_COST = 1_000_000
#: Most distinct resource patterns in one document, and of those whose service field is a wildcard
#: (each is compared with every ARN format of the catalogue).
MAX_RESOURCE_PATTERNS = 1000
MAX_WILDCARD_SERVICE_RESOURCES = 32


def _check_cost(policy: Policy, cat: Any) -> None:
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
    from airflow_aisec.core.aws_catalogue import arn_service

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
    from airflow_aisec.core.aws_catalogue import resource_could_match_format

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


def certainly_covers_prefix(pattern: str, prefix: str) -> bool:
    """Whether resource ``pattern`` matches ``prefix`` + every non-empty string, whatever the request.

    Probed with suffixes made of a character no policy can spell, of every length up to past the
    pattern's own: only wildcards can match them, and the wildcard-only tail of a glob matches every
    string of a length it matches. Policy variables match nothing arbitrary (strict reading).
    """
    return all(resource_certainly_matches(pattern, prefix + _FOREIGN * n) for n in range(1, len(pattern) + 3))


def deny_covers_prefix(st: Statement, prefix: str) -> bool:
    """Whether ``st``'s Resource / NotResource certainly covers every ARN ``prefix`` + something."""
    from airflow_aisec.core.aws_catalogue import resource_could_match_format

    if st.resources is not None:
        return any(certainly_covers_prefix(r, prefix) for r in st.resources)
    if st.not_resources is not None:
        return not any(resource_could_match_format(r, prefix + "${Rest}") for r in st.not_resources)
    return False


def deny_covers_pattern(st: Statement, pattern: str) -> bool:
    """Whether Deny ``st`` certainly covers every ARN that resource ``pattern`` (of an Allow) can match:
    exactly when ``pattern`` is literal, else every ARN starting with its literal prefix (the part before
    the first wildcard or policy variable), and the prefix itself when the rest may be empty."""
    cut = re.search(r"[*?]|\$\{", pattern)
    if cut is None:
        return _deny_covers(st, pattern)
    prefix, rest = pattern[: cut.start()], pattern[cut.start() :]
    if not deny_covers_prefix(st, prefix):
        return False
    may_be_empty = re.fullmatch(r"(\*|\$\{[^}]*\})*", rest) is not None
    return not may_be_empty or _deny_covers(st, prefix)


def _could_apply(st: Statement, target_format: str) -> bool:
    from airflow_aisec.core.aws_catalogue import resource_could_match_format

    if st.resources is None:
        return True  # NotResource (or none): assume it may apply
    # the bucket's partition is not known: an Allow in any partition (aws-cn, aws-us-gov …) may be it
    return any(resource_could_match_format(_any_partition(r), target_format) for r in st.resources)


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


def finish_report(report: Report, fail_on: str = "low") -> Report:
    """Close ``report``: ``fail`` when a finding reaches ``fail_on``, ``warn`` for lower ones, else ``pass``."""
    gate = parse_fail_on(fail_on, choices=SEVERITIES)
    counts = report.severity_counts()
    for sev, n in counts.items():
        report.metrics[f"findings_{sev}"] = n
    report.metrics["findings"] = len(report.findings)
    if not report.summary:
        worst = report.max_severity
        report.summary = f"{len(report.findings)} finding(s), worst {worst}" if report.findings else "no findings"
    return report.finish(fail_on=gate)


# --------------------------------------------------------------------------------------- sources
def load_policy_file(path: str | Path) -> tuple[str, Any]:
    """Read a policy JSON file strictly. A file may also hold ``{"RoleName", "Tags", "PolicyDocument"}``."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            data = fh.read(MAX_POLICY_BYTES + 1)
    except FileNotFoundError:
        raise AisecInputError(f"policy file not found: {p}") from None
    except OSError as exc:
        raise AisecInputError(f"policy file {p} cannot be read: {exc.strerror}") from None
    return str(p), parse_policy_text(data, str(p))


def split_wrapped(source: str, doc: Any) -> tuple[Any, str | None, dict[str, str]]:
    """``{"RoleName": …, "Tags": […], "PolicyDocument": {…}}`` wrapper → (document, role, tags)."""
    if isinstance(doc, Mapping) and "PolicyDocument" in doc:
        unknown = sorted(str(k)[:40] for k in doc if k not in ("RoleName", "Tags", "PolicyDocument"))
        if unknown:
            raise AisecInputError(f"{source}: unknown wrapper element(s) {unknown} (RoleName, Tags, PolicyDocument)")
        role = doc.get("RoleName")
        if role is not None and not isinstance(role, str):
            raise AisecInputError(f"{source}: RoleName must be a string")
        tags = doc.get("Tags") or {}
        if isinstance(tags, list):
            pairs = {}
            for t in tags:
                if not (isinstance(t, Mapping) and isinstance(t.get("Key"), str) and isinstance(t.get("Value"), str)):
                    raise AisecInputError(f'{source}: each Tags entry must be {{"Key": string, "Value": string}}')
                if t["Key"] in pairs:
                    raise AisecInputError(f"{source}: tag {t['Key']!r} given twice")
                pairs[t["Key"]] = t["Value"]
            tags = pairs
        if not isinstance(tags, Mapping) or not all(isinstance(v, str) for v in tags.values()):
            raise AisecInputError(f"{source}: Tags must be a list of {{Key, Value}} or an object of strings")
        return doc["PolicyDocument"], role, {str(k): str(v) for k, v in tags.items()}
    return doc, None, {}


def lint_policy_files(
    paths: Sequence[str | Path],
    *,
    purpose: str | None = None,
    training_data_buckets: Sequence[str] = (),
    fail_on: str = "low",
) -> Report:
    """Lint local policy JSON files into one ``iam_policy`` report."""
    if not paths:
        raise AisecInputError("no policy files given")
    documents = []
    for path in paths:
        source, doc = load_policy_file(path)
        documents.append((source, *split_wrapped(source, doc)))
    subject = documents[0][0] if len(documents) == 1 else f"{len(documents)} policy files"
    return lint_documents(
        documents, subject=subject, purpose=purpose, training_data_buckets=training_data_buckets, fail_on=fail_on
    )


def lint_documents(
    documents: Sequence[tuple[str, Any, str | None, Mapping[str, str]]],
    *,
    subject: str,
    purpose: str | None = None,
    training_data_buckets: Sequence[str] = (),
    fail_on: str = "low",
    before_finish: Callable[[Report], None] | None = None,
) -> Report:
    """Lint ``(source, document, role_name, role_tags)`` tuples into one report.

    :param before_finish: called with the report before it is closed (to add related findings).
    """
    parse_fail_on(fail_on, choices=SEVERITIES)
    report = Report.start("iam_policy", subject, tags=["AML.T0055"])
    per_source = []
    for source, doc, role, tags in documents:
        found = lint_policy(
            doc,
            source=source,
            role_name=role,
            role_tags=tags,
            purpose=purpose,
            training_data_buckets=training_data_buckets,
        )
        for f in found:
            f.add_to(report)
        per_source.append(
            {
                "source": source,
                "role": role,
                "purpose": role_purpose(role, tags, purpose),
                "findings": len(found),
            }
        )
    report.details["policies"] = per_source
    report.metrics["policies"] = len(documents)
    if before_finish is not None:
        before_finish(report)
    return finish_report(report, fail_on)


# --------------------------------------------------------------------------------------- fetch
def _keep_policy_text(iam_client: Any) -> None:
    """Make ``iam_client`` return policy documents as the text IAM sent (URL-encoded JSON).

    botocore decodes them with a lenient ``json.loads`` (a duplicate key silently keeps the last value;
    a document that fails to parse is passed on as text): with the text, :func:`parse_policy_text`
    applies the same strict rules as to a local file. Only this client is affected.
    """
    try:
        from botocore import handlers

        iam_client.meta.events.unregister("after-call.iam", handlers.json_decode_policies)
    except (ImportError, AttributeError):  # a stand-in client without botocore's event system
        pass


def fetch_role_documents(iam_client: Any, role_name: str) -> list[tuple[str, Any, str | None, dict[str, str]]]:
    """Inline and attached (default version) policies of ``role_name`` via an IAM client.

    Errors from the client propagate as :class:`botocore.exceptions.ClientError`; the caller maps them.
    """
    _keep_policy_text(iam_client)
    role = iam_client.get_role(RoleName=role_name)["Role"]
    tags = {t["Key"]: t["Value"] for t in role.get("Tags", []) or []}
    if not tags:
        try:
            tags = {t["Key"]: t["Value"] for t in iam_client.list_role_tags(RoleName=role_name).get("Tags", [])}
        except Exception:
            tags = {}
    out: list[tuple[str, Any, str | None, dict[str, str]]] = []
    for page in iam_client.get_paginator("list_role_policies").paginate(RoleName=role_name):
        for name in page.get("PolicyNames", []):
            doc = iam_client.get_role_policy(RoleName=role_name, PolicyName=name)["PolicyDocument"]
            out.append((f"role/{role_name}/inline/{name}", doc, role_name, tags))
    for page in iam_client.get_paginator("list_attached_role_policies").paginate(RoleName=role_name):
        for attached in page.get("AttachedPolicies", []):
            arn = attached["PolicyArn"]
            version = iam_client.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
            doc = iam_client.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
            out.append((f"role/{role_name}/attached/{attached['PolicyName']}", doc, role_name, tags))
    return out
