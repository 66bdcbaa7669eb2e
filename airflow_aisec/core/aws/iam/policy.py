"""IAM policy documents: strict parsing and normalisation into one shape (pure; no Airflow, no network).

Policy JSON comes in many equivalent spellings: ``Statement`` as an object or a list, ``Action`` /
``Resource`` as a string or a list, condition values as JSON booleans or strings (``false`` vs
``"false"``), condition operators and keys in any case. :func:`normalize_policy` turns every spelling into
one shape (:class:`Statement`), so neither the lint rules nor the S3 TLS-only check ever miss a statement
because of how it was written. Malformed JSON, duplicate keys and unknown elements are input errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from airflow_aisec.exceptions import AisecInputError


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
