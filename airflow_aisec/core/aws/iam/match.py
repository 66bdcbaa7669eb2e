"""IAM matching (pure): actions against the AWS action catalogue, resources against ARNs, conditions
that restrict nothing, principals meaning everyone, and what an unconditional ``Deny`` certainly covers.

Two readings of a resource pattern: :func:`resource_matches` is generous ("could this grant …"; policy
variables read as wildcards, partitions equivalent), :func:`resource_certainly_matches` strict ("does this
Deny cover …"; policy variables match nothing arbitrary).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from airflow_aisec.core.aws.iam.policy import NEGATED_OPERATORS, Statement

#: Probe names contain a character no policy can spell, so only a wildcard can match them.
PROBE_OBJECT = "\x02aisec-probe-object"
ANY_BUCKET = "\x02aisec-any-bucket"


def _catalogue() -> Any:
    from airflow_aisec.core.aws.catalogue import catalogue

    return catalogue()


def action_matches(pattern: str, action: str) -> bool:
    """IAM action match: wildcards ``*`` / ``?``, case-insensitive."""
    from airflow_aisec.core.aws.catalogue import glob_match

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
    from airflow_aisec.core.aws.catalogue import glob_match

    if pattern == "*":
        return True
    return glob_match(_any_partition(pattern), _any_partition(arn), ignore_case=False, variables="wildcard")


def resource_certainly_matches(pattern: str, arn: str) -> bool:
    """Does ``pattern`` apply to ``arn`` whatever the request? Policy variables match nothing arbitrary and
    the partition must be the same: the strict reading, for "does this Deny cover …"."""
    from airflow_aisec.core.aws.catalogue import glob_match

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
            from airflow_aisec.core.aws.catalogue import glob_match

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


# --------------------------------------------------------------------------------------- what a Deny certainly covers
def certainly_covers_prefix(pattern: str, prefix: str) -> bool:
    """Whether resource ``pattern`` matches ``prefix`` + every non-empty string, whatever the request.

    Probed with suffixes made of a character no policy can spell, of every length up to past the
    pattern's own: only wildcards can match them, and the wildcard-only tail of a glob matches every
    string of a length it matches. Policy variables match nothing arbitrary (strict reading).
    """
    return all(resource_certainly_matches(pattern, prefix + _FOREIGN * n) for n in range(1, len(pattern) + 3))


def deny_covers_prefix(st: Statement, prefix: str) -> bool:
    """Whether ``st``'s Resource / NotResource certainly covers every ARN ``prefix`` + something."""
    from airflow_aisec.core.aws.catalogue import resource_could_match_format

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
    from airflow_aisec.core.aws.catalogue import resource_could_match_format

    if st.resources is None:
        return True  # NotResource (or none): assume it may apply
    # the bucket's partition is not known: an Allow in any partition (aws-cn, aws-us-gov …) may be it
    return any(resource_could_match_format(_any_partition(r), target_format) for r in st.resources)
