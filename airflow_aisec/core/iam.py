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
AISEC-IAM-ACTION-STAR              critical  ``Allow`` of ``Action: "*"``
AISEC-IAM-SERVICE-STAR             high      ``Allow`` of ``service:*`` (all actions of a service)
AISEC-IAM-RESOURCE-STAR            high/med  ``Allow`` on ``Resource: "*"`` (high when it can write)
AISEC-IAM-NOT-ACTION               high      ``Allow`` with ``NotAction`` (grants everything else)
AISEC-IAM-NOT-RESOURCE             medium    ``Allow`` with ``NotResource``
AISEC-IAM-PASSROLE-UNCONDITIONED   high      ``iam:PassRole`` allowed without a condition
AISEC-IAM-INFERENCE-WRITES-DATA    high      an inference role can write/delete training data
AISEC-IAM-TRAINING-CAN-DELETE      high      a training role can delete
AISEC-IAM-OLD-VERSION              low       ``Version`` missing or ``2008-10-17``
=================================  ========  ==================================================
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from airflow_aisec.exceptions import AisecInputError
from airflow_aisec.report import SEVERITIES, SEVERITY_RANK, Report

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
        "title": "iam:PassRole allowed without a condition (privilege escalation)",
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
    "AISEC-IAM-OLD-VERSION": {
        "severity": "low",
        "title": "Policy language version missing or 2008-10-17 (policy variables are not supported)",
        "prowler": [],
        "checkov": [],
        "tags": [],
    },
}

#: Actions that only accept ``Resource: "*"`` (no resource-level permissions); not flagged.
NO_RESOURCE_LEVEL_ACTIONS = (
    "s3:ListAllMyBuckets",
    "sts:GetCallerIdentity",
    "ecr:GetAuthorizationToken",
    "cloudwatch:PutMetricData",
    "cloudwatch:GetMetricData",
    "cloudwatch:ListMetrics",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "sagemaker:ListModels",
    "sagemaker:ListEndpoints",
    "sagemaker:ListTrainingJobs",
    "kms:ListAliases",
    "kms:ListKeys",
)
_NO_RESOURCE_LEVEL_LOWER = frozenset(a.lower() for a in NO_RESOURCE_LEVEL_ACTIONS)
#: Verbs of read-only actions (an action whose name after ``service:`` starts with one of these).
READ_VERBS = ("Get", "List", "Describe", "Head", "Search", "Query", "Select", "Scan", "BatchGet", "View", "Lookup")

#: Object- and bucket-level S3 actions that change or destroy data (inference roles must not have them).
S3_WRITE_ACTIONS = (
    "s3:PutObject",
    "s3:PutObjectAcl",
    "s3:PutObjectTagging",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:DeleteObjectTagging",
    "s3:AbortMultipartUpload",
    "s3:RestoreObject",
)
S3_BUCKET_WRITE_ACTIONS = (
    "s3:DeleteBucket",
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
    "s3:PutLifecycleConfiguration",
    "s3:PutBucketVersioning",
)
#: S3 actions that destroy data; a lifecycle rule can expire (delete) every object.
S3_DELETE_ACTIONS = (
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:DeleteBucket",
    "s3:DeleteBucketPolicy",
    "s3:PutLifecycleConfiguration",
)

INFERENCE_WORDS = ("inference", "serving", "endpoint", "predict")
TRAINING_WORDS = ("training", "train", "trainer", "finetune", "fine-tune")
PURPOSE_TAG_KEYS = ("purpose", "aisec:purpose", "aisec-purpose", "ml:purpose", "ml-purpose", "workload", "role")
PROBE_OBJECT = "aisec-probe-object"
ANY_BUCKET = "aisec-any-bucket"


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
def _as_tuple(value: Any, what: str, source: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise AisecInputError(f"{source}: {what} must be a string or a list of strings, not {value!r}")


def _condition_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return value
    raise ValueError(value)


def _principal(value: Any, what: str, source: str) -> dict[str, tuple[str, ...]] | None:
    if value is None:
        return None
    if value == "*":
        return {"AWS": ("*",)}
    if isinstance(value, Mapping):
        return {str(k): _as_tuple(v, f"{what}.{k}", source) for k, v in value.items()}
    raise AisecInputError(f'{source}: {what} must be "*" or an object, not {value!r}')


def _conditions(value: Any, source: str, label: str) -> dict[str, dict[str, tuple[str, ...]]]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise AisecInputError(f"{source}: {label} Condition must be an object, not {value!r}")
    out: dict[str, dict[str, tuple[str, ...]]] = {}
    for op, block in value.items():
        if not isinstance(block, Mapping):
            raise AisecInputError(f"{source}: {label} Condition.{op} must be an object, not {block!r}")
        keys: dict[str, tuple[str, ...]] = {}
        for key, raw in block.items():
            values = raw if isinstance(raw, (list, tuple)) else [raw]
            try:
                keys[str(key).lower()] = tuple(_condition_value(v) for v in values)
            except ValueError as exc:
                raise AisecInputError(
                    f"{source}: {label} Condition.{op}.{key} has an unsupported value {exc.args[0]!r}"
                ) from None
        out[str(op).lower()] = keys
    return out


def parse_policy_text(text: str | bytes, source: str = "policy") -> Any:
    """Parse policy JSON text (also URL-encoded, as IAM's API returns it) or raise naming ``source``."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    stripped = text.strip()
    if stripped.startswith("%7B") or stripped.startswith("%7b"):
        stripped = unquote(stripped)
    try:
        return json.loads(stripped)
    except json.JSONDecodeError as exc:
        raise AisecInputError(f"{source}: not valid JSON ({exc.msg} at line {exc.lineno})") from None


def normalize_policy(document: Any, source: str = "policy") -> Policy:
    """Normalise a policy document (dict, JSON text) into a :class:`Policy`; raise naming ``source``."""
    if isinstance(document, (str, bytes)):
        document = parse_policy_text(document, source)
    if not isinstance(document, Mapping):
        raise AisecInputError(f"{source}: a policy document must be a JSON object, not {type(document).__name__}")
    if "Statement" not in document:
        raise AisecInputError(f"{source}: policy document has no 'Statement'")
    raw = document["Statement"]
    raw_list = [raw] if isinstance(raw, Mapping) else raw
    if not isinstance(raw_list, list):
        raise AisecInputError(f"{source}: 'Statement' must be an object or a list of objects")
    statements = []
    for i, st in enumerate(raw_list):
        if not isinstance(st, Mapping):
            raise AisecInputError(f"{source}: Statement[{i}] must be an object, not {type(st).__name__}")
        label = str(st.get("Sid") or f"Statement[{i}]")
        effect = st.get("Effect")
        if effect not in ("Allow", "Deny"):
            raise AisecInputError(f"{source}: {label} Effect must be 'Allow' or 'Deny', not {effect!r}")
        if ("Action" in st) == ("NotAction" in st):
            raise AisecInputError(f"{source}: {label} needs exactly one of Action / NotAction")
        statements.append(
            Statement(
                index=i,
                sid=str(st.get("Sid") or ""),
                effect=effect,
                actions=_as_tuple(st["Action"], f"{label} Action", source) if "Action" in st else None,
                not_actions=_as_tuple(st["NotAction"], f"{label} NotAction", source) if "NotAction" in st else None,
                resources=_as_tuple(st["Resource"], f"{label} Resource", source) if "Resource" in st else None,
                not_resources=(
                    _as_tuple(st["NotResource"], f"{label} NotResource", source) if "NotResource" in st else None
                ),
                principal=_principal(st.get("Principal"), f"{label} Principal", source),
                not_principal=_principal(st.get("NotPrincipal"), f"{label} NotPrincipal", source),
                conditions=_conditions(st.get("Condition"), source, label),
            )
        )
    version = document.get("Version")
    return Policy(version=str(version) if version is not None else None, statements=tuple(statements), source=source)


# --------------------------------------------------------------------------------------- matching
@lru_cache(maxsize=4096)
def _pattern(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    # IAM wildcards: * any run of characters, ? one character; policy variables ${...} match anything.
    parts = re.split(r"(\$\{[^}]*\}|\*|\?)", pattern)
    regex = "".join(".*" if p == "*" or p.startswith("${") else "." if p == "?" else re.escape(p) for p in parts if p)
    return re.compile(regex, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def action_matches(pattern: str, action: str) -> bool:
    """IAM action match: wildcards ``*`` / ``?``, case-insensitive."""
    return _pattern(pattern, True).fullmatch(action) is not None


def resource_matches(pattern: str, arn: str) -> bool:
    """IAM resource match: wildcards ``*`` / ``?``, case-sensitive; partitions (aws, aws-cn …) are equivalent."""
    if pattern == "*":
        return True
    return _pattern(_any_partition(pattern), False).fullmatch(_any_partition(arn)) is not None


def _any_partition(arn: str) -> str:
    return re.sub(r"^arn:aws(-[a-z-]+)?:", "arn:aws:", arn)


def statement_covers_action(st: Statement, action: str) -> bool:
    if st.actions is not None:
        return any(action_matches(p, action) for p in st.actions)
    return not any(action_matches(p, action) for p in st.not_actions or ())


def statement_covers_resource(st: Statement, arn: str) -> bool:
    if st.resources is not None:
        return any(resource_matches(p, arn) for p in st.resources)
    if st.not_resources is not None:
        return not any(resource_matches(p, arn) for p in st.not_resources)
    return True  # resource policies (bucket policies) may omit Resource only when invalid; be conservative


def principal_is_everyone(principal: Mapping[str, Sequence[str]] | None) -> bool:
    """``"*"`` or ``{"AWS": "*"}`` (any spelling)."""
    return bool(principal) and any(v == "*" for values in principal.values() for v in values)  # type: ignore[union-attr]


def effective_allows(statements: Iterable[Statement], action: str, arn: str) -> list[Statement]:
    """The ``Allow`` statements that grant ``action`` on ``arn``, or ``[]`` when none does or an
    unconditional ``Deny`` overrides them (a conditional ``Deny`` is not counted: fail closed)."""
    statements = list(statements)
    for st in statements:
        if (
            st.effect == "Deny"
            and not st.conditions
            and statement_covers_action(st, action)
            and statement_covers_resource(st, arn)
        ):
            return []
    return [
        st
        for st in statements
        if st.effect == "Allow" and statement_covers_action(st, action) and statement_covers_resource(st, arn)
    ]


def is_read_only_action(action: str) -> bool:
    if "*" in action or "?" in action:
        name = action.split(":", 1)[-1]
        prefix = name.split("*", 1)[0].split("?", 1)[0]
        return bool(prefix) and any(prefix.startswith(v) for v in READ_VERBS)
    name = action.split(":", 1)[-1]
    return any(name.startswith(v) for v in READ_VERBS)


def _sample_arn(pattern: str) -> str:
    """A concrete ARN matched by ``pattern`` (wildcards replaced), to test Deny overrides against."""
    if pattern == "*":
        return f"arn:aws:s3:::{ANY_BUCKET}/{PROBE_OBJECT}"
    return re.sub(r"\$\{[^}]*\}", "x", pattern).replace("*", "aisec-probe").replace("?", "x")


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

    :param role_name: the role the policy is attached to (purpose from its name when not tagged).
    :param purpose: ``"inference"`` / ``"training"`` overrides tags and name.
    :param training_data_buckets: bucket names (or ``s3://`` / ARNs) holding training data; when empty, an
        inference role is checked for writes to *any* bucket.
    """
    policy = normalize_policy(document, source)
    findings: list[LintFinding] = []
    if policy.version != "2012-10-17":
        findings.append(LintFinding("AISEC-IAM-OLD-VERSION", source, {"version": policy.version}))

    for st in policy.statements:
        if st.effect != "Allow":
            continue
        where = f"{source}#{st.label}"
        base = {
            "statement": st.label,
            "actions": list(st.actions or st.not_actions or ()),
            "resources": list(st.resources or st.not_resources or ()),
        }
        actions = st.actions or ()
        if "*" in actions:
            findings.append(LintFinding("AISEC-IAM-ACTION-STAR", where, dict(base)))
        service_star = sorted({a for a in actions if re.fullmatch(r"[A-Za-z0-9-]+:\*", a)})
        if service_star:
            findings.append(LintFinding("AISEC-IAM-SERVICE-STAR", where, {**base, "service_wildcards": service_star}))
        if st.not_actions is not None:
            findings.append(LintFinding("AISEC-IAM-NOT-ACTION", where, {**base, "not_actions": list(st.not_actions)}))
        if st.not_resources is not None:
            findings.append(LintFinding("AISEC-IAM-NOT-RESOURCE", where, dict(base)))
        if st.resources is not None and "*" in st.resources:
            scoped = [a for a in actions if a.lower() not in _NO_RESOURCE_LEVEL_LOWER]
            if st.not_actions is not None or scoped:
                writes = st.not_actions is not None or any(not is_read_only_action(a) for a in scoped)
                findings.append(
                    LintFinding(
                        "AISEC-IAM-RESOURCE-STAR",
                        where,
                        {**base, "can_write": writes},
                        severity="high" if writes else "medium",
                    )
                )
        if statement_covers_action(st, "iam:PassRole") and not st.conditions:
            findings.append(LintFinding("AISEC-IAM-PASSROLE-UNCONDITIONED", where, dict(base)))

    which = role_purpose(role_name, role_tags, purpose)
    if which == "inference":
        findings += _inference_findings(policy, source, training_data_buckets)
    elif which == "training":
        findings += _training_findings(policy, source)
    for f in findings:
        f.details.setdefault("purpose", which)
    return findings


def _inference_findings(policy: Policy, source: str, buckets: Sequence[str]) -> list[LintFinding]:
    names = [_bucket_name(b) for b in buckets] or [ANY_BUCKET]
    out = []
    for bucket in names:
        granted: dict[str, list[str]] = {}
        for action in S3_WRITE_ACTIONS:
            for st in effective_allows(policy.statements, action, f"arn:aws:s3:::{bucket}/{PROBE_OBJECT}"):
                granted.setdefault(action, []).append(st.label)
        for action in S3_BUCKET_WRITE_ACTIONS:
            for st in effective_allows(policy.statements, action, f"arn:aws:s3:::{bucket}"):
                granted.setdefault(action, []).append(st.label)
        if granted:
            out.append(
                LintFinding(
                    "AISEC-IAM-INFERENCE-WRITES-DATA",
                    f"{source}#{','.join(sorted({s for v in granted.values() for s in v}))}",
                    {
                        "bucket": "*" if bucket == ANY_BUCKET else bucket,
                        "actions": sorted(granted),
                        "statements": sorted({s for v in granted.values() for s in v}),
                    },
                )
            )
    return out


def _training_findings(policy: Policy, source: str) -> list[LintFinding]:
    out = []
    for st in policy.statements:
        if st.effect != "Allow":
            continue
        candidates = list(S3_DELETE_ACTIONS)
        candidates += [a for a in st.actions or () if re.match(r"^[A-Za-z0-9-]+:Delete", a, re.IGNORECASE)]
        samples = [_sample_arn(r) for r in (st.resources or ("*",))]
        granted = sorted(
            {
                action
                for action in candidates
                if statement_covers_action(st, action)
                and any(st in effective_allows(policy.statements, action, arn) for arn in samples)
            }
        )
        if granted:
            out.append(
                LintFinding(
                    "AISEC-IAM-TRAINING-CAN-DELETE",
                    f"{source}#{st.label}",
                    {"statement": st.label, "delete_actions": granted, "resources": list(st.resources or ())},
                )
            )
    return out


def finish_report(report: Report, fail_on: str = "low") -> Report:
    """Close ``report``: ``fail`` when a finding reaches ``fail_on``, ``warn`` for lower ones, else ``pass``."""
    if fail_on not in SEVERITIES:
        raise AisecInputError(f"fail_on must be one of {SEVERITIES}, not {fail_on!r}")
    counts = report.severity_counts()
    for sev, n in counts.items():
        report.metrics[f"findings_{sev}"] = n
    report.metrics["findings"] = len(report.findings)
    threshold = SEVERITY_RANK[fail_on]
    if any(SEVERITY_RANK[f.severity] >= threshold and f.severity != "info" for f in report.findings):
        status = "fail"
    elif any(f.severity != "info" for f in report.findings):
        status = "warn"
    else:
        status = "pass"
    if not report.summary:
        worst = report.max_severity
        report.summary = f"{len(report.findings)} finding(s), worst {worst}" if report.findings else "no findings"
    return report.finish(status)


# --------------------------------------------------------------------------------------- sources
def load_policy_file(path: str | Path) -> tuple[str, Any]:
    """Read a policy JSON file. A file may also hold ``{"RoleName", "Tags", "PolicyDocument"}``."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AisecInputError(f"policy file not found: {p}") from None
    except OSError as exc:
        raise AisecInputError(f"policy file {p} cannot be read: {exc.strerror}") from None
    return str(p), parse_policy_text(text, str(p))


def split_wrapped(source: str, doc: Any) -> tuple[Any, str | None, dict[str, str]]:
    """``{"RoleName": …, "Tags": […], "PolicyDocument": {…}}`` wrapper → (document, role, tags)."""
    if isinstance(doc, Mapping) and "PolicyDocument" in doc:
        tags = doc.get("Tags") or {}
        if isinstance(tags, list):
            tags = {str(t.get("Key")): str(t.get("Value")) for t in tags if isinstance(t, Mapping)}
        if not isinstance(tags, Mapping):
            raise AisecInputError(f"{source}: Tags must be a list of {{Key, Value}} or an object")
        return doc["PolicyDocument"], doc.get("RoleName"), {str(k): str(v) for k, v in tags.items()}
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
    if fail_on not in SEVERITIES:
        raise AisecInputError(f"fail_on must be one of {SEVERITIES}, not {fail_on!r}")
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
def fetch_role_documents(iam_client: Any, role_name: str) -> list[tuple[str, Any, str | None, dict[str, str]]]:
    """Inline and attached (default version) policies of ``role_name`` via an IAM client.

    Errors from the client propagate as :class:`botocore.exceptions.ClientError`; the caller maps them.
    """
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
