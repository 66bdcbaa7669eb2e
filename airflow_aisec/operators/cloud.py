"""Cloud posture operators: S3 bucket configuration and IAM least privilege.

boto3 clients come from providers-amazon's ``AwsBaseHook(aws_conn_id=…)``, so existing AWS connections,
assumed roles and ``endpoint_url`` overrides (S3-compatible stores) work unchanged. providers-amazon and
boto3 are imported only when the task runs (never at DAG parse time).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_aisec.exceptions import AisecInputError
from airflow_aisec.operators.base import AisecBaseOperator
from airflow_aisec.report import SEVERITIES, parse_fail_on
from airflow_aisec.utils.values import parse_bool

if TYPE_CHECKING:
    from airflow.sdk import Context

INSTALL_HINT = "install the AWS extra: pip install 'airflow-aisec[aws]' (apache-airflow-providers-amazon)"


def _as_list(value: str | Sequence[str] | None, name: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        items = [v.strip() for v in value.replace("\n", ",").split(",")]
    else:
        items = [str(v).strip() for v in value]
    return [v for v in items if v]


def _summary(data: dict[str, Any]) -> dict[str, Any]:
    """Summary metadata for outlet asset events (no secrets: ids, counts, status)."""
    counts: dict[str, int] = {}
    for f in data["findings"]:
        counts[f["severity"]] = counts.get(f["severity"], 0) + 1
    return {"aisec_check": data["check"], "status": data["status"], "findings": counts, "subject": data["subject"]}


_as_bool = parse_bool  # the former local helper (one boolean parser: airflow_aisec.utils.values)


def _aws_hook(aws_conn_id: str | None, region_name: str | None, client_type: str) -> Any:
    try:
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
    except ImportError as exc:
        raise AisecInputError(f"aws_conn_id={aws_conn_id!r} needs providers-amazon: {INSTALL_HINT}") from exc
    return AwsBaseHook(aws_conn_id=aws_conn_id, region_name=region_name, client_type=client_type)


class _AwsMixin:
    aws_conn_id: str | None
    region_name: str | None

    def _hook(self, client_type: str) -> Any:
        return _aws_hook(self.aws_conn_id, self.region_name, client_type)


class S3BucketPostureOperator(_AwsMixin, AisecBaseOperator):
    """Check (and optionally remediate) the security configuration of S3 buckets.

    Per bucket: default encryption (SSE-S3 vs SSE-KMS, customer-managed key, bucket key), the bucket
    public access block, public bucket policy / ACL grants, a TLS-only bucket policy (``Deny`` on
    ``aws:SecureTransport`` = false, any spelling), versioning, ownership controls (ACLs disabled), access
    logging, optionally Object Lock and the account-level public access block. Every finding carries the
    equivalent prowler / checkov check ids. "Not configured" is a finding; access denied or a missing
    bucket makes the report ``error`` (naming the bucket and API call); throttling and network errors are
    retried with bounded backoff, then the task retries.

    :param buckets: bucket names (or ``s3://`` URIs), a list or a comma-separated string. (templated)
    :param aws_conn_id: Airflow AWS connection (``extra.endpoint_url`` for S3-compatible stores). (templated)
    :param region_name: AWS region; default from the connection. (templated)
    :param require_kms: require SSE-KMS with a customer-managed key (the article's recommendation).
    :param kms_key_id: KMS key id/ARN/alias: the expected key, and the key ``enforce`` encrypts with. (templated)
    :param require_bucket_key: flag SSE-KMS buckets without an S3 Bucket Key (low severity).
    :param check_object_lock: also require Object Lock.
    :param check_account: also check the account-level public access block (S3 Control API).
    :param checks: subset of check groups to run, a list or a comma-separated string (default all but
        ``object_lock``); see :data:`airflow_aisec.core.cloud.CHECK_GROUPS`. Useful for S3-compatible
        stores lacking some APIs. (templated)
    :param enforce: apply the safe remediations (default encryption, public access block, versioning) and
        report exactly what changed. Without it nothing is modified; the report holds the plan. A bool, or
        ``"true"`` / ``"false"`` when templated from params. (templated)
    :param fail_on: lowest finding severity that fails the task; lower ones only ``warn``.
    :param max_attempts: attempts per API call for throttling / 5xx / network errors (bounded backoff).
    """

    aisec_check = "s3_posture"
    template_fields: Sequence[str] = (
        *AisecBaseOperator.template_fields,
        "buckets",
        "aws_conn_id",
        "region_name",
        "kms_key_id",
        "checks",
        "enforce",
    )
    ui_color = "#fff3e0"

    def __init__(
        self,
        *,
        buckets: str | Sequence[str],
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        require_kms: bool = False,
        kms_key_id: str | None = None,
        require_bucket_key: bool = True,
        check_object_lock: bool = False,
        check_account: bool = False,
        checks: str | Sequence[str] | None = None,
        enforce: bool | str = False,
        fail_on: str = "low",
        max_attempts: int = 4,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        parse_fail_on(fail_on, choices=SEVERITIES)
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {max_attempts}")
        self.buckets = buckets
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.require_kms = require_kms
        self.kms_key_id = kms_key_id
        self.require_bucket_key = require_bucket_key
        self.check_object_lock = check_object_lock
        self.check_account = check_account
        self.checks = checks
        self.enforce = enforce
        self.fail_on = fail_on
        self.max_attempts = max_attempts

    @cached_property
    def hook(self) -> Any:
        """``AwsBaseHook`` for S3 (built on first use, at run time)."""
        return self._hook("s3")

    def execute(self, context: Context) -> dict[str, Any]:
        buckets = _as_list(self.buckets, "buckets")
        subject = ", ".join(f"s3://{b}" for b in buckets) or "s3://"
        data = self.run_check(context, subject=subject, check=lambda: self._check(buckets))
        self.emit_asset_events(context, _summary(data))
        return data

    def _check(self, buckets: list[str]) -> Any:
        from airflow_aisec.core import cloud

        if not buckets:
            raise AisecInputError("buckets: give at least one bucket name")
        account = None
        if self.check_account:
            s3control = self._hook("s3control").conn
            if self.hook.conn_config.endpoint_url:
                cloud.use_path_style_s3control(s3control)
            account = (s3control, self.hook.account_id)
        return cloud.check_s3_posture(
            self.hook.conn,
            buckets,
            require_kms=self.require_kms,
            kms_key_id=self.kms_key_id or None,
            require_bucket_key=self.require_bucket_key,
            check_object_lock=self.check_object_lock,
            checks=_as_list(self.checks, "checks") or None,
            enforce=_as_bool(self.enforce, "enforce"),
            account=account,
            fail_on=self.fail_on,
            retry=cloud.RetryPolicy(max_attempts=self.max_attempts),
        )


class IamPolicyLintOperator(_AwsMixin, AisecBaseOperator):
    """Lint IAM policy documents for least privilege: local JSON files and/or the policies of IAM roles.

    Every action pattern is expanded against the AWS action catalogue (``*`` / ``?``, any case;
    ``NotAction`` complemented). Flags grants of every action or of every action of a service, of
    every resource, ``NotAction`` / ``NotResource`` in ``Allow``, ``iam:PassRole`` without a restricting
    condition (always-true conditions count as none), unknown actions, action/resource-type mismatches,
    and role-purpose rules: an inference role must not write or delete training data, a training role
    must not delete. Purpose comes from ``purpose``, else a role tag (``aisec:purpose`` / ``purpose``),
    else the role name. Malformed policy JSON fails the task (error), never a skipped statement.

    :param policy_files: local policy JSON files (bare document, or ``{"RoleName", "Tags",
        "PolicyDocument"}``). (templated)
    :param role_names: IAM roles whose inline and attached policies are fetched through ``aws_conn_id``. (templated)
    :param aws_conn_id: Airflow AWS connection used for ``role_names``. (templated)
    :param region_name: AWS region; default from the connection.
    :param purpose: ``"inference"`` or ``"training"`` for every policy (overrides tags and names).
    :param training_data_buckets: buckets holding training data; an inference role must not write them
        (without the list: must not write any bucket). (templated)
    :param sagemaker_notebook_instances: SageMaker notebook instances whose settings to check (direct
        internet access, root access, KMS encryption, VPC), fetched through ``aws_conn_id``. (templated)
    :param sagemaker_training_jobs: SageMaker training jobs whose settings to check (inter-container
        traffic encryption, volume/output KMS keys, network isolation). (templated)
    :param fail_on: lowest finding severity that fails the task; lower ones only ``warn``.
    :param max_attempts: attempts per fetch for throttling / network errors.
    """

    aisec_check = "iam_policy"
    template_fields: Sequence[str] = (
        *AisecBaseOperator.template_fields,
        "policy_files",
        "role_names",
        "aws_conn_id",
        "training_data_buckets",
        "sagemaker_notebook_instances",
        "sagemaker_training_jobs",
    )
    ui_color = "#fff3e0"

    def __init__(
        self,
        *,
        policy_files: str | Sequence[str] = (),
        role_names: str | Sequence[str] = (),
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        purpose: str | None = None,
        training_data_buckets: str | Sequence[str] = (),
        sagemaker_notebook_instances: str | Sequence[str] = (),
        sagemaker_training_jobs: str | Sequence[str] = (),
        fail_on: str = "low",
        max_attempts: int = 4,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not (policy_files or role_names or sagemaker_notebook_instances or sagemaker_training_jobs):
            raise ValueError("IamPolicyLintOperator needs policy_files, role_names or SageMaker resources")
        if purpose is not None and purpose not in ("inference", "training"):
            raise ValueError(f"purpose must be 'inference' or 'training', not {purpose!r}")
        parse_fail_on(fail_on, choices=SEVERITIES)
        self.policy_files = policy_files
        self.role_names = role_names
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.purpose = purpose
        self.training_data_buckets = training_data_buckets
        self.sagemaker_notebook_instances = sagemaker_notebook_instances
        self.sagemaker_training_jobs = sagemaker_training_jobs
        self.fail_on = fail_on
        self.max_attempts = max_attempts

    @cached_property
    def hook(self) -> Any:
        """``AwsBaseHook`` for IAM (built on first use, only when ``role_names`` are given)."""
        return self._hook("iam")

    def execute(self, context: Context) -> dict[str, Any]:
        files = _as_list(self.policy_files, "policy_files")
        roles = _as_list(self.role_names, "role_names")
        notebooks = _as_list(self.sagemaker_notebook_instances, "sagemaker_notebook_instances")
        jobs = _as_list(self.sagemaker_training_jobs, "sagemaker_training_jobs")
        subject = ", ".join([*files, *(f"role/{r}" for r in roles), *notebooks, *jobs])
        data = self.run_check(context, subject=subject, check=lambda: self._check(files, roles, notebooks, jobs))
        self.emit_asset_events(context, _summary(data))
        return data

    def _check(self, files: list[str], roles: list[str], notebooks: list[str], jobs: list[str]) -> Any:
        from airflow_aisec.core import cloud

        return cloud.lint_iam_policies(
            policy_files=files,
            role_names=roles,
            iam_client=self.hook.conn if roles else None,
            purpose=self.purpose,
            training_data_buckets=_as_list(self.training_data_buckets, "training_data_buckets"),
            fail_on=self.fail_on,
            retry=cloud.RetryPolicy(max_attempts=self.max_attempts),
            sagemaker_client=self._hook("sagemaker").conn if (notebooks or jobs) else None,
            notebook_instances=notebooks,
            training_jobs=jobs,
        )
