"""IAM lint sources and orchestration: policy files, IAM roles (fetched), one report per run.

:func:`lint_policy` runs every registered rule of :mod:`airflow_aisec.core.aws.iam.rules` on one document;
:func:`lint_documents` lints many into one ``iam_policy`` report closed by the shared severity gate
(:func:`~airflow_aisec.core.aws.common.finish_report`); :func:`lint_iam_policies` also fetches the
policies of IAM roles (and, for compatibility, SageMaker settings).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from airflow_aisec.core.aws.catalogue import catalogue
from airflow_aisec.core.aws.common import CallError, RetryPolicy, finish_report, paginate, retry_call
from airflow_aisec.core.aws.iam.match import granted_actions, vacuous_conditions
from airflow_aisec.core.aws.iam.policy import MAX_POLICY_BYTES, normalize_policy, parse_policy_text
from airflow_aisec.core.aws.iam.rules import (
    POLICY_CHECKS,
    PURPOSE_CHECKS,
    STATEMENT_CHECKS,
    LintFinding,
    PurposeContext,
    StatementContext,
    check_cost,
    role_purpose,
)
from airflow_aisec.core.aws.sagemaker import audit_sagemaker
from airflow_aisec.exceptions import AisecInputError
from airflow_aisec.report import SEVERITIES, Report, parse_fail_on


# --------------------------------------------------------------------------------------- one document
def lint_policy(
    document: Any,
    *,
    source: str = "policy",
    role_name: str | None = None,
    role_tags: Mapping[str, str] | None = None,
    purpose: str | None = None,
    training_data_buckets: Sequence[str] = (),
) -> list[LintFinding]:
    """Lint one policy document; returns findings (see :mod:`airflow_aisec.core.aws.iam.rules`).

    Every ``Action`` / ``NotAction`` pattern is expanded against the AWS action catalogue (IAM glob, any
    case), and each rule applies to the set of actions a statement really grants.

    :param role_name: the role the policy is attached to (purpose from its name when not tagged).
    :param purpose: ``"inference"`` / ``"training"`` overrides tags and name.
    :param training_data_buckets: bucket names (or ``s3://`` / ARNs) holding training data; when empty, an
        inference role is checked for writes to *any* bucket.
    """
    policy = normalize_policy(document, source)
    cat = catalogue()
    check_cost(policy, cat)
    findings: list[LintFinding] = []
    for policy_check in POLICY_CHECKS:
        findings += policy_check(policy)
    for st in policy.statements:
        base = {
            "statement": st.label,
            "actions": list(st.actions or st.not_actions or ()),
            "resources": list(st.resources or st.not_resources or ()),
        }
        ctx = StatementContext(st, f"{source}#{st.label}", base, cat)
        for check, allow_only in STATEMENT_CHECKS:
            if not allow_only:
                findings += check(ctx)
        if st.effect != "Allow":
            continue
        ctx.granted = granted_actions(st)
        vacuous = vacuous_conditions(st.conditions)
        if vacuous:  # findings about what the Allow grants name the conditions that restrict nothing
            ctx.base = {**base, "conditions_ignored": vacuous}
        for check, allow_only in STATEMENT_CHECKS:
            if allow_only:
                findings += check(ctx)
    which = role_purpose(role_name, role_tags, purpose)
    if which in PURPOSE_CHECKS:
        findings += PURPOSE_CHECKS[which](PurposeContext(policy, source, training_data_buckets))
    for f in findings:
        f.details.setdefault("purpose", which)
    return findings


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
    for name in paginate(iam_client, "list_role_policies", "PolicyNames", RoleName=role_name):
        doc = iam_client.get_role_policy(RoleName=role_name, PolicyName=name)["PolicyDocument"]
        out.append((f"role/{role_name}/inline/{name}", doc, role_name, tags))
    for attached in paginate(iam_client, "list_attached_role_policies", "AttachedPolicies", RoleName=role_name):
        arn = attached["PolicyArn"]
        version = iam_client.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
        doc = iam_client.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
        out.append((f"role/{role_name}/attached/{attached['PolicyName']}", doc, role_name, tags))
    return out


# --------------------------------------------------------------------------------------- files, roles and SageMaker in one report
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
