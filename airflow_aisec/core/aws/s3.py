"""S3 bucket posture: fetch each bucket's configuration through a boto3 S3 client, evaluate it, and
optionally remediate the safe subset (pure: no Airflow import; the client is passed in).

Three layers, each usable alone:

* :func:`~airflow_aisec.core.aws.s3_config.fetch_bucket_config` calls the read-only S3 APIs for one
  bucket and returns plain data. A configuration that is *not set* is data (``None``), not an error.
  ``AccessDenied`` / a missing bucket / any other client error is recorded as an error naming the bucket
  and the API call (fail closed: the report is ``error``). Throttling, 5xx and network failures are
  retried with bounded exponential backoff, then raise
  :class:`~airflow_aisec.exceptions.AisecTransientError` (the task retries).
* :func:`~airflow_aisec.core.aws.s3_evaluate.evaluate_bucket` turns a fetched configuration into findings
  (each with the equivalent prowler and checkov ids), and
  :func:`~airflow_aisec.core.aws.s3_enforce.plan_remediation` lists what ``enforce`` would change.
* :func:`check_s3_posture` runs both for every bucket, applies the plan when ``enforce=True`` (then
  re-reads the bucket, so the report shows the state after the change) and returns one report.

Only three changes are ever made, all additive and safe for running pipelines: default encryption
(``PutBucketEncryption``, the API behind ``aws s3api put-bucket-encryption``), the bucket public access
block, versioning. Bucket policies, ownership and logging are reported, never changed.

This module also re-exports the public names of those layers, so ``from airflow_aisec.core.aws import
s3`` is the one import a caller needs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_aisec.core.aws.common import CallError, CallStats, RetryPolicy, finish_report
from airflow_aisec.core.aws.s3_config import (
    AWS_MANAGED_S3_KEY_ALIASES,
    CHECK_GROUPS,
    DEFAULT_CHECK_GROUPS,
    NOT_CONFIGURED,
    PAB_KEYS,
    PUBLIC_GROUPS,
    S3_CHECKS,
    BucketConfig,
    PostureOptions,
    S3Finding,
    fetch_account_public_access_block,
    fetch_bucket_config,
)
from airflow_aisec.core.aws.s3_enforce import apply_remediation, plan_remediation
from airflow_aisec.core.aws.s3_evaluate import (
    GROUP_CHECKS,
    denies_insecure_transport,
    evaluate_account_pab,
    evaluate_bucket,
    public_statements,
)
from airflow_aisec.exceptions import AisecInputError
from airflow_aisec.report import SEVERITIES, Report, parse_fail_on

__all__ = [
    "AWS_MANAGED_S3_KEY_ALIASES",
    "CHECK_GROUPS",
    "DEFAULT_CHECK_GROUPS",
    "GROUP_CHECKS",
    "NOT_CONFIGURED",
    "PAB_KEYS",
    "PUBLIC_GROUPS",
    "S3_CHECKS",
    "BucketConfig",
    "PostureOptions",
    "RetryPolicy",
    "S3Finding",
    "apply_remediation",
    "check_s3_posture",
    "denies_insecure_transport",
    "evaluate_account_pab",
    "evaluate_bucket",
    "fetch_account_public_access_block",
    "fetch_bucket_config",
    "plan_remediation",
    "public_statements",
    "use_path_style_s3control",
]


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
    names = _bucket_names(buckets)
    parse_fail_on(fail_on, choices=SEVERITIES)
    groups = _groups(checks, check_object_lock)
    options = PostureOptions(
        require_kms=require_kms, kms_key_id=kms_key_id, require_bucket_key=require_bucket_key, groups=groups
    )
    run = _Run(retry=retry or RetryPolicy())
    for name in names:
        _check_bucket(run, client, name, options, enforce=enforce)
    if account is not None:
        _check_account(run, *account)
    subject = f"s3://{names[0]}" if len(names) == 1 else ", ".join(f"s3://{n}" for n in names)
    report = _report(run, subject, enforce=enforce)
    errors = run.errors + [CallError(**_call_error_args(r)) for r in run.applied if r["status"] == "failed"]
    if errors:
        report.details["errors"] = [e.to_dict() for e in errors]
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        finish_report(report, fail_on)  # fills severity metrics; status overridden below
        return report.error(f"cannot decide: {errors[0]}{more}")
    changed = f"; changed {report.metrics['remediations_applied']} setting(s)" if enforce else ""
    report.summary = f"{len(names)} bucket(s), {len(run.findings)} finding(s){changed}"
    return finish_report(report, fail_on)


@dataclass
class _Run:
    """What one :func:`check_s3_posture` run gathers, bucket after bucket."""

    retry: RetryPolicy
    stats: CallStats = field(default_factory=CallStats)
    errors: list[CallError] = field(default_factory=list)
    plans: list[dict[str, Any]] = field(default_factory=list)
    applied: list[dict[str, Any]] = field(default_factory=list)
    buckets: list[dict[str, Any]] = field(default_factory=list)
    findings: list[S3Finding] = field(default_factory=list)


def _bucket_names(buckets: Sequence[str]) -> list[str]:
    names = [b.strip() for b in buckets if b and b.strip()]
    names = [b[5:].split("/", 1)[0] if b.startswith("s3://") else b for b in names]
    if not names:
        raise AisecInputError("buckets: give at least one bucket name")
    return names


def _groups(checks: Sequence[str] | None, check_object_lock: bool) -> tuple[str, ...]:
    groups = tuple(checks) if checks is not None else DEFAULT_CHECK_GROUPS
    if not groups:  # nothing selected would check nothing and pass
        raise AisecInputError(f"checks: give at least one check group ({', '.join(CHECK_GROUPS)})")
    if check_object_lock and "object_lock" not in groups:
        groups += ("object_lock",)
    return groups


def _check_bucket(run: _Run, client: Any, name: str, options: PostureOptions, *, enforce: bool) -> None:
    """Fetch, evaluate and plan one bucket; with ``enforce``, apply the plan and re-read the bucket."""
    cfg = fetch_bucket_config(client, name, groups=options.groups, retry=run.retry, stats=run.stats)
    findings = evaluate_bucket(cfg, options)
    plan = plan_remediation(name, findings, options)
    unreachable = any(e.kind in ("missing", "denied") and e.api == "head_bucket" for e in cfg.errors)
    if enforce and plan and not unreachable:
        results = apply_remediation(client, plan, retry=run.retry, stats=run.stats)
        run.applied += results
        if any(r["status"] == "applied" for r in results):  # re-read: report the state after the change
            cfg = fetch_bucket_config(client, name, groups=options.groups, retry=run.retry, stats=run.stats)
            findings = evaluate_bucket(cfg, options)
    else:
        run.plans += plan
    run.errors += cfg.errors
    run.findings += findings
    run.buckets.append({**cfg.to_dict(), "findings": [f.id for f in findings]})


def _check_account(run: _Run, s3control: Any, account_id: str) -> None:
    try:
        pab = fetch_account_public_access_block(s3control, account_id, retry=run.retry, stats=run.stats)
    except CallError as exc:
        run.errors.append(exc)
        return
    run.findings += evaluate_account_pab(pab, account_id)


def _report(run: _Run, subject: str, *, enforce: bool) -> Report:
    """The report of a run, before the gate: findings, per-bucket details, the plan or what changed."""
    report = Report.start("s3_posture", subject, tags=["OWASP-ML05"])
    for f in run.findings:
        f.add_to(report)
    report.details["buckets"] = run.buckets
    if enforce:
        report.details["remediation_applied"] = run.applied
    else:
        report.details["remediation_plan"] = run.plans
    report.metrics.update(
        {
            "buckets": len(run.buckets),
            "buckets_compliant": sum(1 for b in run.buckets if not b["findings"] and not b["errors"]),
            "api_calls": run.stats.calls,
            "api_retries": run.stats.retries,
            "remediations_applied": sum(1 for r in run.applied if r["status"] == "applied"),
            "remediations_planned": len(run.plans),
            "errors": len(run.errors),
            "principals_not_understood": sum(len(f.details.get("principals_not_understood", ())) for f in run.findings),
        }
    )
    return report


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
